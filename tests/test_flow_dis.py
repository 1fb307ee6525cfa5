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


def test_explicit_parameters_replace_the_presets_and_keep_the_flow(frame):
    preset = DISConfig().create()
    tuned = DISConfig(finest_scale=2, patch_size=12, patch_stride=5, descent_iterations=7, refinement_iterations=0).create()
    assert (preset.getFinestScale(), preset.getPatchSize(), preset.getPatchStride()) == (1, 8, 3)
    assert (tuned.getFinestScale(), tuned.getPatchSize(), tuned.getPatchStride()) == (2, 12, 5)
    assert (tuned.getGradientDescentIterations(), tuned.getVariationalRefinementIterations()) == (7, 0)
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    field = DISFlow(DISConfig(patch_stride=4, refinement_iterations=2))(gray, shifted(gray, *SHIFT))
    np.testing.assert_allclose(np.median(interior(field), axis=(0, 1)), SHIFT, atol=0.1)


@pytest.mark.parametrize("setting", [
    {"finest_scale": -1}, {"patch_size": 2}, {"patch_stride": 0}, {"descent_iterations": 0},
    {"refinement_iterations": -1}, {"patch_stride": 2.5}, {"patch_size": 6, "patch_stride": 8},
])
def test_bad_explicit_parameters_raise(setting):
    with pytest.raises(ConfigError, match="DIS"):
        DISConfig(**setting)


def test_half_size_frames_at_finest_scale_0_give_the_medium_flow(davis_root: Path):
    """``medium`` estimates at half size (finest scale 1) and upsamples; half-size frames at finest
    scale 0 (the geometric backend's default) give that flow directly."""
    paths = sorted((davis_root / "JPEGImages" / "480p" / "car-shadow").glob("*.jpg"))[:2]
    frames = [cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB) for path in paths]
    medium, half = DISFlow(), DISFlow(DISConfig(scale=0.5, finest_scale=0))
    direct = half(*[half.prepare(frame) for frame in frames])
    assert direct.shape == (240, 427, 2)
    upsampled = medium(*[medium.prepare(frame) for frame in frames])
    reduced = cv2.resize(upsampled, (427, 240), interpolation=cv2.INTER_AREA) * 0.5
    difference = np.linalg.norm(reduced - direct, axis=2)
    assert np.median(np.linalg.norm(direct, axis=2)) > 1.0  # the camera moves
    assert np.median(difference) < 0.01 and np.percentile(difference, 95) < 0.1
