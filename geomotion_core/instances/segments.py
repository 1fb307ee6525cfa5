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
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from geomotion_core.instances.config import InstanceConfig


@dataclass
class Segments:
    """The segments of one frame; arrays are indexed by segment label, row 0 is the background."""

    labels: np.ndarray  # [H, W] int32 connected-component labels of the mask
    segment_of: np.ndarray  # [C + 1] int32: component label -> segment label (0: dropped)
    area: np.ndarray  # [S + 1] float64 pixels
    box: np.ndarray  # [S + 1, 4] float64 x0, y0, x1, y1 (x1, y1 exclusive)
    centroid: np.ndarray  # [S + 1, 2] float64 x, y

    @property
    def count(self) -> int:
        return len(self.area) - 1


def frame_scale(height: int, width: int) -> tuple[float, float]:
    """``(area, diagonal)`` of a frame in pixels: what the fractions of InstanceConfig refer to."""
    return float(height * width), float(np.hypot(height, width))


def box_gaps(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Pairwise distances ``[len(boxes), len(others)]`` between axis-aligned boxes (0 when they touch)."""
    gap_x = np.maximum(0.0, np.maximum(boxes[:, None, 0], others[None, :, 0]) - np.minimum(boxes[:, None, 2], others[None, :, 2]))
    gap_y = np.maximum(0.0, np.maximum(boxes[:, None, 1], others[None, :, 1]) - np.minimum(boxes[:, None, 3], others[None, :, 3]))
    return np.hypot(gap_x, gap_y)


def mean_motion(labels: np.ndarray, flow: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``flow`` ``[h, w, 2]`` over each label 0..count of ``labels`` ``[h, w]``; and pixel counts."""
    flat = labels.ravel()
    pixels = np.bincount(flat, minlength=count + 1).astype(np.float64)
    sums = np.stack([np.bincount(flat, weights=flow[..., axis].ravel(), minlength=count + 1) for axis in (0, 1)], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / pixels[:, None], pixels


def components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``labels [H, W] int32, stats [C + 1, 5], centroids [C + 1, 2]`` of a mask's 8-connected components."""
    _, labels, stats, centroids = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8, ltype=cv2.CV_32S)
    return labels, stats, centroids


def group_components(
    labels: np.ndarray, stats: np.ndarray, centroids: np.ndarray, config: InstanceConfig, motion: np.ndarray | None
) -> Segments:
    """Group connected components into segments (see the module docstring).

    ``motion`` is the ``[C + 1, 2]`` image motion (pixels per frame) of each component; None when
    unknown (the first frame), and then parts are not merged.
    """
    area_px, diagonal = frame_scale(*labels.shape)
    count = len(stats) - 1
    areas = stats[1:, cv2.CC_STAT_AREA].astype(np.float64)
    boxes = np.stack([stats[1:, 0], stats[1:, 1], stats[1:, 0] + stats[1:, 2], stats[1:, 1] + stats[1:, 3]], axis=1).astype(np.float64)
    parts = np.flatnonzero(areas >= config.min_area * area_px)
    small = np.flatnonzero(areas < config.min_area * area_px)
    gap = config.merge_gap * diagonal
    part_gaps = box_gaps(boxes[parts], boxes[parts])
    linked = part_gaps <= gap
    if motion is None:
        linked &= np.eye(len(parts), dtype=bool)
    else:
        speeds = motion[1:][parts]
        difference = np.linalg.norm(speeds[:, None] - speeds[None, :], axis=-1)
        linked &= difference <= config.merge_speed * diagonal  # NaN (no motion known) never links
        linked |= np.eye(len(parts), dtype=bool)
    group_count, group = connected_components(coo_matrix(linked), directed=False)
    segment_of = np.zeros(count + 1, np.int32)
    segment_of[parts + 1] = group + 1
    if len(parts) and len(small):
        small_gaps = box_gaps(boxes[small], boxes[parts])
        nearest = small_gaps.argmin(axis=1)
        close = small_gaps[np.arange(len(small)), nearest] <= gap
        segment_of[small[close] + 1] = group[nearest[close]] + 1
    return _segment_stats(labels, segment_of, areas, boxes, centroids[1:], group_count)


def _segment_stats(
    labels: np.ndarray, segment_of: np.ndarray, areas: np.ndarray, boxes: np.ndarray, centroids: np.ndarray, count: int
) -> Segments:
    member = segment_of[1:]
    area = np.bincount(member, weights=areas, minlength=count + 1).astype(np.float64)
    centroid = np.stack([np.bincount(member, weights=areas * centroids[:, axis], minlength=count + 1) for axis in (0, 1)],
                        axis=1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        centroid /= area[:, None]
    box = np.empty((count + 1, 4))
    box[:, :2], box[:, 2:] = np.inf, -np.inf
    np.minimum.at(box[:, 0], member, boxes[:, 0])
    np.minimum.at(box[:, 1], member, boxes[:, 1])
    np.maximum.at(box[:, 2], member, boxes[:, 2])
    np.maximum.at(box[:, 3], member, boxes[:, 3])
    area[0], box[0], centroid[0] = 0.0, 0.0, 0.0
    return Segments(labels, segment_of, area, box, centroid)
