# SPDX-License-Identifier: Apache-2.0
"""Identity measures of predicted instance maps against ground-truth object maps (CLEAR-MOT style)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geomotion_core.errors import InputError
from geomotion_core.instances.association import assign

MATCH_IOU = 0.5  # a predicted object and a GT object are the same object in a frame above this IoU


@dataclass(frozen=True)
class IdentityScores:
    """How well predicted ids follow the GT objects over a sequence."""

    switches: int  # times a GT object was matched to another id than at its previous match
    matched: int  # GT object-frames matched to a predicted object
    objects: int  # GT object-frames

    @property
    def matched_share(self) -> float:
        return self.matched / self.objects if self.objects else 0.0


def identity_scores(predicted: np.ndarray, truth: np.ndarray, void: int | None = 255) -> IdentityScores:
    """Id switches of ``predicted`` ``[N, H, W]`` ids against ``truth`` ``[N, H, W]`` GT object ids.

    In each frame, GT objects and predicted ids are matched one-to-one (Hungarian) on IoU, pairs
    with IoU of at least 0.5 only; a switch is counted when a GT object's matched id differs from
    the id it was matched to last. Pixels labelled ``void`` in ``truth`` are ignored.
    """
    if predicted.shape != truth.shape or predicted.ndim != 3:
        raise InputError(f"predicted {predicted.shape} and GT {truth.shape} must be two [N, H, W] stacks of one shape")
    last: dict[int, int] = {}
    switches = matched = objects = 0
    for pred, gt in zip(predicted, truth):
        keep = gt != void if void is not None else np.ones(gt.shape, bool)
        gt_ids, gt_index = np.unique(gt[keep], return_inverse=True)
        pred_ids, pred_index = np.unique(pred[keep], return_inverse=True)
        table = np.bincount(gt_index * len(pred_ids) + pred_index, minlength=len(gt_ids) * len(pred_ids))
        table = table.reshape(len(gt_ids), len(pred_ids))
        gt_rows, pred_cols = np.flatnonzero(gt_ids != 0), np.flatnonzero(pred_ids != 0)
        objects += len(gt_rows)
        inner = table[np.ix_(gt_rows, pred_cols)].astype(np.float64)
        union = table[gt_rows].sum(axis=1)[:, None] + table[:, pred_cols].sum(axis=0)[None, :] - inner
        iou = np.divide(inner, union, out=np.zeros_like(inner), where=union > 0)
        for row, col in assign(1.0 - iou, 1.0 - MATCH_IOU + 1e-12):
            gt_id, pred_id = int(gt_ids[gt_rows[row]]), int(pred_ids[pred_cols[col]])
            matched += 1
            switches += int(gt_id in last and last[gt_id] != pred_id)
            last[gt_id] = pred_id
    return IdentityScores(switches, matched, objects)
