"""The ego-motion hot path: vector lengths, forward-backward error and a fit independent of the working size."""
from __future__ import annotations

import numpy as np
import pytest

from geomotion_core.geometric.egomotion import (
    CoarseRing,
    PixelGrid,
    cheiral_residual,
    fit_fundamental,
    fit_parallax_epipole,
    fit_homography,
    forward_backward_error,
    landing_map,
    magnitude,
    sampson_distance,
)

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


def two_view_scene(seed: int = 0):
    """A camera moving sideways (and turning 1 degree) past a scene of random depths (2-20 units):
    its grid, every pixel's landing in the second view, and the true fundamental matrix."""
    grid = PixelGrid.with_samples(120, 160, 800)
    focal, centre = 140.0, np.array([80.0, 60.0])
    camera = np.array([[focal, 0.0, centre[0]], [0.0, focal, centre[1]], [0.0, 0.0, 1.0]])
    angle = np.radians(1.0)
    rotation = np.array([[np.cos(angle), 0.0, np.sin(angle)], [0.0, 1.0, 0.0], [-np.sin(angle), 0.0, np.cos(angle)]])
    translation = np.array([0.3, 0.05, 0.0])
    depth = np.random.default_rng(seed).uniform(2.0, 20.0, (grid.height, grid.width))
    rays = np.dstack([(grid.coordinates - centre) / focal, np.ones((grid.height, grid.width))])
    moved = (rays * depth[..., None]) @ rotation.T + translation
    landing = (moved[..., :2] / moved[..., 2:] * focal + centre).astype(np.float32)
    skew = np.array([[0.0, -translation[2], translation[1]], [translation[2], 0.0, -translation[0]],
                     [-translation[1], translation[0], 0.0]])
    inverse = np.linalg.inv(camera)
    return grid, landing, inverse.T @ skew @ rotation @ inverse


def test_static_points_at_any_depth_satisfy_the_fitted_epipolar_geometry():
    grid, landing, truth = two_view_scene()
    assert float(sampson_distance(truth, landing, grid).max()) < 1e-2
    rows, cols = grid.samples
    source, target = grid.coordinates[rows, cols], landing[rows, cols].copy()
    target[::5] += np.random.default_rng(1).uniform(-15.0, 15.0, target[::5].shape)  # movers
    fundamental, inliers = fit_fundamental(source, target, 1.0, units=854 / grid.width)
    static = np.ones(len(source), dtype=bool)
    static[::5] = False
    assert inliers[static].mean() > 0.95
    assert float(np.percentile(sampson_distance(fundamental, landing, grid), 99)) < 0.3


def test_sampson_distance_sees_motion_across_the_epipolar_lines_only():
    grid, landing, truth = two_view_scene()
    # the camera moves mostly along x, so epipolar lines are nearly horizontal
    across, along = landing.copy(), landing.copy()
    across[..., 1] += 4.0
    along[..., 0] += 4.0
    assert float(np.median(sampson_distance(truth, across, grid))) > 1.5
    assert float(np.median(sampson_distance(truth, along, grid))) < 0.5


def test_too_few_points_give_no_fundamental_matrix():
    fundamental, inliers = fit_fundamental(np.zeros((5, 2), np.float32), np.ones((5, 2), np.float32), 1.0)
    assert fundamental is None and inliers.shape == (5,) and not inliers.any()


FOCUS = np.array([600.0, 120.0])  # the epipole (focus of expansion) of parallax_samples, right of the frame


def parallax_samples(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Grid samples of a 427x240 frame whose camera moves towards FOCUS: the dominant far surface
    flows away from it (``background``, about 6 px), static structure in front of the surface in
    the lower three quarters adds parallax along the same lines (0.5-8 px), and every sample has
    0.1 px of noise. Returns the samples moved by the background, their residuals, the background
    flow there and which samples have parallax."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[5:240:10, 5:427:10]
    points = np.column_stack([cols.ravel(), rows.ravel()]).astype(np.float64)
    background = 0.02 * (points - FOCUS)
    warped = points + background
    near = points[:, 1] >= 60
    residual = rng.normal(0.0, 0.1, points.shape)
    residual[near] += rng.uniform(0.002, 0.03, (near.sum(), 1)) * (warped[near] - FOCUS)
    return warped, residual, background, near


def epipole_arguments(residual: np.ndarray, warped: np.ndarray, background: np.ndarray) -> tuple:
    return warped, residual, background, (240, 427), 0.5, 10.0, 0.5


def test_the_parallax_epipole_is_found_and_signed_towards_the_parallax():
    warped, residual, background, near = parallax_samples()
    epipole = fit_parallax_epipole(*epipole_arguments(residual, warped, background))
    assert epipole is not None
    np.testing.assert_allclose(epipole[:2] / epipole[2], FOCUS, atol=15.0)
    towards = warped * epipole[2] - epipole[:2]
    assert np.all(np.sum(towards[near] * residual[near], axis=1) > 0)


def test_no_epipole_without_parallax_or_from_a_compact_mover():
    warped, residual, background, _ = parallax_samples()
    noise = np.random.default_rng(2).normal(0.0, 0.1, residual.shape)
    assert fit_parallax_epipole(*epipole_arguments(noise, warped, background)) is None  # rotation only
    mover = noise.copy()
    inside = (np.abs(warped[:, 0] - 200) < 40) & (np.abs(warped[:, 1] - 120) < 40)
    mover[inside] += [5.0, 0.0]
    assert fit_parallax_epipole(*epipole_arguments(mover, warped, background)) is None


def test_a_large_object_moving_against_the_camera_motion_is_not_taken_for_parallax():
    """An object the camera follows moves against the background's flow: its residual points
    along lines through one epipole but with the sign no static structure can have."""
    warped, residual, background, near = parallax_samples()
    tracked = np.random.default_rng(3).normal(0.0, 0.1, residual.shape)
    tracked[near] -= 0.8 * background[near]
    assert fit_parallax_epipole(*epipole_arguments(tracked, warped, background)) is None


def test_cheiral_residual_removes_only_parallax_with_the_static_sign():
    grid = PixelGrid.with_samples(40, 60, 100)
    warped = grid.coordinates.copy()
    epipole = np.array([1.0, 0.0, 0.0])  # at infinity along x, signed: static parallax points towards -x
    residual = np.zeros((40, 60, 2), np.float32)
    residual[:10, :, 0] = -3.0  # static parallax: removed
    residual[10:20, :, 0] = 3.0  # against it ("behind" the surface): kept
    residual[20:30, :, 1] = 3.0  # across the epipolar lines: kept
    residual[30:, :] = (-3.0, 4.0)  # both: the across part (4) is kept
    score = cheiral_residual(residual, warped, epipole, blind_radius=5.0)
    np.testing.assert_allclose(score[:10], 0.0, atol=1e-5)
    np.testing.assert_allclose(score[10:30], 3.0, atol=1e-5)
    np.testing.assert_allclose(score[30:], 4.0, atol=1e-5)


def test_the_rings_median_follows_a_smooth_field_and_ignores_an_object_smaller_than_the_ring():
    """The local background: a residual that grows smoothly over the frame (ground whose depth
    varies) is its own ring median away from the borders, so its departure from it is small; a
    square of another motion, smaller than the ring, keeps its whole difference from the ground."""
    rows, cols = np.mgrid[0:120, 0:200].astype(np.float32)
    field = np.dstack([0.03 * rows + 0.01 * cols, 0.02 * rows]).astype(np.float32)
    smooth = magnitude(field - CoarseRing.of(field, radius=40.0).median())
    assert smooth[20:100, 20:180].max() < 0.15  # the field spans 4.2 px; measured 0.11
    moving = field.copy()
    moving[50:70, 90:110] += np.float32([1.5, -1.0])
    departure = magnitude(moving - CoarseRing.of(moving, radius=40.0).median())
    np.testing.assert_allclose(departure[50:70, 90:110], np.hypot(1.5, 1.0), atol=0.05)  # measured 1.80
    departure[50:70, 90:110] = 0.0
    assert departure.max() < 0.6  # ground whose ring crosses the square: measured 0.56


def test_border_sectors_continue_a_corner_block_that_the_ring_median_misses():
    """A block of another motion in the frame's bottom-left corner: the ring median of its pixels
    is mostly the rest of the frame, but the border sectors beyond its edges repeat the block and
    match it; in the frame's middle no ring sample lies beyond an edge, so there is no sector."""
    field = np.zeros((120, 200, 2), np.float32)
    field[80:, :50] = (3.0, -1.0)
    continuation, present = CoarseRing.of(field, radius=40.0).border_continuation()
    ring_departure = magnitude(field - CoarseRing.of(field, radius=40.0).median())
    border_departure = magnitude(field - continuation)
    block = (slice(80, 120), slice(0, 50))
    assert ring_departure[block].mean() > 1.5 and border_departure[block].mean() < 0.4  # measured 1.79, 0.27
    far_from_the_corner = (slice(96, 116), slice(26, 45))  # where the ring median is mostly the rest of the frame
    assert ring_departure[far_from_the_corner].min() > 1.2  # measured 1.58-3.16
    assert present[far_from_the_corner].all() and border_departure[far_from_the_corner].max() < 0.1  # measured 0
    assert not present[40:80, 60:140].any()
