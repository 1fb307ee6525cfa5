# SPDX-License-Identifier: Apache-2.0
"""The background (ego-motion) model: a homography fitted robustly to flow correspondences."""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

MIN_CORRESPONDENCES = 8
PARALLAX_CELLS = (4, 6)  # rows, columns of the grid on which parallax must agree across the frame
MIN_CELL_SAMPLES = 3  # a cell counts only with this many samples of clear residual
RING_DIRECTIONS = 8  # samples of a pixel's surroundings in a ``CoarseRing`` (even: the median averages the middle two)
RING_CELLS = 10  # a ``CoarseRing``'s grid has cells of its radius / this
SECTOR_OUTSIDE = 2  # a border sector (three adjacent ring samples) has at least this many beyond the frame's edge


@dataclass(frozen=True)
class PixelGrid:
    """Pixel coordinates of one working size, and the sparse grid sampled for model fits."""

    height: int
    width: int
    step: int

    @classmethod
    def with_samples(cls, height: int, width: int, samples: int) -> "PixelGrid":
        """The grid whose regular sampling gives about ``samples`` points."""
        return cls(height, width, max(1, round(math.sqrt(height * width / samples))))

    @cached_property
    def coordinates(self) -> np.ndarray:
        """``[H, W, 2]`` float32 (x, y) of every pixel."""
        xs, ys = np.meshgrid(np.arange(self.width, dtype=np.float32), np.arange(self.height, dtype=np.float32))
        return np.dstack([xs, ys])

    @cached_property
    def samples(self) -> tuple[np.ndarray, np.ndarray]:
        """Row and column indices of the correspondence grid (cell centres)."""
        offset = self.step // 2
        rows, cols = np.mgrid[offset : self.height : self.step, offset : self.width : self.step]
        return rows.ravel(), cols.ravel()


def landing_map(flow: np.ndarray, grid: PixelGrid) -> np.ndarray:
    """``[H, W, 2]`` float32 ``x + flow(x)``: where each pixel lands in the other frame (a remap map)."""
    return grid.coordinates + flow


def magnitude(field: np.ndarray) -> np.ndarray:
    """``[H, W]`` float32 length of every vector of a ``[H, W, 2]`` float32 field (two passes over
    the channels: about 2x faster than ``einsum`` on an interleaved field)."""
    u, v = field[..., 0], field[..., 1]
    squared = u * u
    squared += v * v
    return np.sqrt(squared, out=squared)


def forward_backward_error(flow_ab: np.ndarray, flow_ba: np.ndarray, landing_ab: np.ndarray) -> np.ndarray:
    """``|flow_ab(x) + flow_ba(x + flow_ab(x))|`` per pixel: large where ``x`` is occluded in b.
    ``landing_ab`` is ``landing_map(flow_ab)``."""
    back = cv2.remap(flow_ba, landing_ab, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    back += flow_ab
    return magnitude(back)


def grid_correspondences(flow: np.ndarray, reliable: np.ndarray, grid: PixelGrid) -> tuple[np.ndarray, np.ndarray]:
    """Source and target points of the reliable grid samples of ``flow``."""
    rows, cols = grid.samples
    keep = reliable[rows, cols]
    source = grid.coordinates[rows[keep], cols[keep]]
    return source, source + flow[rows[keep], cols[keep]]


def fit_homography(
    source: np.ndarray, target: np.ndarray, threshold: float, units: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Dominant homography (``target ~ H source``) by MAGSAC, and its inlier mask.

    MAGSAC runs on the points (and ``threshold``) multiplied by ``units``: its result depends on
    the scale of the coordinates (with the 1 px threshold of a half-size frame it settled on
    worse fits than with 2 px at full size), so callers working on a resized frame pass the
    factor back to one fixed reference width and get the same fit at every working size. The
    homography is returned in the points' own units.
    With too few points or a degenerate configuration the identity (no camera motion) is returned
    with no inliers, so a black or textureless frame never raises.
    """
    count = len(source)
    if count >= MIN_CORRESPONDENCES:
        homography, inliers = cv2.findHomography(source * units, target * units, cv2.USAC_MAGSAC, threshold * units)
        if homography is not None and np.all(np.isfinite(homography)):
            to_units = np.diag([units, units, 1.0])
            return np.linalg.inv(to_units) @ homography @ to_units, inliers.ravel().astype(bool)
    return np.eye(3), np.zeros(count, dtype=bool)


def homography_flow(homography: np.ndarray, grid: PixelGrid) -> np.ndarray:
    """``[H, W, 2]`` float32 flow that the homography predicts for every pixel."""
    points = grid.coordinates.reshape(-1, 1, 2)
    mapped = cv2.perspectiveTransform(points, homography).reshape(grid.height, grid.width, 2)
    mapped -= grid.coordinates
    return mapped


def fit_fundamental(
    source: np.ndarray, target: np.ndarray, threshold: float, units: float = 1.0
) -> tuple[np.ndarray | None, np.ndarray]:
    """Dominant fundamental matrix (``target^T F source = 0``) by MAGSAC, and its inlier mask.

    As for ``fit_homography`` the fit runs in reference units (``units``) and F is returned in the
    points' own units. None (with no inliers) when there are too few points or the fit fails.
    """
    count = len(source)
    if count >= MIN_CORRESPONDENCES:
        try:
            fundamental, inliers = cv2.findFundamentalMat(
                source * units, target * units, cv2.USAC_MAGSAC, threshold * units, 0.999
            )
        except cv2.error:  # MAGSAC asserts on some degenerate samples (OpenCV 5.1)
            fundamental = None
        if fundamental is not None and fundamental.shape == (3, 3) and np.all(np.isfinite(fundamental)):
            to_units = np.diag([units, units, 1.0])
            return to_units @ fundamental @ to_units, inliers.ravel().astype(bool)
    return None, np.zeros(count, dtype=bool)


def sampson_distance(fundamental: np.ndarray, landing: np.ndarray, grid: PixelGrid) -> np.ndarray:
    """``[H, W]`` float32 Sampson distance (pixels) of every pixel ``x`` and where it lands, ``x'``,
    from the epipolar constraint ``x'^T F x = 0``: how far its flow departs from any static point
    at any depth (zero for parallax, large for motion across the epipolar lines)."""
    f = fundamental.astype(np.float32)
    x, y = grid.coordinates[..., 0], grid.coordinates[..., 1]
    x2, y2 = landing[..., 0], landing[..., 1]
    line_a = f[0, 0] * x + f[0, 1] * y + f[0, 2]
    line_b = f[1, 0] * x + f[1, 1] * y + f[1, 2]
    line_c = f[2, 0] * x + f[2, 1] * y + f[2, 2]
    back_a = f[0, 0] * x2 + f[1, 0] * y2 + f[2, 0]
    back_b = f[0, 1] * x2 + f[1, 1] * y2 + f[2, 1]
    algebraic = x2 * line_a + y2 * line_b + line_c
    norm = line_a * line_a + line_b * line_b + back_a * back_a + back_b * back_b
    return np.abs(algebraic) / np.sqrt(np.maximum(norm, np.float32(1e-12)))


def fit_parallax_epipole(
    warped: np.ndarray,
    residual: np.ndarray,
    background: np.ndarray,
    frame_size: tuple[int, int],
    min_residual: float,
    max_angle_degrees: float,
    min_support: float,
    hypotheses: int = 128,
) -> np.ndarray | None:
    """The epipole of the plane-plus-parallax residual, signed so that static parallax points
    along ``warped * e[2] - e[:2]``; None when the residuals show no parallax across the frame.

    With the background homography H of the dominant surface, a static point x off that surface
    lands at ``Hx + gamma (e - Hx)`` for the epipole e (homogeneous), with gamma's sign fixed by
    the side of the surface the point lies on. The epipole is where the lines through ``warped``
    (``[N, 2]`` sample points moved by H) along their ``residual`` (``[N, 2]``, flow minus H's
    flow) meet; ``background`` (``[N, 2]``) is H's flow at the samples. A two-line RANSAC (fixed
    seed, so repeatable) scores each hypothesis by the cells of a 6x4 grid over the frame
    (``frame_size``: height, width) in which at least half of the samples with a residual of
    ``min_residual`` pixels or more point within ``max_angle_degrees`` of it: parallax of static
    structure agrees across the frame, a moving object (however many samples it covers) or water
    only in a few cells. The best hypothesis is refined by least squares over its inliers and
    kept only if it holds in at least ``min_support`` of all cells. Its sign is the supporting
    cells' majority (the dominant, far surface has most static structure in front of it), and it must
    agree with the camera-induced motion (``background``) in most of those cells: static
    structure nearer than the surface moves the same way as the surface, only faster. When it
    does not, the main residual is an object the camera follows (it moves against the
    background's flow) and None is returned.
    """
    lengths = np.linalg.norm(residual, axis=1)
    strong = lengths >= min_residual
    if strong.sum() < MIN_CORRESPONDENCES:
        return None
    scale = float(max(frame_size))
    points = (warped[strong] / scale).astype(np.float32)
    directions = (residual[strong] / lengths[strong, None]).astype(np.float32)
    height, width = frame_size
    rows = np.clip((warped[strong, 1] * PARALLAX_CELLS[0] / height).astype(int), 0, PARALLAX_CELLS[0] - 1)
    cols = np.clip((warped[strong, 0] * PARALLAX_CELLS[1] / width).astype(int), 0, PARALLAX_CELLS[1] - 1)
    cell_of = rows * PARALLAX_CELLS[1] + cols
    cells = np.eye(PARALLAX_CELLS[0] * PARALLAX_CELLS[1], dtype=np.float32)[cell_of]
    per_cell = cells.sum(axis=0)
    needed = np.maximum(MIN_CELL_SAMPLES, 0.5 * per_cell)
    lines = np.cross(  # the line through each point along its residual
        np.column_stack([points, np.ones(len(points))]), np.column_stack([directions, np.zeros(len(points))])
    )
    rng = np.random.default_rng(0)
    pairs = rng.integers(0, len(lines), size=(hypotheses, 2))
    candidates = np.cross(lines[pairs[:, 0]], lines[pairs[:, 1]])
    candidates /= np.maximum(np.linalg.norm(candidates, axis=1, keepdims=True), 1e-12)
    limit = math.sin(math.radians(max_angle_degrees))
    inliers = _epipole_inliers(candidates.astype(np.float32), points, lines.astype(np.float32), limit)
    count = cells.shape[1]
    slots = np.arange(len(inliers))[:, None] * count + cell_of[None]
    supported = np.bincount(slots[inliers], minlength=len(inliers) * count).reshape(-1, count) >= needed
    best = int(np.argmax(supported.sum(axis=1)))
    if supported[best].sum() < min_support * cells.shape[1]:
        return None
    members = inliers[best] & supported[best][cell_of]
    support = lines[members]
    epipole = np.linalg.eigh(np.einsum("ni,nj->ij", support, support))[1][:, 0]  # least squares
    towards = points * epipole[2] - epipole[:2]
    alignment = np.sign(np.einsum("ij,ij->i", towards, directions)) * members
    sign = np.sign(np.sum(np.sign(np.einsum("n,nc->c", alignment, cells))))
    along_camera = np.sign(np.einsum("ij,ij->i", towards, background[strong])) * members
    if sign == 0 or sign * np.sum(np.sign(np.einsum("n,nc->c", along_camera, cells))) <= 0:
        return None
    epipole = sign * epipole
    return np.array([epipole[0] * scale, epipole[1] * scale, epipole[2]])


def _epipole_inliers(candidates: np.ndarray, points: np.ndarray, lines: np.ndarray, limit: float) -> np.ndarray:
    """``[K, N]`` bool: sample n's residual lies within the angle (sine ``limit``) of the line
    from its point towards candidate epipole k. With unit directions, ``|line_n . e_k|`` is the
    sine times the length of ``p_n e_k[2] - e_k[:2]``; both are small products, written as
    ``einsum`` (no BLAS threads, which cost more than the work on a loaded machine)."""
    sine_length = np.abs(np.einsum("ki,ni->kn", candidates, lines))
    scale, offset = candidates[:, 2:3], candidates[:, :2]
    squared_length = scale * scale * np.einsum("ij,ij->i", points, points)[None]
    squared_length -= 2.0 * scale * np.einsum("ki,ni->kn", offset, points)
    squared_length += np.einsum("ij,ij->i", offset, offset)[:, None]
    return sine_length * sine_length < limit * limit * np.maximum(squared_length, 1e-12)


@dataclass(frozen=True)
class CoarseRing:
    """A vector field averaged on a coarse grid (cells of ``radius / RING_CELLS`` pixels) and read
    ``radius`` pixels away from every cell in ``RING_DIRECTIONS`` directions (borders replicated),
    so that the cost of the ring does not grow with its radius."""

    size: tuple[int, int]  # the field's (width, height)
    cells: np.ndarray  # [rows, cols, 2] the field's mean per cell
    samples: np.ndarray  # [RING_DIRECTIONS, rows, cols, 2] the ring around each cell
    outside: np.ndarray  # [RING_DIRECTIONS, rows, cols] bool: the sample lies beyond the frame's edge

    @classmethod
    def of(cls, field: np.ndarray, radius: float) -> "CoarseRing":
        height, width = field.shape[:2]
        cell = max(radius / RING_CELLS, 1.0)
        rows, cols = max(1, round(height / cell)), max(1, round(width / cell))
        reach = max(1, round(radius / cell))
        cells = cv2.resize(field, (cols, rows), interpolation=cv2.INTER_AREA)
        padded = cv2.copyMakeBorder(cells, reach, reach, reach, reach, cv2.BORDER_REPLICATE)
        angles = 2.0 * np.pi * np.arange(RING_DIRECTIONS) / RING_DIRECTIONS
        offsets = list(zip(np.rint(reach * np.sin(angles)).astype(int), np.rint(reach * np.cos(angles)).astype(int)))
        samples = np.stack([padded[reach + dy : reach + dy + rows, reach + dx : reach + dx + cols] for dy, dx in offsets])
        row, col = np.mgrid[0:rows, 0:cols]
        outside = np.stack([(row + dy < 0) | (row + dy >= rows) | (col + dx < 0) | (col + dx >= cols) for dy, dx in offsets])
        return cls((width, height), cells, samples, outside)

    def median(self) -> np.ndarray:
        """``[H, W, 2]`` float32: a robust estimate of the field around every pixel, the
        per-component median of its ring (upsampled bilinearly from the cells). A region smaller
        than the ring (a moving object) does not reach the median of its own pixels; structure
        whose residual varies smoothly over the ring does."""
        ordered = np.sort(self.samples, axis=0)
        middle = RING_DIRECTIONS // 2
        median = (ordered[middle - 1] + ordered[middle]) * np.float32(0.5)
        return cv2.resize(median, self.size, interpolation=cv2.INTER_LINEAR)

    def border_continuation(self) -> tuple[np.ndarray, np.ndarray]:
        """The field's continuation beyond the frame's edge next to every pixel (``[H, W, 2]``
        float32) and where there is one (``[H, W]`` bool).

        Near the edge part of the ring falls outside the frame and repeats the border. A static
        near object that the edge cuts (a rock in the frame's corner) is then surrounded by
        itself only on the outside, and the ring's median stays between it and the scene beyond
        it; the ring samples beyond the edge next to it continue the object itself. Each cell's
        border sectors are three adjacent ring samples of which at least ``SECTOR_OUTSIDE`` lie
        beyond the edge; their per-component median is a candidate, and the cell takes the one
        closest to its own mean. Upsampled bilinearly (the validity by nearest neighbour), as
        ``median``.
        """
        following = np.roll(np.arange(RING_DIRECTIONS), -1)
        first, second, third = self.samples, self.samples[following], self.samples[following[following]]
        medians = np.maximum(np.minimum(first, second), np.minimum(np.maximum(first, second), third))
        valid = (self.outside.view(np.uint8) + self.outside[following] + self.outside[following[following]]) >= SECTOR_OUTSIDE
        distance = medians - self.cells[None]
        distance = np.einsum("...i,...i->...", distance, distance)
        distance[~valid] = np.inf
        best = np.argmin(distance, axis=0)
        chosen = np.take_along_axis(medians, best[None, ..., None], axis=0)[0]
        continuation = cv2.resize(chosen, self.size, interpolation=cv2.INTER_LINEAR)
        present = cv2.resize(valid.any(axis=0).view(np.uint8), self.size, interpolation=cv2.INTER_NEAREST).view(bool)
        return continuation, present


def cheiral_residual(residual: np.ndarray, warped: np.ndarray, epipole: np.ndarray, blind_radius: float) -> np.ndarray:
    """``[H, W]`` float32: each pixel's residual (``[H, W, 2]``, flow minus the background
    homography's) less the part that static parallax in front of the dominant surface explains.

    ``warped`` (``[H, W, 2]``) is each pixel moved by the homography and ``epipole`` is signed as
    ``fit_parallax_epipole`` returns it. The component along the pixel's epipolar line with the
    sign of static parallax is removed; the component across the line and the one with the
    opposite sign (a point "behind" the surface the camera sees: what an object the camera
    tracks, whose flow is near zero, looks like) remain. Within ``blind_radius`` pixels of a
    finite epipole the direction is undefined and the residual is kept whole.
    """
    e = epipole.astype(np.float32)
    towards = warped * e[2]
    towards -= e[:2]
    length = magnitude(towards)
    np.maximum(length, np.float32(abs(e[2]) * blind_radius + 1e-12), out=length)
    along = residual[..., 0] * towards[..., 0]
    along += residual[..., 1] * towards[..., 1]
    along /= length
    np.maximum(along, 0.0, out=along)
    total = magnitude(residual)
    total *= total
    along *= along
    total -= along
    np.maximum(total, 0.0, out=total)
    return np.sqrt(total, out=total)
