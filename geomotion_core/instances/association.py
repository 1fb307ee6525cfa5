# SPDX-License-Identifier: Apache-2.0
"""Matching this frame's segments to the tracks of earlier frames.

The tracks seen in the previous frame are carried into this frame by moving each one's previous
mask by its own velocity (constant-velocity model); a segment continues the track whose carried
mask it overlaps most (IoU, one-to-one by the Hungarian method). Tracks not carried that way
(occluded for a while) are matched by distance to their constant-velocity predicted centroid.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

NO_MATCH = 1e6  # cost of a pair that may not be matched


def overlap_table(segments: np.ndarray, carried: np.ndarray, segment_count: int, track_count: int) -> np.ndarray:
    """Pixel counts ``[S + 1, T + 1]`` of every (segment label, carried track label) pair.

    Only pixels with a segment or a track are counted: the (0, 0) entry stays 0.
    """
    segments, carried = segments.ravel(), carried.ravel()
    labelled = np.flatnonzero((segments > 0) | (carried > 0))
    pairs = segments[labelled].astype(np.int64) * (track_count + 1) + carried[labelled]
    shape = (segment_count + 1, track_count + 1)
    return np.bincount(pairs, minlength=shape[0] * shape[1]).reshape(shape)


def iou_table(overlap: np.ndarray) -> np.ndarray:
    """IoU ``[S, T]`` of segments (rows 1..S) and carried tracks (columns 1..T) from an overlap table."""
    inner = overlap[1:, 1:].astype(np.float64)
    union = overlap[1:, :].sum(axis=1)[:, None] + overlap[:, 1:].sum(axis=0)[None, :] - inner
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inner / union, 0.0)


def assign(cost: np.ndarray, limit: float) -> list[tuple[int, int]]:
    """Hungarian assignment of rows to columns, keeping pairs whose cost is below ``limit``."""
    if cost.size == 0:
        return []
    rows, cols = linear_sum_assignment(np.where(cost < limit, cost, NO_MATCH))
    return [(int(row), int(col)) for row, col in zip(rows, cols) if cost[row, col] < limit]


def nearest_seed(region: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Each pixel of ``region`` (bool) labelled with the value of its nearest non-zero ``seeds`` pixel."""
    seeded = seeds != 0
    if not seeded.any():
        return np.zeros_like(seeds)
    _, nearest = cv2.distanceTransformWithLabels((~seeded).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5,
                                                 labelType=cv2.DIST_LABEL_PIXEL)
    value_of = np.zeros(int(nearest.max()) + 1, seeds.dtype)
    value_of[nearest[seeded]] = seeds[seeded]
    return np.where(region, value_of[nearest], 0)
