"""SAM2 refinement: the official two-pass parity recipe, the pass without prompts, file errors.

SAM2 runs with the bundled ``sam2.1_hiera_t`` config and random weights written to a temporary
checkpoint, at a small input size, on three real DAVIS frames whose probabilities come from the
real ground-truth masks. A recording wrapper around the real predictor captures the prompts and
SAM2's own outputs so that the recipe around SAM2 can be checked exactly.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np
import pytest
import torch

from geomotion_core.errors import CheckpointError, ConfigError, InputError
from geomotion_core.refine import Sam2Refiner, Sam2RefinerOptions, build_sam2_predictor

TINY_CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"
MASK_SIZE = (96, 170)  # (h, w): the probability size, smaller than the 480 x 854 frames
SAM2_SIDE = 128  # SAM2 input side for the test (official: 1024)
SEQUENCE = "car-shadow"


class RecordingPredictor:
    """Delegates to a real SAM2 predictor and records the calls the refiner makes."""

    def __init__(self, predictor: Any) -> None:
        self._predictor = predictor
        self.calls: list[tuple] = []
        self.logits: dict[int, list[torch.Tensor]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._predictor, name)

    def init_state(self, video_path: str, **kwargs: Any) -> dict:
        state = self._predictor.init_state(video_path, **kwargs)
        self.calls.append(("init_state", state["num_frames"], state["video_height"], state["video_width"]))
        return state

    def reset_state(self, state: dict) -> None:
        self.calls.append(("reset_state",))
        self._predictor.reset_state(state)

    def add_new_mask(self, state: dict, frame_idx: int, obj_id: int, mask: torch.Tensor) -> Any:
        self.calls.append(("add_new_mask", frame_idx, obj_id, mask.clone()))
        return self._predictor.add_new_mask(state, frame_idx=frame_idx, obj_id=obj_id, mask=mask)

    def propagate_in_video(self, state: dict, start_frame_idx: int | None = None) -> Iterator:
        self.calls.append(("propagate_in_video", start_frame_idx))
        for frame_index, object_ids, mask_logits in self._predictor.propagate_in_video(state, start_frame_idx):
            self.logits.setdefault(frame_index, []).append(mask_logits.clone())
            yield frame_index, object_ids, mask_logits

    def prompted_frames(self) -> list[list[int]]:
        """Frame indices prompted in each pass (a pass starts at reset_state)."""
        passes: list[list[int]] = []
        for call in self.calls:
            if call[0] == "reset_state":
                passes.append([])
            elif call[0] == "add_new_mask":
                passes[-1].append(call[1])
        return passes


@pytest.fixture(scope="module")
def sam2_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random weights of the tiny SAM 2.1 model in the official ``{"model": state_dict}`` layout."""
    from sam2.build_sam import build_sam2_video_predictor

    torch.manual_seed(0)
    model = build_sam2_video_predictor(TINY_CONFIG, None, device="cpu")
    path = tmp_path_factory.mktemp("sam2") / "sam2.1_hiera_tiny_random.pt"
    torch.save({"model": model.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def refiner(sam2_checkpoint: Path) -> Sam2Refiner:
    return Sam2Refiner.from_files(TINY_CONFIG, sam2_checkpoint, options=Sam2RefinerOptions(image_size=SAM2_SIDE))


@pytest.fixture(scope="module")
def davis_clip(davis_root: Path) -> tuple[np.ndarray, np.ndarray]:
    """Three real frames ``[3, 480, 854, 3]`` RGB and their GT masks at MASK_SIZE ``[3, h, w]`` bool."""
    names = sorted(p.stem for p in (davis_root / "JPEGImages" / "480p" / SEQUENCE).glob("*.jpg"))[:3]
    frames = np.stack(
        [cv2.imread(str(davis_root / "JPEGImages" / "480p" / SEQUENCE / f"{n}.jpg"))[..., ::-1] for n in names]
    )
    height, width = MASK_SIZE
    truth = np.stack(
        [
            cv2.resize(
                cv2.imread(str(davis_root / "Annotations" / "480p" / SEQUENCE / f"{n}.png"), cv2.IMREAD_GRAYSCALE),
                (width, height),
                interpolation=cv2.INTER_NEAREST,
            )
            > 0
            for n in names
        ]
    )
    assert truth.reshape(3, -1).any(axis=1).all(), "the test needs an object in every frame"
    return np.ascontiguousarray(frames), truth


def _recorded_masks(recorder: RecordingPredictor, frame: int, pass_index: int) -> np.ndarray:
    return (recorder.logits[frame][pass_index][0, 0] > 0).numpy()


def test_pass_without_prompt_keeps_unrefined_masks(refiner: Sam2Refiner, davis_clip: tuple) -> None:
    frames, truth = davis_clip
    # Even frames are confident (prompts); the odd frame stays below the 0.8 prompt threshold but
    # above the 0.5 fallback threshold, so pass 1 (prompts from odd frames) has no prompt at all.
    probability = np.where(truth, np.float32(0.9), np.float32(0.05))
    probability[1] = np.where(truth[1], 0.7, 0.05)
    recorder = RecordingPredictor(refiner.predictor)

    masks = Sam2Refiner(recorder, refiner.options).refine(frames, probability)

    assert masks.shape == (3, *MASK_SIZE) and masks.dtype == bool
    assert recorder.calls[0] == ("init_state", 3, *MASK_SIZE)  # frames resized to the mask size
    np.testing.assert_array_equal(masks[0], truth[0])  # unrefined: probability > 0.5
    np.testing.assert_array_equal(masks[2], truth[2])
    assert recorder.prompted_frames() == [[0, 2]]  # only pass 2 ran, prompted by the even frames
    prompts = [call for call in recorder.calls if call[0] == "add_new_mask"]
    for _, frame, object_id, mask in prompts:
        assert object_id == 1
        np.testing.assert_array_equal(mask.numpy(), probability[frame] > 0.8)
    assert ("propagate_in_video", 0) in recorder.calls
    np.testing.assert_array_equal(masks[1], _recorded_masks(recorder, 1, 0))


def test_two_passes_prompt_one_parity_and_keep_the_other(refiner: Sam2Refiner, davis_clip: tuple) -> None:
    frames, truth = davis_clip
    probability = torch.from_numpy(np.where(truth, np.float32(0.95), np.float32(0.1)))
    recorder = RecordingPredictor(refiner.predictor)

    masks = Sam2Refiner(recorder, refiner.options).refine(frames, probability)

    assert recorder.prompted_frames() == [[1], [0, 2]]
    assert sorted(recorder.logits) == [0, 1, 2]
    np.testing.assert_array_equal(masks[0], _recorded_masks(recorder, 0, 0))  # pass 1 keeps even frames
    np.testing.assert_array_equal(masks[2], _recorded_masks(recorder, 2, 0))
    np.testing.assert_array_equal(masks[1], _recorded_masks(recorder, 1, 1))  # pass 2 keeps odd frames


def test_clip_feature_cache_encodes_each_frame_once_with_identical_masks(
    refiner: Sam2Refiner, sam2_checkpoint: Path, davis_clip: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sam2.sam2_video_predictor import SAM2VideoPredictor

    from geomotion_core.refine.sam2_predictor import ClipFeatureCachePredictor
    from geomotion_core.weights import package_dir

    frames, truth = davis_clip
    probability = np.where(truth, np.float32(0.95), np.float32(0.1))
    plain = build_sam2_predictor(
        package_dir("sam2") / TINY_CONFIG, sam2_checkpoint, "cpu", SAM2_SIDE, cache_clip_features=False
    )
    assert type(plain) is SAM2VideoPredictor
    assert isinstance(refiner.predictor, ClipFeatureCachePredictor)
    masks, encoder_calls = {}, {}
    for name, predictor in (("cached", refiner.predictor), ("plain", plain)):
        calls: list[int] = []
        encode = predictor.forward_image
        monkeypatch.setattr(predictor, "forward_image", lambda images, encode=encode, calls=calls: calls.append(1) or encode(images))
        masks[name] = Sam2Refiner(predictor, refiner.options).refine(frames, probability)
        encoder_calls[name] = len(calls)

    assert encoder_calls["cached"] == 3  # once per frame over both passes
    assert encoder_calls["plain"] > 3
    np.testing.assert_array_equal(masks["cached"], masks["plain"])


def test_single_frame_without_prompt_is_refined_by_nothing(refiner: Sam2Refiner, davis_clip: tuple) -> None:
    frames, truth = davis_clip
    probability = np.where(truth[:1], np.float32(0.6), np.float32(0.0))
    recorder = RecordingPredictor(refiner.predictor)

    masks = Sam2Refiner(recorder, refiner.options).refine(frames[:1], probability)

    np.testing.assert_array_equal(masks, truth[:1])
    assert recorder.prompted_frames() == []


@pytest.mark.parametrize(
    ("frames", "probability", "message"),
    [
        (np.zeros((2, 32, 32, 3), np.float32), np.zeros((2, 16, 16), np.float32), r"uint8 RGB, .* dtype float32"),
        (np.zeros((2, 32, 32), np.uint8), np.zeros((2, 16, 16), np.float32), r"uint8 RGB, .* shape \(2, 32, 32\)"),
        (np.zeros((2, 32, 32, 3), np.uint8), np.zeros((3, 16, 16), np.float32), r"2 frames, probability of shape \(3, 16, 16\)"),
    ],
)
def test_bad_inputs_are_input_errors(
    refiner: Sam2Refiner, frames: np.ndarray, probability: np.ndarray, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        refiner.refine(frames, probability)


def test_missing_files_name_the_paths_looked_at(
    sam2_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEOMOTION_HOME", str(tmp_path))
    with pytest.raises(CheckpointError, match="sam2.1_hiera_large.pt"):
        Sam2Refiner.from_files(TINY_CONFIG)
    missing_config = tmp_path / "missing.yaml"
    with pytest.raises(CheckpointError, match=str(missing_config)):
        Sam2Refiner.from_files(missing_config, sam2_checkpoint)


@pytest.mark.parametrize("damage", ["garbage", "no_model_entry"])
def test_unreadable_checkpoint_is_a_checkpoint_error(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "sam2.pt"
    if damage == "garbage":
        path.write_bytes(b"\x00not a checkpoint" * 64)
    else:
        torch.save({"state_dict": {}}, path)
    with pytest.raises(CheckpointError, match=str(path)):
        Sam2Refiner.from_files(TINY_CONFIG, path)


def test_checkpoint_of_another_architecture_is_a_checkpoint_error(sam2_checkpoint: Path, tmp_path: Path) -> None:
    weights = torch.load(sam2_checkpoint, weights_only=True)["model"]
    weights.pop(next(iter(weights)))
    path = tmp_path / "incomplete.pt"
    torch.save({"model": weights}, path)
    with pytest.raises(CheckpointError, match="does not fit"):
        Sam2Refiner.from_files(TINY_CONFIG, path)


def test_config_that_is_not_a_sam2_model_is_a_checkpoint_error(sam2_checkpoint: Path, tmp_path: Path) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text("model:\n  _target_: sam2.modeling.sam2_base.NoSuchModel\n")
    with pytest.raises(CheckpointError, match="broken.yaml"):
        Sam2Refiner.from_files(config, sam2_checkpoint)


def test_user_config_file_builds_repeatedly_and_leaves_sam2_hydra_intact(
    sam2_checkpoint: Path, tmp_path: Path
) -> None:
    from hydra import compose
    from hydra.core.global_hydra import GlobalHydra
    from sam2.sam2_video_predictor import SAM2VideoPredictor

    from geomotion_core.weights import package_dir

    user_config = tmp_path / "my_sam2.yaml"  # a user's own copy, outside the sam2 package
    user_config.write_text((package_dir("sam2") / TINY_CONFIG).read_text())
    for _ in range(2):
        predictor = build_sam2_predictor(user_config, sam2_checkpoint, "cpu", image_size=SAM2_SIDE)
        assert isinstance(predictor, SAM2VideoPredictor)
        assert predictor.image_size == SAM2_SIDE
    assert GlobalHydra.instance().is_initialized()
    assert compose(config_name=TINY_CONFIG).model.image_encoder  # sam2's own Hydra search path is back


def test_options_are_validated() -> None:
    with pytest.raises(ConfigError):
        Sam2RefinerOptions(prompt_threshold=1.5)
    with pytest.raises(ConfigError):
        Sam2RefinerOptions(jpeg_quality=0)


@pytest.mark.parametrize("size", [(518, 518), (37, 61), (600, 900)])
def test_sam2_frames_are_pil_bilinear_as_officially(davis_clip: tuple, size: tuple[int, int]) -> None:
    """The official refinement resizes the frames with PIL BILINEAR (antialiased when shrinking)."""
    from PIL import Image

    from geomotion_core.refine.sam2_refiner import resize_frames

    frames, _ = davis_clip
    expected = np.stack([np.asarray(Image.fromarray(f).resize(size[::-1], Image.BILINEAR)) for f in frames])
    np.testing.assert_array_equal(resize_frames(frames, size), expected)
