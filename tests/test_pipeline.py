"""Preprocessing, the official chunk protocols and the network backend, on rendered 854x480 frames."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from geomotion_core.demo.clip import DemoClipConfig, render_clip, write_clip
from geomotion_core.io import open_frames
from geomotion_core.io.frames import Frame
from geomotion_core.pipeline.official import eval_chunks, official_chunks
from geomotion_core.pipeline.preprocessing import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    imagenet_denormalise,
    model_input_size,
    preprocess_frames,
)
from geomotion_core.types import WindowPrediction



@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory) -> Path:
    """22 frames of the demo clip (textured world, moving camera and objects) at DAVIS size, as PNGs."""
    frames_dir, _ = write_clip(render_clip(DemoClipConfig(frames=22, width=854, height=480)),
                               tmp_path_factory.mktemp("clip"))
    return frames_dir


@pytest.fixture(scope="module")
def clip_frames(clip_folder: Path) -> list[Frame]:
    return list(open_frames(clip_folder))


def test_preprocessing_matches_pil_lanczos_and_torchvision_normalize(clip_frames: list[Frame]) -> None:
    images = np.stack([frame.image for frame in clip_frames[:3]])
    official = transforms.Compose([
        transforms.Resize((70, 56), interpolation=transforms.InterpolationMode.LANCZOS),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])
    expected = torch.stack([official(Image.fromarray(image)) for image in images])
    result = preprocess_frames(images, 70, 56)
    assert result.shape == (3, 3, 70, 56) and result.dtype == torch.float32
    torch.testing.assert_close(result, expected, rtol=0, atol=1e-6)


def test_flow_frames_are_the_resized_frames_before_normalisation(clip_frames: list[Frame]) -> None:
    images = np.stack([frame.image for frame in clip_frames[:2]])
    resized = np.stack([np.asarray(Image.fromarray(i).resize((56, 56), Image.Resampling.LANCZOS)) for i in images])
    rgb = imagenet_denormalise(preprocess_frames(images, 56, 56))
    expected = torch.from_numpy(resized).permute(0, 3, 1, 2).float() / 255
    torch.testing.assert_close(rgb, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("height", "width", "keep_aspect", "expected"),
    [(480, 854, False, (518, 518)), (480, 854, True, (294, 518)), (854, 480, True, (518, 294)), (100, 1000, True, (56, 518)), (10, 1000, True, (14, 518))],
)
def test_model_input_size(height: int, width: int, keep_aspect: bool, expected: tuple[int, int]) -> None:
    assert model_input_size(height, width, 518, keep_aspect) == expected


class RecordingBackend:
    """Test double that records which frames each window holds and marks every pixel with its frame."""

    name = "recording"

    def __init__(self, frames: list[Frame]) -> None:
        self.lookup = {frame.image.tobytes(): frame.index for frame in frames}
        self.windows: list[list[int]] = []

    def predict_window(
        self, frames: np.ndarray, frame_ids: Sequence[int] | None = None, intrinsics: np.ndarray | None = None
    ) -> WindowPrediction:
        indices = [self.lookup[image.tobytes()] for image in frames]
        self.windows.append(indices)
        probability = np.broadcast_to(np.array(indices, np.float32)[:, None, None] / 100, frames.shape[:3]).copy()
        return WindowPrediction(probability=probability, poses=np.tile(np.eye(4), (len(frames), 1, 1)))

    def reset(self) -> None:
        self.windows.clear()


def test_official_protocol_uses_consecutive_non_overlapping_chunks(clip_frames: list[Frame]) -> None:
    backend = RecordingBackend(clip_frames)
    chunks = list(official_chunks(backend, clip_frames, chunk_size=8))
    assert backend.windows == [list(range(0, 8)), list(range(8, 16)), list(range(16, 22))]
    assert [chunk.worlds.tolist() for chunk in chunks] == [[0] * 8, [1] * 8, [2] * 6]
    for chunk in chunks:
        np.testing.assert_allclose(chunk.probability[:, 0, 0], [f.index / 100 for f in chunk.frames])


def test_eval_protocol_matches_interleaved_groups_of_the_whole_sequence(clip_frames: list[Frame]) -> None:
    chunk_size, groups = 3, 4
    backend = RecordingBackend(clip_frames)
    chunks = list(eval_chunks(backend, iter(clip_frames), chunk_size, groups))
    indices = list(range(len(clip_frames)))
    expected_windows = sorted(
        group_indices[start : start + chunk_size]
        for group in range(groups)
        for group_indices in [indices[group::groups]]
        for start in range(0, len(group_indices), chunk_size)
    )
    assert sorted(backend.windows) == expected_windows
    # predictions come back in the original frame order
    order = [frame.index for chunk in chunks for frame in chunk.frames]
    assert order == indices
    probability = np.concatenate([chunk.probability[:, 0, 0] for chunk in chunks])
    levels = (np.array(indices, np.float32) / 100 * 255).astype(np.uint8)  # the official 8-bit truncation
    np.testing.assert_allclose(probability, levels / 255, atol=1e-7)


@pytest.fixture(scope="module")
def small_options(small_reference):
    return small_reference.backend_options(size=56)


@pytest.fixture(scope="module")
def network_backend(small_options):
    from geomotion_core.backends import build_backend

    return build_backend(small_options)


def test_network_backend_follows_the_official_chain(network_backend, clip_frames: list[Frame]) -> None:
    """PIL LANCZOS + torchvision Normalize, model forward (second normalisation), cv2 linear resize back."""
    images = np.stack([frame.image for frame in clip_frames[:4]])
    network_backend.reset()
    prediction = network_backend.predict_window(images)
    official = transforms.Compose([
        transforms.Resize((56, 56), interpolation=transforms.InterpolationMode.LANCZOS),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])
    normalised = torch.stack([official(Image.fromarray(image)) for image in images])
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    flow = network_backend.flow_estimator.magnitudes((normalised * std + mean).clamp(0, 1))
    with torch.inference_mode():
        output = network_backend.model(normalised[None], flow[None])
    expected = np.stack([cv2.resize(m, (854, 480), interpolation=cv2.INTER_LINEAR) for m in output.motion_mask[0].numpy()])
    assert prediction.probability.shape == (4, 480, 854) and prediction.probability.dtype == np.float32
    np.testing.assert_allclose(prediction.probability, expected, atol=1e-4)
    assert prediction.poses.shape == (4, 4, 4) and prediction.poses.dtype == np.float64
    np.testing.assert_allclose(prediction.poses, output.camera_poses[0].double().numpy(), atol=1e-6)
    assert {"preprocess", "flow", "network", "postprocess"} <= set(prediction.timings)


def test_sliding_windows_reuse_cached_tokens_and_flow(network_backend, clip_frames: list[Frame]) -> None:
    images = np.stack([frame.image for frame in clip_frames[:6]])
    network_backend.reset()
    fresh = [network_backend.predict_window(images[start : start + 4]) for start in (0, 2)]
    encoded: list[int] = []
    original_encode = network_backend.model.encode
    network_backend.model.encode = lambda batch: (encoded.append(batch.shape[1]), original_encode(batch))[1]
    try:
        cached = [network_backend.predict_window(images[start : start + 4], frame_ids=range(start, start + 4))
                  for start in (0, 2)]
    finally:
        del network_backend.model.encode
    assert encoded == [4, 2]  # the second window encodes only its two new frames
    for with_cache, without in zip(cached, fresh):
        np.testing.assert_allclose(with_cache.probability, without.probability, atol=1e-5)
        np.testing.assert_allclose(with_cache.poses, without.poses, atol=1e-5)


def test_keep_aspect_and_points_at_input_size(small_options, clip_frames: list[Frame]) -> None:
    from dataclasses import replace

    from geomotion_core.backends import build_backend

    backend = build_backend(replace(small_options, size=70, keep_aspect=True, points=True))
    prediction = backend.predict_window(np.stack([frame.image for frame in clip_frames[:2]]))
    assert prediction.probability.shape == (2, 480, 854)
    assert prediction.points.shape == (2, 480, 854, 3) and np.isfinite(prediction.points).all()


def test_missing_checkpoint_is_a_checkpoint_error_unless_random_weights_are_allowed(
    small_options, tmp_path: Path, monkeypatch
) -> None:
    from dataclasses import replace

    from geomotion_core.errors import CheckpointError
    from geomotion_core.pipeline.model_loading import load_network, resolve_checkpoint

    monkeypatch.setenv("GEOMOTION_HOME", str(tmp_path))
    with pytest.raises(CheckpointError, match="no GeoMotion checkpoint") as missing:
        resolve_checkpoint(None)
    assert missing.value.options == ("model.checkpoint", "backend")  # the front doors word these
    assert "--checkpoint" not in str(missing.value) and "node parameter" not in str(missing.value)
    with pytest.raises(CheckpointError, match="not found"):
        resolve_checkpoint(str(tmp_path / "absent.pth"))
    assert resolve_checkpoint(None, allow_random_weights=True) is None
    model = load_network(None, small_options.model_config, torch.device("cpu"))
    assert not model.training and model.config.enc_embed_dim == 64


class ManualClock:
    """A ``time.perf_counter`` stand-in that moves only when told to."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class RecordingRefiner:
    """Test double of Sam2Refiner: records each clip it refines and marks row 0 of every frame moving;
    each call takes ``seconds`` on ``clock``."""

    def __init__(self, clock: ManualClock, seconds: float = 0.6) -> None:
        self.clock, self.seconds = clock, seconds
        self.clips: list[list[float]] = []
        self.sizes: set[tuple[int, ...]] = set()

    def refine(self, frames: np.ndarray, probability: np.ndarray) -> np.ndarray:
        self.clock.now += self.seconds
        self.clips.append([round(float(p[0, 0]) * 100) for p in probability])
        self.sizes.add(probability.shape[1:])
        masks = np.zeros(probability.shape, bool)
        masks[:, 0] = True
        return masks


@pytest.mark.parametrize(("protocol", "expected_clips"), [
    ("official", [list(range(0, 8)), list(range(8, 16)), list(range(16, 22))]),
    ("eval", [list(range(22))]),
])
def test_sam2_refines_per_chunk_or_whole_sequence(
    clip_frames: list[Frame], protocol: str, expected_clips: list[list[int]], monkeypatch
) -> None:
    from types import SimpleNamespace

    from geomotion_core.pipeline import segment

    clock = ManualClock()
    monkeypatch.setattr(segment, "time", SimpleNamespace(perf_counter=clock))
    refiner = RecordingRefiner(clock)
    options = segment.SegmentOptions(protocol=protocol, chunk_size=8 if protocol == "official" else 2, sam2=True)
    results = list(segment._chunked_results(RecordingBackend(clip_frames), refiner, clip_frames, options))
    assert refiner.clips == expected_clips
    assert refiner.sizes == {(518, 518)}  # SAM2 refines at the network's size, as officially
    assert [frame.index for frame, _, _ in results] == list(range(22))
    for _, result, _ in results:
        assert (result.mask[0] == 255).all() and (result.mask[1:] == 0).all()  # the refined mask is kept
    # each refinement's time is shared out equally to the frames of its clip
    shares = {index: refiner.seconds / len(clip) for clip in expected_clips for index in clip}
    assert [result.timings["refine"] for _, result, _ in results] == pytest.approx([shares[i] for i in range(22)])


def test_segment_to_folder_uses_a_given_backend(clip_folder: Path, clip_frames: list[Frame], tmp_path: Path) -> None:
    from geomotion_core.pipeline import SegmentOptions, segment_to_folder

    backend = RecordingBackend(clip_frames)
    backend.windows.append([-1])  # stale state that reset() must clear
    glob = str(clip_folder / "0000[0-4].png")
    summary = segment_to_folder(glob, tmp_path, SegmentOptions(chunk_size=2, threshold=0.015, overlay=False, progress=False),
                                backend=backend)
    assert backend.windows == [[0, 1], [2, 3], [4]]
    assert summary.frames == 5 and summary.backend == "recording"
    moving = [cv2.imread(str(tmp_path / "masks" / f"0000{i}.png"), cv2.IMREAD_UNCHANGED).max() for i in range(5)]
    assert moving == [0, 0, 255, 255, 255]  # probability = index / 100 > 0.015 from frame 2 on


@pytest.mark.parametrize("frames", [np.zeros((0, 48, 64, 3), np.uint8), np.zeros((2, 48, 64), np.uint8),
                                    np.zeros((2, 48, 64, 3), np.float32)])
def test_network_backend_rejects_malformed_frames(network_backend, frames: np.ndarray) -> None:
    from geomotion_core.errors import InputError

    with pytest.raises(InputError, match="uint8 RGB"):
        network_backend.predict_window(frames)


def test_failed_background_write_is_raised_and_poses_are_kept(clip_frames: list[Frame], tmp_path: Path) -> None:
    import shutil

    from geomotion_core.errors import GeoMotionError
    from geomotion_core.pipeline.outputs import SegmentationWriter
    from geomotion_core.types import FrameResult

    frame = clip_frames[0]
    writer = SegmentationWriter(tmp_path, 24.0, frame.image.shape[1], frame.image.shape[0], overlay=False)
    shutil.rmtree(writer.masks_dir)
    writer.masks_dir.write_text("a file where the masks folder should be")
    result = FrameResult(index=0, stamp=0.0, mask=np.zeros(frame.image.shape[:2], np.uint8),
                         probability=np.zeros(frame.image.shape[:2], np.float32), pose=np.eye(4))
    writer.write(frame, result)
    with pytest.raises(GeoMotionError, match="cannot write"):
        writer.close()
    assert (tmp_path / "probability" / "00000.png").is_file()
    assert len(json.loads((tmp_path / "poses.json").read_text())["frames"]) == 1


@pytest.mark.parametrize(("changes", "message"), [
    ({"protocol": "sliding"}, "protocol"),
    ({"chunk_size": 0}, "chunk size"),
    ({"threshold": 1.5}, "threshold"),
    ({"fps": 0.0}, "fps"),
    ({"streaming": True, "sam2": True}, "cannot be combined with the streaming engine"),
])
def test_invalid_segment_options_are_config_errors(changes: dict, message: str) -> None:
    from geomotion_core.errors import ConfigError
    from geomotion_core.pipeline import SegmentOptions

    with pytest.raises(ConfigError, match=message):
        SegmentOptions(**changes).validate()


def test_bf16_autocast_stays_close_to_fp32(small_options, network_backend, clip_frames: list[Frame]) -> None:
    from dataclasses import replace

    from geomotion_core.backends import build_backend

    images = np.stack([frame.image for frame in clip_frames[:4]])
    reference = network_backend.predict_window(images)
    bf16 = build_backend(replace(small_options, precision="bf16")).predict_window(images)
    difference = np.abs(bf16.probability - reference.probability)
    assert 0 < difference.max() < 0.05  # autocast was active, and the result is still the same map
    assert bf16.probability.dtype == np.float32 and bf16.poses.dtype == np.float64
