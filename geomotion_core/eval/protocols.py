# SPDX-License-Identifier: Apache-2.0
"""The evaluation protocols: which frames are scored, at what resolution, against which objects.

* ``davis``: every frame with GT, binary masks (all objects merged), GT resolution.
* ``davis2016``: the DAVIS-2016 toolkit: the first and last frame of each sequence are dropped.
* ``davis2017-multi``: the DAVIS-2017 unsupervised toolkit: GT objects are the ids of the first
  frame, 255 is void, predicted ids are proposals matched one-to-one to GT objects by the
  Hungarian method on mean (J + F) / 2; every frame; statistics per object.
* ``easi3r``: Easi3R's ``mask_metric.py``: GT (and predictions given at GT size) resized so the
  long side is 512 and centre-cropped to multiples of 16; every frame.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from geomotion_core.errors import ConfigError, InputError
from geomotion_core.eval.aggregate import SequenceScores
from geomotion_core.eval.masks import easi3r_crop, foreground, proposal_ids
from geomotion_core.eval.metrics import batch_scores, boundaries, boundary_f, jaccard

LOGGER = logging.getLogger(__name__)

VOID_LABEL = 255
MAX_PROPOSALS = 20  # the DAVIS-2017 unsupervised toolkit's limit


@dataclass(frozen=True)
class Protocol:
    """How one protocol selects frames, resolution and objects."""

    name: str
    description: str
    drop_first_last: bool = False
    multi_object: bool = False
    easi3r_crop: bool = False

    @property
    def unit(self) -> str:
        """What the official mean runs over: ``sequence`` or ``object``."""
        return "object" if self.multi_object else "sequence"


PROTOCOLS: dict[str, Protocol] = {
    protocol.name: protocol
    for protocol in (
        Protocol("davis", "all frames, binary masks at GT resolution"),
        Protocol("davis2016", "DAVIS-2016 toolkit: first and last frame dropped", drop_first_last=True),
        Protocol("davis2017-multi", "DAVIS-2017 unsupervised: Hungarian-matched objects, void 255", multi_object=True),
        Protocol("easi3r", "Easi3R: 512-long-side centre crop, all frames", easi3r_crop=True),
    )
}


def get_protocol(name: str | Protocol) -> Protocol:
    """The protocol called ``name``; ConfigError for an unknown name."""
    if isinstance(name, Protocol):
        return name
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ConfigError(f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}") from None


def _stack(masks: Sequence[np.ndarray] | np.ndarray, what: str) -> np.ndarray:
    if isinstance(masks, np.ndarray):
        stack = masks
    else:
        shapes = {np.shape(mask) for mask in masks}
        if len(shapes) > 1:
            raise InputError(f"{what} frames differ in size: {sorted(shapes)}")
        stack = np.stack(masks) if len(masks) else np.zeros((0, 1, 1), np.uint8)
    if stack.ndim != 3:
        raise InputError(f"{what} must be a stack of 2-D masks, got shape {stack.shape}")
    return stack


def _aligned(protocol: Protocol, name: str, pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, slice]:
    """Pair predicted and GT frames; returns them and the slice of GT frames that is scored."""
    scored = slice(1, -1) if protocol.drop_first_last else slice(None)
    if protocol.drop_first_last and len(gt) >= 2 and len(pred) == len(gt) - 2:
        return pred, gt[scored], scored  # the prediction already leaves out the first and last frame
    if len(pred) != len(gt):
        raise InputError(f"sequence {name}: {len(pred)} predicted frames for {len(gt)} GT frames")
    return pred[scored], gt[scored], scored


def _easi3r_frames(name: str, pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gt_crops = np.stack([easi3r_crop(mask) for mask in gt])
    if pred.shape[1:] == gt.shape[1:]:
        return np.stack([easi3r_crop(mask) for mask in pred]), gt_crops
    if pred.shape[1:] == gt_crops.shape[1:]:
        return pred, gt_crops
    raise InputError(
        f"sequence {name}: predictions of size {pred.shape[1:]} fit neither the GT size {gt.shape[1:]} "
        f"nor the Easi3R crop {gt_crops.shape[1:]}"
    )


def _score_binary(
    protocol: Protocol, name: str, frames: list[str], pred: np.ndarray, gt: np.ndarray, threshold: float
) -> list[SequenceScores]:
    pred, gt, scored = _aligned(protocol, name, foreground(pred, threshold), foreground(gt))
    frames = frames[scored]
    if len(gt) == 0:
        LOGGER.warning("sequence %s has no frame left to score under protocol %s", name, protocol.name)
        empty = np.zeros(0)
        return [SequenceScores(name, name, frames, empty, empty)]
    if protocol.easi3r_crop:
        pred, gt = _easi3r_frames(name, pred, gt)
    elif pred.shape != gt.shape:
        raise InputError(f"sequence {name}: prediction size {pred.shape[1:]} differs from GT size {gt.shape[1:]}")
    j_values, f_values = batch_scores(pred, gt)
    return [SequenceScores(name, name, frames, j_values, f_values)]


def _score_objects(name: str, frames: list[str], pred: np.ndarray, gt: np.ndarray) -> list[SequenceScores]:
    """DAVIS-2017 unsupervised scoring of one sequence: one entry per matched GT object."""
    from scipy.optimize import linear_sum_assignment

    if len(pred) != len(gt):
        raise InputError(f"sequence {name}: {len(pred)} predicted frames for {len(gt)} GT frames")
    if pred.shape != gt.shape:
        raise InputError(f"sequence {name}: prediction size {pred.shape[1:]} differs from GT size {gt.shape[1:]}")
    void = gt == VOID_LABEL
    first = gt[0][~void[0]] if len(gt) else np.zeros(0)
    object_count = int(first.max()) if first.size else 0
    if object_count == 0:
        LOGGER.warning("sequence %s: the first GT frame has no object, so it has none to score", name)
        return []
    proposals = proposal_ids(pred)
    proposal_count = int(proposals.max()) if proposals.size else 0
    if proposal_count > MAX_PROPOSALS:
        raise InputError(f"sequence {name}: {proposal_count} predicted object ids, more than {MAX_PROPOSALS}")
    objects = [gt == k for k in range(1, object_count + 1)]
    candidates = [proposals == k for k in range(1, max(proposal_count, object_count) + 1)]
    edges = boundaries(*(mask & ~void for mask in objects + candidates))
    object_edges, candidate_edges = edges[:object_count], edges[object_count:]
    j_table = np.array([[jaccard(c, o, void) for o in objects] for c in candidates])
    f_table = np.array([[boundary_f(ce, oe) for oe in object_edges] for ce in candidate_edges])
    rows, cols = linear_sum_assignment(-(j_table.mean(axis=2) + f_table.mean(axis=2)) / 2)
    return [
        SequenceScores(f"{name}_{rank}", name, frames, j_table[row, col], f_table[row, col])
        for rank, (row, col) in enumerate(zip(rows, cols), start=1)
    ]


def score_sequence(
    protocol: str | Protocol,
    name: str,
    pred: Sequence[np.ndarray] | np.ndarray,
    gt: Sequence[np.ndarray] | np.ndarray,
    frames: Sequence[str] | None = None,
    pred_threshold: float = 0,
) -> list[SequenceScores]:
    """Score one sequence under ``protocol``.

    Args:
        protocol: a protocol name or object.
        name: the sequence name.
        pred: predicted masks ``[T, H, W]`` (boolean, 0/255 or label maps; object ids for
            ``davis2017-multi``). Under ``davis2016`` the T-2 inner frames alone are accepted.
        gt: GT label maps ``[T, H, W]``; foreground is any label > 0 (255 is void in
            ``davis2017-multi``).
        frames: frame names in order (default ``00000``, ``00001``, ...).
        pred_threshold: predicted label values above it are foreground (binary protocols).
    Returns:
        One entry per sequence, or per matched GT object under ``davis2017-multi``.
    """
    protocol = get_protocol(protocol)
    pred_stack, gt_stack = _stack(pred, f"{name} prediction"), _stack(gt, f"{name} ground truth")
    frame_names = list(frames) if frames is not None else [f"{index:05d}" for index in range(len(gt_stack))]
    if len(frame_names) != len(gt_stack):
        raise InputError(f"sequence {name}: {len(frame_names)} frame names for {len(gt_stack)} GT frames")
    if protocol.multi_object:
        return _score_objects(name, frame_names, pred_stack, gt_stack)
    return _score_binary(protocol, name, frame_names, pred_stack, gt_stack, pred_threshold)
