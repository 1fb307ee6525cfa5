"""Each protocol's resize of the network probability to the frame size, against the official code's.

The official ``eval.py`` truncates the probability to 8 bits, resizes it with PIL ``BILINEAR``
(antialiased when shrinking), divides by 255 and binarises at ``> 0.1``; the tests rebuild that
chain with PIL directly and compare pixel for pixel.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from geomotion_core.io.frames import Frame
from geomotion_core.pipeline.official import PROTOCOL_THRESHOLDS, eval_chunks, official_chunks
from geomotion_core.pipeline.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from geomotion_core.pipeline.probability_resize import bilinear_resize, official_eval_resize, resize_bilinear
from geomotion_core.types import WindowPrediction

NETWORK_SIDE = 518
EVAL_THRESHOLD = PROTOCOL_THRESHOLDS["eval"]


def official_eval_levels(probability: np.ndarray, height: int, width: int) -> np.ndarray:
    """The official evaluation's last step, written out with PIL: 8-bit levels at the GT size."""
    return np.stack([
        np.asarray(Image.fromarray((p * 255).astype(np.uint8)).resize((width, height), Image.BILINEAR))
        for p in probability
    ])


def fine_structure(count: int, side: int, seed: int = 0) -> np.ndarray:
    """Probabilities with one-pixel lines, a checkerboard, thin discs and noise: resizes disagree here."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:side, :side]
    maps = []
    for index in range(count):
        checker = ((rows // (1 + index % 3) + cols // 2) % 2).astype(np.float32)
        lines = ((cols % 7 == index % 7) | (rows % 11 == 0)).astype(np.float32)
        ring = np.abs(np.hypot(rows - side / 2, cols - side / 3) - side / 4) < 1.5
        maps.append(0.45 * checker + 0.3 * lines + 0.2 * ring + rng.uniform(0, 0.05, (side, side)))
    return np.clip(np.stack(maps), 0.0, 1.0).astype(np.float32)


GT_SIZES = [(480, 854), (481, 853), (37, 61), (600, 700), (518, 518)]


@pytest.mark.parametrize(("height", "width"), GT_SIZES)
def test_eval_resize_equals_pil_bilinear_on_8bit_levels(height: int, width: int) -> None:
    probability = fine_structure(3, NETWORK_SIDE)
    expected = official_eval_levels(probability, height, width)
    result = official_eval_resize(probability, height, width)
    assert result.shape == (3, height, width) and result.dtype == np.float32
    np.testing.assert_array_equal(np.rint(result * 255).astype(np.uint8), expected)
    np.testing.assert_array_equal(result > EVAL_THRESHOLD, expected / 255.0 > EVAL_THRESHOLD)


def test_fast_bilinear_is_not_the_official_eval_resize() -> None:
    """The faster resize of the other protocols differs from the official one on fine structure."""
    probability = fine_structure(2, NETWORK_SIDE)
    fast = bilinear_resize(probability, 480, 854)
    official = official_eval_levels(probability, 480, 854) / 255.0
    assert (np.abs(fast - official) > 1 / 255).mean() > 0.05
    torch.testing.assert_close(
        torch.from_numpy(fast), resize_bilinear(torch.from_numpy(probability)[:, None], 480, 854)[:, 0]
    )
    expected = np.stack([cv2.resize(p, (854, 480), interpolation=cv2.INTER_LINEAR) for p in probability])
    np.testing.assert_allclose(fast, expected, atol=1e-4)


class NativeSizeStub:
    """A backend that predicts fixed fine-structure maps at the network size, as NetworkBackend does."""

    name = "native-stub"

    def __init__(self, frames: list[Frame]) -> None:
        self.lookup = {frame.image.tobytes(): frame.index for frame in frames}
        self.maps = fine_structure(len(frames), NETWORK_SIDE)

    def _native(self, frames: np.ndarray) -> WindowPrediction:
        indices = [self.lookup[image.tobytes()] for image in frames]
        return WindowPrediction(probability=self.maps[indices], poses=np.tile(np.eye(4), (len(frames), 1, 1)))

    def predict_window_native(self, frames: np.ndarray, frame_ids: Sequence[int] | None = None) -> WindowPrediction:
        return self._native(frames)

    def predict_window(self, frames: np.ndarray, frame_ids: Sequence[int] | None = None,
                       intrinsics: np.ndarray | None = None) -> WindowPrediction:
        prediction = self._native(frames)
        prediction.probability = bilinear_resize(prediction.probability, *frames.shape[1:3])
        return prediction

    def reset(self) -> None:
        pass


def synthetic_frames(count: int, height: int, width: int) -> list[Frame]:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (count, height, width, 3), dtype=np.uint8)
    return [Frame(index=i, stamp=i / 30, name=f"{i:05d}", image=image) for i, image in enumerate(images)]


@pytest.mark.parametrize(("height", "width"), [(480, 854), (37, 61)])
def test_eval_protocol_chunks_carry_the_official_probability(height: int, width: int) -> None:
    frames = synthetic_frames(9, height, width)
    backend = NativeSizeStub(frames)
    chunks = list(eval_chunks(backend, iter(frames), chunk_size=2))
    probability = np.concatenate([chunk.probability for chunk in chunks])
    expected = official_eval_levels(backend.maps, height, width)
    np.testing.assert_array_equal(np.rint(probability * 255).astype(np.uint8), expected)
    native = np.concatenate([chunk.native_probability for chunk in chunks])
    np.testing.assert_array_equal(native, backend.maps)  # SAM2's input stays at the network size


def test_official_protocol_keeps_the_fast_bilinear_resize() -> None:
    frames = synthetic_frames(5, 48, 64)
    backend = NativeSizeStub(frames)
    probability = np.concatenate([chunk.probability for chunk in official_chunks(backend, frames, chunk_size=2)])
    np.testing.assert_allclose(probability, bilinear_resize(backend.maps, 48, 64), atol=1e-6)


def read_levels(folder: Path) -> np.ndarray:
    return np.stack([cv2.imread(str(path), cv2.IMREAD_UNCHANGED) for path in sorted(folder.glob("*.png"))])


@pytest.mark.parametrize(("height", "width"), [(480, 854), (45, 61)])
def test_segment_eval_protocol_writes_the_official_masks(
    small_reference, tmp_path: Path, height: int, width: int
) -> None:
    """End to end: written masks and probabilities equal the official chain on the network output."""
    from dataclasses import replace

    from geomotion_core.pipeline import SegmentOptions, segment_to_folder
    from geomotion_core.backends import build_backend

    side = 70
    from geomotion_core.demo.clip import DemoClipConfig, render_clip

    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    images = []
    for index, frame in enumerate(render_clip(DemoClipConfig(frames=9, width=854, height=480)).frames):
        image = np.ascontiguousarray(frame[:height, :width])
        Image.fromarray(image).save(frames_dir / f"{index:05d}.png")
        images.append(image)
    options = replace(small_reference.backend_options(size=side))
    backend = build_backend(options)
    out = tmp_path / "out"
    segment_to_folder(frames_dir, out, SegmentOptions(backend=options, protocol="eval", chunk_size=2,
                                                      overlay=False, progress=False), backend=backend)

    model, flow = backend.model, backend.flow_estimator
    official = transforms.Compose([
        transforms.Resize((side, side), interpolation=transforms.InterpolationMode.LANCZOS),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    network_probability = np.empty((len(images), side, side), np.float32)
    indices = np.arange(len(images))
    for group in range(4):
        members = indices[group::4]
        for start in range(0, len(members), 2):
            rows = members[start : start + 2]
            normalised = torch.stack([official(Image.fromarray(images[row])) for row in rows])
            magnitudes = flow.magnitudes((normalised * std + mean).clamp(0, 1))
            with torch.inference_mode():
                network_probability[rows] = model(normalised[None], magnitudes[None]).motion_mask[0].numpy()
    expected_levels = official_eval_levels(network_probability, height, width)
    expected_masks = expected_levels / 255.0 > EVAL_THRESHOLD
    assert 0 < expected_masks.mean() < 1  # the case is informative: both classes present

    written_masks = read_levels(out / "masks") > 0
    written_levels = read_levels(out / "probability").astype(int)
    assert written_masks.shape == (len(images), height, width)
    assert np.abs(written_levels - expected_levels).max() <= 1
    np.testing.assert_array_equal(written_masks, expected_masks)
