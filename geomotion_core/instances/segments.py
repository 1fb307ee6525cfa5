# SPDX-License-Identifier: Apache-2.0
"""Split one frame's motion mask into object segments.

Connected components at least ``min_area`` large are parts; smaller ones join the nearest part
within ``merge_gap`` (or are dropped when none is that close). Parts whose boxes are within
``merge_gap`` of each other and whose mean image motions agree within ``merge_speed`` are merged
into one segment. Everything is per component (OpenCV statistics, bincount), never per pixel.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from geomotion_core.instances.config import InstanceConfig


@dataclass
class Segments:
    """The segments of one frame; arrays are indexed by segment label, row 0 is the background."""

    segment_of: np.ndarray  # [C + 1] int32: connected-component label -> segment label (0: dropped)
    area: np.ndarray  # [S + 1] float64 pixels
    box: np.ndarray  # [S + 1, 4] float64 x0, y0, x1, y1 (x1, y1 exclusive)
    centroid: np.ndarray  # [S + 1, 2] float64 x, y
    motion: np.ndarray  # [S + 1, 2] float64 mean image motion, pixels per frame (NaN: unknown)

    @property
    def count(self) -> int:
        return len(self.area) - 1

    def extend(self, area: np.ndarray, box: np.ndarray, centroid: np.ndarray, motion: np.ndarray) -> None:
        """Append segments (the parts of a split segment)."""
        self.area = np.concatenate([self.area, area])
        self.box = np.concatenate([self.box, box])
        self.centroid = np.concatenate([self.centroid, centroid])
        self.motion = np.concatenate([self.motion, motion])


def frame_scale(height: int, width: int) -> tuple[float, float]:
    """``(area, diagonal)`` of a frame in pixels: what the fractions of InstanceConfig refer to."""
    return float(height * width), float(np.hypot(height, width))


def components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``labels [H, W] int32, stats [C + 1, 5], centroids [C + 1, 2]`` of a mask's 8-connected components."""
    _, labels, stats, centroids = cv2.connectedComponentsWithStatsWithAlgorithm(
        mask.view(np.uint8) if mask.dtype == bool else mask.astype(np.uint8), 8, cv2.CV_32S, cv2.CCL_BBDT  # BBDT: several times faster here than the default
    )
    return labels, stats, centroids


def mean_motion(labels: np.ndarray, flow: np.ndarray, count: int) -> np.ndarray:
    """Mean of ``flow`` ``[h, w, 2]`` over each label 0..count of ``labels`` ``[h, w]`` (NaN for no pixel).

    Only the labelled pixels are visited one by one; the background's sum is the rest of the total.
    """
    flat = labels.ravel()
    inside = np.flatnonzero(flat)
    vectors = flow.reshape(-1, 2)
    members = flat[inside]
    pixels = np.bincount(members, minlength=count + 1).astype(np.float64)
    sums = np.stack([np.bincount(members, weights=vectors[inside, axis], minlength=count + 1) for axis in (0, 1)],
                    axis=1)
    pixels[0] = flat.size - len(inside)
    sums[0] = np.array(cv2.sumElems(flow)[:2]) - sums[1:].sum(axis=0)  # OpenCV's sum: many times numpy's speed
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / pixels[:, None]


def box_gaps(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Pairwise distances ``[len(boxes), len(others)]`` between axis-aligned boxes (0 when they touch)."""
    low = np.maximum(boxes[:, None, :2], others[None, :, :2])
    high = np.minimum(boxes[:, None, 2:], others[None, :, 2:])
    gaps = np.maximum(0.0, low - high)
    return np.hypot(gaps[..., 0], gaps[..., 1])


def linked_groups(linked: np.ndarray) -> np.ndarray:
    """Group index ``[n]`` (0..groups-1) of each node of a symmetric boolean adjacency ``[n, n]``."""
    group = np.arange(len(linked))
    while len(group):
        lowest = np.where(linked, group[None, :], len(group)).min(axis=1)
        if (lowest == group).all():
            break
        group = lowest
    return np.unique(group, return_inverse=True)[1].reshape(-1)


def group_components(
    stats: np.ndarray, centroids: np.ndarray, config: InstanceConfig, frame_size: tuple[int, int],
    motion: np.ndarray | None, apart: np.ndarray | None = None
) -> Segments:
    """Group connected components into segments (see the module docstring).

    Args:
        stats, centroids: OpenCV's component statistics (row 0 the background).
        config: the instance settings.
        frame_size: ``(height, width)`` of the mask.
        motion: ``[C + 1, 2]`` image motion (pixels per frame) of each component; None when
            unknown (the first frame), and then parts are not merged.
        apart: ``[C, C]`` bool, pairs of components (0-based) never merged (known different objects).
    """
    area_px, diagonal = frame_scale(*frame_size)
    areas = stats[1:, cv2.CC_STAT_AREA].astype(np.float64)
    boxes = np.stack([stats[1:, 0], stats[1:, 1], stats[1:, 0] + stats[1:, 2], stats[1:, 1] + stats[1:, 3]], axis=1)
    boxes = boxes.astype(np.float64)
    large = areas >= config.min_area * area_px
    parts, small = np.flatnonzero(large), np.flatnonzero(~large)
    gap = config.merge_gap * diagonal
    linked = np.eye(len(parts), dtype=bool)
    if motion is not None:
        speeds = motion[1:][parts]
        difference = np.linalg.norm(speeds[:, None] - speeds[None, :], axis=-1)
        agree = difference <= config.merge_speed * diagonal  # NaN (unknown) never agrees
        close = box_gaps(boxes[parts], boxes[parts]) <= gap
        if apart is not None:
            close &= ~apart[np.ix_(parts, parts)]
        linked |= agree & close
    group = linked_groups(linked)
    segment_of = np.zeros(len(areas) + 1, np.int32)
    segment_of[parts + 1] = group + 1
    if len(parts) and len(small):
        small_gaps = box_gaps(boxes[small], boxes[parts])
        nearest = small_gaps.argmin(axis=1)
        close = small_gaps[np.arange(len(small)), nearest] <= gap
        segment_of[small[close] + 1] = group[nearest[close]] + 1
    count = int(group.max()) + 1 if len(group) else 0
    component_motion = np.full((len(areas), 2), np.nan) if motion is None else motion[1:]
    return _segment_stats(segment_of, areas, boxes, centroids[1:], component_motion, count)


def _segment_stats(
    segment_of: np.ndarray, areas: np.ndarray, boxes: np.ndarray, centroids: np.ndarray, motion: np.ndarray, count: int
) -> Segments:
    member = segment_of[1:]

    def total(weights: np.ndarray) -> np.ndarray:
        return np.bincount(member, weights=weights, minlength=count + 1).astype(np.float64)

    area = total(areas)
    known = np.isfinite(motion).all(axis=1)
    moving_area = total(np.where(known, areas, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        centroid = np.stack([total(areas * centroids[:, axis]) for axis in (0, 1)], axis=1) / area[:, None]
        mean = np.stack([total(np.where(known, areas * motion[:, axis], 0.0)) for axis in (0, 1)], axis=1)
        mean /= moving_area[:, None]
    box = np.empty((count + 1, 4))
    box[:, :2], box[:, 2:] = np.inf, -np.inf
    for axis in (0, 1):
        np.minimum.at(box[:, axis], member, boxes[:, axis])
        np.maximum.at(box[:, axis + 2], member, boxes[:, axis + 2])
    area[0], box[0], centroid[0], mean[0] = 0.0, 0.0, 0.0, np.nan
    return Segments(segment_of, area, box, centroid, mean)
