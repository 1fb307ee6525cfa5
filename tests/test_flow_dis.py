"""OpenCV DIS flow: known displacements of a real DAVIS frame, both entry points, bad input."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from geomotion_core.errors import ConfigError, InputError
from geomotion_core.flow.dis import DISConfig, DISFlow, DISFlowEstimator, dis_flow

SHIFT = (3.0, -2.0)  # (dx, dy) pixels


@pytest.fixture(scope="module")
def frame(davis_root: Path) -> np.ndarray:
    """A textured real frame (car-shadow 0), RGB, 320x180."""
    image = cv2.imread(str(davis_root / "JPEGImages" / "480p" / "car-shadow" / "00000.jpg"))
    return cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), (320, 180), interpolation=cv2.INTER_AREA)


def shifted(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """The image translated by (dx, dy): the content at x appears at x + (dx, dy)."""
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, matrix, (image.shape[1], image.shape[0]), borderMode=cv2.BORDER_REFLECT)


def interior(field: np.ndarray, margin: int = 16) -> np.ndarray:
    return field[margin:-margin, margin:-margin]


def test_numpy_flow_recovers_a_known_translation(frame):
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    field = dis_flow(gray, shifted(gray, *SHIFT))
    assert field.shape == (*gray.shape, 2) and field.dtype == np.float32
    np.testing.assert_allclose(np.median(interior(field), axis=(0, 1)), SHIFT, atol=0.1)
    reverse = dis_flow(shifted(gray, *SHIFT), gray, preset="fast")
    np.testing.assert_allclose(np.median(interior(reverse), axis=(0, 1)), [-SHIFT[0], -SHIFT[1]], atol=0.15)


def test_reduced_scale_prepares_smaller_frames_with_flow_in_their_pixels(frame):
    flow = DISFlow(DISConfig(scale=0.5))
    gray_a, gray_b = flow.prepare(frame), flow.prepare(shifted(frame, 4.0, 2.0))
    assert gray_a.shape == (90, 160) and gray_a.dtype == np.uint8
    np.testing.assert_allclose(np.median(interior(flow(gray_a, gray_b), 8), axis=(0, 1)), [2.0, 1.0], atol=0.15)


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_estimator_returns_input_size_pixel_flow_for_each_pair(frame, scale):
    moved = shifted(frame, *SHIFT)
    source = torch.from_numpy(np.stack([frame, moved])).permute(0, 3, 1, 2).float() / 255
    target = torch.from_numpy(np.stack([moved, frame])).permute(0, 3, 1, 2).float() / 255
    field = DISFlowEstimator(scale=scale).flow(source, target)
    assert field.shape == (2, 2, 180, 320) and field.dtype == torch.float32
    medians = np.median(field[:, :, 16:-16, 16:-16].numpy(), axis=(2, 3))
    np.testing.assert_allclose(medians, [SHIFT, [-SHIFT[0], -SHIFT[1]]], atol=0.2)


def test_bidirectional_magnitudes_of_a_static_clip_are_near_zero(frame):
    clip = torch.from_numpy(np.stack([frame] * 3)).permute(0, 3, 1, 2).float() / 255
    magnitude = DISFlowEstimator().magnitudes(clip)
    assert magnitude.shape == (3, 180, 320)
    assert float(magnitude.max()) < 0.05


def test_bad_settings_and_inputs_raise_clear_errors(frame):
    with pytest.raises(ConfigError, match="preset"):
        DISConfig(preset="slow")
    with pytest.raises(ConfigError, match="scale"):
        DISConfig(scale=0.0)
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    with pytest.raises(InputError, match="one size"):
        DISFlow()(gray, gray[:-1])
    batch = torch.zeros(1, 3, 8, 8)
    with pytest.raises(InputError, match=r"\[P, 3, H, W\]"):
        DISFlowEstimator().flow(batch, torch.zeros(1, 3, 8, 9))
