# SPDX-License-Identifier: Apache-2.0
"""Per-frame region similarity J and boundary F-measure, as the official DAVIS toolkits define them.

Every function works on a stack of frames ``[N, H, W]`` at once (a single ``[H, W]`` frame is
a stack of one). The definitions, with the official edge cases:

* J = |P ∩ G| / |P ∪ G|, and 1 when the union is empty.
* F: boundaries from ``seg2bmap`` (no thinning, never on the image border), each dilated by a
  disk of radius ``ceil(0.008 * sqrt(H² + W²))``; precision is the fraction of predicted
  boundary pixels within the GT's tolerance band, recall the converse. With no predicted boundary
  P = 1, with no GT boundary R = 1 (and the other is 0 unless both are empty); F = 2PR / (P + R),
  0 when P + R = 0.
* Void pixels (DAVIS-2017 unsupervised) are removed from both masks before anything else.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

BOUNDARY_TOLERANCE = 0.008  # fraction of the image diagonal (DAVIS ``bound_th``)


def boundary_radius(height: int, width: int, tolerance: float = BOUNDARY_TOLERANCE) -> int:
    """Tolerance radius in pixels: ``tolerance`` itself if >= 1, else a fraction of the diagonal."""
    if tolerance >= 1:
        return int(tolerance)
    return int(math.ceil(tolerance * math.hypot(height, width)))


def disk(radius: int) -> np.ndarray:
    """The structuring element ``{(x, y): x² + y² <= r²}`` as a uint8 ``[2r+1, 2r+1]`` array."""
    offsets = np.arange(-radius, radius + 1)
    return (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius**2).astype(np.uint8)


def seg2bmap(masks: np.ndarray) -> np.ndarray:
    """One-pixel boundaries of boolean masks ``[..., H, W]`` (BSDS ``seg2bmap``, no thinning).

    A pixel is a boundary pixel when it differs from its east, south or south-east neighbour;
    on the last row only east counts, on the last column only south, and the bottom-right pixel
    never is one. So no boundary lies along the image border and a full-frame mask has none.
    The neighbours are compared on the flattened stack (contiguous, fast); the last row and
    column, where the flat neighbour belongs to the next row or frame, are then recomputed.
    """
    shape = np.shape(masks)
    height, width = shape[-2:]
    masks = np.ascontiguousarray(masks, dtype=bool).reshape(-1, height, width)
    flat = masks.reshape(-1)
    interior = max(flat.size - width - 1, 0)
    boundary, differs = np.zeros(flat.size, bool), np.empty(interior, bool)
    np.not_equal(flat[:interior], flat[1 : interior + 1], out=boundary[:interior])
    for offset in (width, width + 1):
        np.not_equal(flat[:interior], flat[offset : interior + offset], out=differs)
        boundary[:interior] |= differs
    boundary = boundary.reshape(masks.shape)
    boundary[:, -1, :-1] = masks[:, -1, :-1] != masks[:, -1, 1:]
    boundary[:, :-1, -1] = masks[:, :-1, -1] != masks[:, 1:, -1]
    boundary[:, -1, -1] = False
    return boundary.reshape(shape)


def dilate(masks: np.ndarray, radius: int) -> np.ndarray:
    """Dilate every frame of a boolean stack ``[N, H, W]`` by ``disk(radius)`` in one OpenCV call.

    The frames are stacked vertically with ``radius`` empty rows between them, so the dilation
    of one frame never reaches the next.
    """
    count, height, width = masks.shape
    if masks.size == 0:
        return masks.astype(bool)
    padded = np.zeros((count, height + radius, width), np.uint8)
    padded[:, :height] = masks
    dilated = cv2.dilate(padded.reshape(count * (height + radius), width), disk(radius))
    return dilated.reshape(count, height + radius, width)[:, :height].view(bool)


Window = tuple[slice, slice]


def _edge_window(edge_stacks: list[np.ndarray], radius: int) -> Window:
    """The rows and columns holding any boundary pixel of any stack, widened by ``radius``."""
    height, width = edge_stacks[0].shape[-2:]
    occupied = np.logical_or.reduce([edges.any(axis=0) for edges in edge_stacks])
    rows, cols = np.flatnonzero(occupied.any(axis=1)), np.flatnonzero(occupied.any(axis=0))
    if rows.size == 0:
        return slice(0, 0), slice(0, 0)
    return (
        slice(max(rows[0] - radius, 0), min(rows[-1] + radius + 1, height)),
        slice(max(cols[0] - radius, 0), min(cols[-1] + radius + 1, width)),
    )


@dataclass(frozen=True)
class Boundaries:
    """The boundary map of a mask stack and its tolerance band, computed once and reused.

    Only the window that holds every boundary pixel of the stacks compared together (plus the
    tolerance radius) is kept, which is all that precision and recall look at.
    """

    edges: np.ndarray  # [N, h, w] bool seg2bmap inside the window
    band: np.ndarray  # [N, h, w] bool edges dilated by the tolerance disk
    counts: np.ndarray  # [N] boundary pixels per frame


def boundaries(*mask_stacks: np.ndarray, radius: int | None = None) -> list[Boundaries]:
    """Boundaries of several same-shape stacks ``[N, H, W]`` on one shared window.

    The radius defaults to the official one for the frame size.
    """
    height, width = mask_stacks[0].shape[-2:]
    if radius is None:
        radius = boundary_radius(height, width)
    edge_stacks = [seg2bmap(masks) for masks in mask_stacks]
    rows, cols = _edge_window(edge_stacks, radius)
    result = []
    for edges in edge_stacks:
        inside = np.ascontiguousarray(edges[:, rows, cols])
        result.append(Boundaries(inside, dilate(inside, radius), _count(inside)))
    return result


def _count(masks: np.ndarray) -> np.ndarray:
    return np.count_nonzero(masks.reshape(len(masks), int(np.prod(masks.shape[1:]))), axis=1)


def _as_stack(masks: np.ndarray) -> np.ndarray:
    masks = np.asarray(masks)
    if masks.ndim == 2:
        masks = masks[None]
    if masks.ndim != 3:
        raise ValueError(f"masks must be [H, W] or [N, H, W], got shape {masks.shape}")
    return masks.astype(bool, copy=False)


def jaccard(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None) -> np.ndarray:
    """Per-frame J of boolean stacks ``[N, H, W]``; 1 where the union is empty."""
    pred, gt = _as_stack(pred), _as_stack(gt)
    intersection, union = pred & gt, pred | gt
    if void is not None:
        valid = ~_as_stack(void)
        intersection &= valid
        union &= valid
    intersections, unions = _count(intersection), _count(union)
    return np.where(unions == 0, 1.0, intersections / np.maximum(unions, 1))


def boundary_f(pred: Boundaries, gt: Boundaries) -> np.ndarray:
    """Per-frame boundary F-measure from precomputed boundaries, with the official edge cases."""
    matched_pred = _count(pred.edges & gt.band) / np.maximum(pred.counts, 1)
    matched_gt = _count(gt.edges & pred.band) / np.maximum(gt.counts, 1)
    pred_empty, gt_empty = pred.counts == 0, gt.counts == 0
    precision = np.where(pred_empty, 1.0, np.where(gt_empty, 0.0, matched_pred))
    recall = np.where(gt_empty, 1.0, np.where(pred_empty, 0.0, matched_gt))
    total = precision + recall
    return np.where(total == 0, 0.0, 2 * precision * recall / np.where(total == 0, 1.0, total))


def remove_void(masks: np.ndarray, void: np.ndarray | None) -> np.ndarray:
    """``masks & ~void`` (a no-op without void), as done before boundary extraction."""
    masks = _as_stack(masks)
    return masks if void is None else masks & ~_as_stack(void)


def batch_scores(
    pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame ``(J, F)`` float64 vectors of two boolean stacks ``[N, H, W]`` of one size."""
    pred, gt = _as_stack(pred), _as_stack(gt)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
    f_measure = boundary_f(*boundaries(remove_void(pred, void), remove_void(gt, void)))
    return jaccard(pred, gt, void), f_measure


def frame_scores(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """``(J, F)`` of one frame: boolean ``[H, W]`` prediction and ground truth."""
    j_values, f_values = batch_scores(pred, gt)
    return float(j_values[0]), float(f_values[0])
