# SPDX-License-Identifier: Apache-2.0
"""Everything measured once for a pair of consecutive frames: flows, background fits, scores, pose."""
from __future__ import annotations

from concurrent.futures import Executor, Future
from dataclasses import dataclass

import cv2
import numpy as np

from geomotion_core.flow.dis import DISFlow
from geomotion_core.geometric.camera import relative_pose
from geomotion_core.geometric.config import REFERENCE_WIDTH, GeometricConfig
from geomotion_core.geometric.egomotion import (
    CoarseRing,
    PixelGrid,
    fit_fundamental,
    cheiral_residual,
    fit_homography,
    fit_parallax_epipole,
    forward_backward_error,
    grid_correspondences,
    homography_flow,
    landing_map,
    magnitude,
    sampson_distance,
)
from geomotion_core.geometric.scoring import residual_score


@dataclass(frozen=True)
class DirectionalMotion:
    """One frame's motion evidence from its flow towards one neighbour."""

    score: np.ndarray  # [h, w] float32 residual in noise units
    reliable: np.ndarray  # [h, w] bool: forward-backward consistent (not occluded)
    landing: np.ndarray  # [h, w, 2] float32 where each pixel lands in the neighbour: x + flow(x)


@dataclass(frozen=True)
class PairMotion:
    """Frame a's evidence towards b, frame b's towards a, and the relative pose ``X_b = R X_a + t``.

    A pair with a blank frame (black, saturated, textureless) has no evidence and the identity pose.
    """

    forward: DirectionalMotion | None  # for frame a
    backward: DirectionalMotion | None  # for frame b
    rotation: np.ndarray  # [3, 3]
    translation: np.ndarray  # [3] unit direction, or zeros when not observable


MIN_CONTRAST = 2.0  # grey-level standard deviation below which a frame is blank


def is_blank(gray: np.ndarray) -> bool:
    """Whether a frame has too little contrast for flow (black, saturated or textureless)."""
    return float(cv2.meanStdDev(gray)[1][0, 0]) < MIN_CONTRAST


def resize_flow(field: np.ndarray, grid: PixelGrid) -> np.ndarray:
    """A flow field resized to the grid's size (INTER_AREA), its vectors in the new pixels."""
    height, width = field.shape[:2]
    if (height, width) == (grid.height, grid.width):
        return field
    resized = cv2.resize(field, (grid.width, grid.height), interpolation=cv2.INTER_AREA)
    resized *= np.array([grid.width / width, grid.height / height], dtype=np.float32)
    return resized


def background_residual(
    flow: np.ndarray, landing: np.ndarray, reliable: np.ndarray, grid: PixelGrid, config: GeometricConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """How far every pixel's flow departs from the background model (``[H, W]`` float32 pixels),
    the background flow, and the reliable grid correspondences and homography the fit used.

    The background is the MAGSAC homography of the reliable grid samples; with ``parallax`` the
    residual loses the part that static structure in front of the fitted surface explains
    (``fit_parallax_epipole``, ``cheiral_residual``); with ``local_radius`` a pixel's residual is
    at most its departure from the residual of its surroundings (``CoarseRing.median``): static
    structure whose depth varies smoothly is explained locally, a mover differs from the ground
    around it; with ``border_sectors`` it is also at most its departure from the residual
    beyond the frame's edge next to it (``_border_departure``: near structure that the edge cuts);
    with ``epipolar`` the
    residual is the smaller of the homography's and the Sampson distance to a fundamental matrix
    fitted to the same samples, so static structure off the dominant plane (parallax) is not
    taken for motion (see docs/geometric.md for what that costs on real video).
    """
    source, target = grid_correspondences(flow, reliable, grid)
    units = REFERENCE_WIDTH / grid.width
    homography, _ = fit_homography(source, target, config.homography_threshold, units)
    background = homography_flow(homography, grid)
    departure = flow - background
    if config.parallax:
        residual = _residual_without_parallax(departure, background, source, target, grid, config)
    else:
        residual = magnitude(departure)
    if config.local_radius > 0:
        ring = CoarseRing.of(departure, config.local_radius)
        if config.border_sectors:
            np.minimum(residual, _border_departure(flow, background, departure, ring, config), out=residual)
        departure -= ring.median()
        np.minimum(residual, magnitude(departure), out=residual)
    if config.epipolar:
        fundamental, _ = fit_fundamental(source, target, config.epipolar_threshold, units)
        if fundamental is not None:
            np.minimum(residual, sampson_distance(fundamental, landing, grid), out=residual)
    return residual, background, source, target, homography


def _border_departure(
    flow: np.ndarray, background: np.ndarray, departure: np.ndarray, ring: CoarseRing, config: GeometricConfig
) -> np.ndarray:
    """``[H, W]`` float32: each pixel's departure from the continuation of the residual beyond the
    frame's edge next to it (``ring``: the ``departure``'s ``CoarseRing``), infinite where there
    is none or where the pixel's flow is below ``border_flow_ratio`` times the background's.
    Static structure nearer than the dominant surface moves at least about as fast as the
    surface; an object the camera follows is nearly still in the image and is never explained
    by the edge."""
    continuation, present = ring.border_continuation()
    continuation -= departure
    distance = magnitude(continuation)
    moving_along = magnitude(flow) >= config.border_flow_ratio * magnitude(background)
    distance[~(present & moving_along)] = np.inf
    return distance


PARALLAX_BLIND_FRACTION = 0.05  # no parallax direction within this fraction of the width around a finite epipole


def _residual_without_parallax(
    departure: np.ndarray,
    background: np.ndarray,
    source: np.ndarray,
    target: np.ndarray,
    grid: PixelGrid,
    config: GeometricConfig,
) -> np.ndarray:
    """The residual (``departure``: the flow less the background's) less what static parallax in
    front of the dominant surface explains (its plain length when the samples locate no epipole)."""
    rows, cols = source[:, 1].astype(int), source[:, 0].astype(int)
    warped_samples = source + background[rows, cols]
    epipole = fit_parallax_epipole(
        warped_samples,
        target - warped_samples,
        background[rows, cols],
        (grid.height, grid.width),
        config.parallax_residual,
        config.parallax_angle,
        config.parallax_support,
    )
    if epipole is None:
        return magnitude(departure)
    return cheiral_residual(departure, grid.coordinates + background, epipole, PARALLAX_BLIND_FRACTION * grid.width)


def score_flow(
    flow: np.ndarray, landing: np.ndarray, reliable: np.ndarray, grid: PixelGrid, config: GeometricConfig
) -> np.ndarray:
    """``[H, W]`` float32 motion score (noise units) of every pixel of one flow field."""
    residual, background, *_ = background_residual(flow, landing, reliable, grid, config)
    return residual_score(residual, background, reliable, config.motion_offset, config.noise_floor)


def _direction(
    flow: np.ndarray, reverse: np.ndarray, grid: PixelGrid, config: GeometricConfig
) -> tuple[DirectionalMotion, np.ndarray, np.ndarray, np.ndarray]:
    """Score one flow direction; also return its reliable grid correspondences and homography."""
    landing = landing_map(flow, grid)
    reliable = forward_backward_error(flow, reverse, landing) < config.consistency_threshold
    residual, background, source, target, homography = background_residual(flow, landing, reliable, grid, config)
    score = residual_score(residual, background, reliable, config.motion_offset, config.noise_floor)
    return DirectionalMotion(score, reliable, landing), source, target, homography


def analyse_pair(
    gray_a: np.ndarray,
    gray_b: np.ndarray,
    flows: tuple[DISFlow, DISFlow],
    grid: PixelGrid,
    intrinsics: np.ndarray,
    config: GeometricConfig,
    helper: Executor,
) -> Future[PairMotion]:
    """Flows both ways, background homographies, motion scores of both frames and the camera motion.

    The two directions run concurrently: the b->a flow and score on ``helper`` (one worker, tasks
    run in order) with ``flows[1]``, the a->b ones in the calling thread with ``flows[0]`` (a DIS
    instance is not thread-safe). The camera motion is queued on ``helper`` as well and the pair
    returned as a future, so the caller can start the next pair's flow while it is computed. The
    flows are resized to the ``grid``'s (scoring) size; ``intrinsics`` is the camera matrix at
    that size. A blank frame gives a pair without evidence and the identity pose.
    """
    if is_blank(gray_a) or is_blank(gray_b):
        blank: Future[PairMotion] = Future()
        blank.set_result(PairMotion(None, None, np.eye(3), np.zeros(3)))
        return blank
    pending_ba = helper.submit(lambda: resize_flow(flows[1](gray_b, gray_a), grid))
    flow_ab = resize_flow(flows[0](gray_a, gray_b), grid)
    flow_ba = pending_ba.result()
    pending_backward = helper.submit(_direction, flow_ba, flow_ab, grid, config)
    forward, source, target, homography = _direction(flow_ab, flow_ba, grid, config)
    return helper.submit(_with_pose, forward, pending_backward, source, target, homography, intrinsics, config)


def _with_pose(
    forward: DirectionalMotion,
    pending_backward: Future,
    source: np.ndarray,
    target: np.ndarray,
    homography: np.ndarray,
    intrinsics: np.ndarray,
    config: GeometricConfig,
) -> PairMotion:
    """The pair with its relative pose from the a->b grid points that score as background."""
    static = forward.score[source[:, 1].astype(int), source[:, 0].astype(int)] < config.min_threshold
    rotation, translation = relative_pose(
        source[static], target[static], homography, intrinsics, config.static_motion, config.min_parallax
    )
    return PairMotion(forward, pending_backward.result()[0], rotation, translation)
