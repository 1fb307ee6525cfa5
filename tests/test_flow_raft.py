"""RAFT-large flow: the official resize/rescale recipe, the magnitude rule, batching, weight errors.

RAFT runs with randomly initialised ``raft_large`` weights written to a temporary file, on real
DAVIS frames at a small, non-square size that is not a multiple of 8 (126 x 190 -> 128 x 192).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from torchvision.models.optical_flow import raft_large, raft_small

from geomotion_core.errors import CheckpointError, ConfigError, InputError
from geomotion_core.flow import FlowEstimator, build_flow_estimator
from geomotion_core.flow.raft import RaftFlowEstimator, padded_size

HEIGHT, WIDTH = 126, 190
UPDATES = 1  # the official 12 would only make the tests slower; the recipe around RAFT is the same


@pytest.fixture(scope="module")
def raft_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("raft") / "raft_large_C_T_SKHT_V2-ff5fadd5.pth"
    torch.save(raft_large(weights=None, progress=False).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def frames(davis_root: Path) -> torch.Tensor:
    """Three consecutive real frames ``[3, 3, 126, 190]`` in [0, 1]."""
    paths = sorted((davis_root / "JPEGImages" / "480p" / "car-shadow").glob("*.jpg"))[:3]
    images = [cv2.resize(cv2.imread(str(p))[..., ::-1], (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA) for p in paths]
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255


@pytest.fixture(scope="module")
def estimator(raft_weights: Path) -> RaftFlowEstimator:
    return RaftFlowEstimator.from_weights(raft_weights, batch_size=4, num_flow_updates=UPDATES)


def test_padded_size_is_next_multiple_of_eight() -> None:
    assert padded_size(518, 518) == (520, 520)
    assert padded_size(480, 854) == (480, 856)
    assert padded_size(HEIGHT, WIDTH) == (128, 192)


def test_flow_follows_the_official_resize_and_rescale(
    estimator: RaftFlowEstimator, raft_weights: Path, frames: torch.Tensor
) -> None:
    model = raft_large(weights=None, progress=False)
    model.load_state_dict(torch.load(raft_weights, weights_only=True))
    model.eval()

    def to_network(images: torch.Tensor) -> torch.Tensor:
        return TF.resize(images * 2 - 1, [128, 192], interpolation=TF.InterpolationMode.BILINEAR, antialias=False)

    with torch.no_grad():
        raw = model(to_network(frames[:2]), to_network(frames[1:]), num_flow_updates=UPDATES)[-1]
    expected = TF.resize(raw, [HEIGHT, WIDTH], interpolation=TF.InterpolationMode.BILINEAR, antialias=False)
    expected[:, 0] *= WIDTH / 192
    expected[:, 1] *= HEIGHT / 128

    flow = estimator.flow(frames[:2], frames[1:])
    assert flow.shape == (2, 2, HEIGHT, WIDTH)
    assert flow.dtype == torch.float32
    assert flow.abs().max() > 0
    torch.testing.assert_close(flow, expected, atol=1e-4, rtol=1e-4)


def test_magnitudes_take_the_bidirectional_maximum(estimator: RaftFlowEstimator, frames: torch.Tensor) -> None:
    forward = torch.linalg.vector_norm(estimator.flow(frames[:-1], frames[1:]), dim=1)
    backward = torch.linalg.vector_norm(estimator.flow(frames[1:], frames[:-1]), dim=1)

    magnitudes = estimator.magnitudes(frames)

    assert magnitudes.shape == (3, HEIGHT, WIDTH)
    torch.testing.assert_close(magnitudes[0], forward[0])
    torch.testing.assert_close(magnitudes[1], torch.maximum(forward[1], backward[0]))
    torch.testing.assert_close(magnitudes[2], backward[1])
    assert torch.equal(estimator.magnitudes(frames[:1]), torch.zeros(1, HEIGHT, WIDTH))


def test_batching_does_not_change_the_flow(raft_weights: Path, frames: torch.Tensor) -> None:
    sources, targets = torch.cat([frames[:-1], frames[1:]]), torch.cat([frames[1:], frames[:-1]])
    batched = RaftFlowEstimator.from_weights(raft_weights, batch_size=4, num_flow_updates=UPDATES)
    single = RaftFlowEstimator.from_weights(raft_weights, batch_size=1, num_flow_updates=UPDATES)
    torch.testing.assert_close(batched.flow(sources, targets), single.flow(sources, targets), atol=1e-4, rtol=1e-4)


def test_factory_builds_raft_from_explicit_weights(raft_weights: Path) -> None:
    estimator = build_flow_estimator("raft", raft_weights, device="cpu", num_flow_updates=3)
    assert isinstance(estimator, FlowEstimator)
    assert isinstance(estimator, RaftFlowEstimator)
    assert estimator.num_flow_updates == 3


def test_factory_rejects_unknown_method() -> None:
    with pytest.raises(ConfigError, match="raft"):
        build_flow_estimator("farneback")


def test_missing_weights_name_every_path_looked_at(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEOMOTION_HOME", str(tmp_path / "home"))
    explicit = tmp_path / "nowhere" / "raft.pth"
    with pytest.raises(CheckpointError) as error:
        build_flow_estimator("raft", explicit)
    message = str(error.value)
    assert str(explicit) in message
    assert str(tmp_path / "home" / "raft_large_C_T_SKHT_V2-ff5fadd5.pth") in message


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong_architecture", "not_a_state_dict"])
def test_damaged_weights_raise_checkpoint_error(raft_weights: Path, tmp_path: Path, damage: str) -> None:
    path = tmp_path / "raft.pth"
    if damage == "garbage":
        path.write_bytes(b"this is not a checkpoint" * 10)
    elif damage == "truncated":
        path.write_bytes(raft_weights.read_bytes()[:100_000])
    elif damage == "wrong_architecture":
        torch.save(raft_small(weights=None, progress=False).state_dict(), path)
    else:
        torch.save({"weights": [1, 2, 3]}, path)
    with pytest.raises(CheckpointError, match=str(path)):
        RaftFlowEstimator.from_weights(path)


def test_flow_can_feed_a_trained_layer(estimator: RaftFlowEstimator, frames: torch.Tensor) -> None:
    """Training feeds flow magnitudes to layers with gradients: the result must not be an inference tensor."""
    magnitudes = estimator.magnitudes(frames[:2])
    layer = torch.nn.Conv2d(1, 1, 3)
    layer(magnitudes[:, None]).sum().backward()
    assert layer.weight.grad is not None


def test_mismatched_pairs_are_an_input_error(estimator: RaftFlowEstimator, frames: torch.Tensor) -> None:
    with pytest.raises(InputError, match="one shape"):
        estimator.flow(frames[:2], frames[:1])


def test_frames_too_small_for_raft_are_an_input_error(estimator: RaftFlowEstimator) -> None:
    tiny = torch.rand(1, 3, 64, 96)
    with pytest.raises(InputError, match="128"):
        estimator.flow(tiny, tiny)
