"""The background (ego-motion) model: a homography fitted robustly to flow correspondences."""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

MIN_CORRESPONDENCES = 8


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
