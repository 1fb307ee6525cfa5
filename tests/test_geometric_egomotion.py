"""The ego-motion hot path: vector lengths, forward-backward error and a fit independent of the working size."""
from __future__ import annotations

import numpy as np
import pytest

from geomotion_core.geometric.egomotion import PixelGrid, fit_homography, forward_backward_error, landing_map, magnitude

HOMOGRAPHY = np.array([[1.02, 0.01, -7.0], [-0.005, 0.99, 3.0], [2e-5, -1e-5, 1.0]])


def correspondences(width: float, height: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Points of a ``width`` x ``height`` frame moved by HOMOGRAPHY with 0.3 px noise; every
    fourth point is an outlier moved by up to 40 px."""
    rng = np.random.default_rng(seed)
    source = (rng.uniform(size=(800, 2)) * [width, height]).astype(np.float32)
    projected = source @ HOMOGRAPHY[:2, :2].T + HOMOGRAPHY[:2, 2]
    projected /= (source @ HOMOGRAPHY[2, :2] + HOMOGRAPHY[2, 2])[:, None]
    target = projected + rng.normal(scale=0.3, size=source.shape)
    target[::4] += rng.uniform(-40.0, 40.0, size=target[::4].shape)
    return source, target.astype(np.float32)


def test_magnitude_is_the_length_of_every_vector():
    field = np.random.default_rng(1).normal(scale=5.0, size=(7, 9, 2)).astype(np.float32)
    lengths = magnitude(field)
    assert lengths.shape == (7, 9) and lengths.dtype == np.float32
    np.testing.assert_allclose(lengths, np.linalg.norm(field, axis=2), rtol=1e-6)


def test_forward_backward_error_is_zero_for_inverse_flows_and_large_for_inconsistent_ones():
    grid = PixelGrid.with_samples(40, 60, 100)
    forward = np.zeros((40, 60, 2), dtype=np.float32)
    forward[..., 0] = 3.0
    backward = -forward
    error = forward_backward_error(forward, backward, landing_map(forward, grid))
    assert float(error.max()) < 1e-5
    backward[10:20, :, 1] = 5.0  # rows 10-19 of the other frame now disagree by (0, 5)
    error = forward_backward_error(forward, backward, landing_map(forward, grid))
    assert float(error[12:18, 5:50].min()) == pytest.approx(5.0, abs=1e-4)


def test_the_fit_is_returned_in_the_points_units():
    source, target = correspondences(854, 480)
    homography, inliers = fit_homography(source, target, 2.0, units=2.5)
    mapped = source @ homography[:2, :2].T + homography[:2, 2]
    mapped /= (source @ homography[2, :2] + homography[2, 2])[:, None]
    error = np.linalg.norm(mapped - target, axis=1)
    clean = np.ones(len(source), dtype=bool)
    clean[::4] = False
    assert np.median(error[clean]) < 0.6 and inliers[clean].mean() > 0.9


def test_a_half_size_frame_fitted_in_reference_units_gives_the_full_size_fit():
    source, target = correspondences(854, 480)
    full, full_inliers = fit_homography(source, target, 2.0)
    half, half_inliers = fit_homography(source * 0.5, target * 0.5, 1.0, units=2.0)
    to_half = np.diag([0.5, 0.5, 1.0])
    np.testing.assert_allclose(half, to_half @ full @ np.linalg.inv(to_half), rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(half_inliers, full_inliers)
