# SPDX-License-Identifier: Apache-2.0
"""Chaining per-window camera poses into one continuous trajectory.

Each window's poses live in that window's own world frame with its own arbitrary scale. Window
``k`` is mapped onto the trajectory by the similarity (scale, rotation, translation) that best
aligns its poses of the frames it shares with window ``k - 1`` to the already chained poses of
those frames: the rotation is the chordal mean of the per-frame rotation offsets (well defined even
when the camera moves on a straight line), then scale and translation are the least-squares fit of
the camera centres. The trajectory starts at the identity and keeps the first window's scale, which
is arbitrary.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class Similarity:
    """``x -> scale * rotation @ x + translation``."""

    scale: float
    rotation: np.ndarray  # [3, 3]
    translation: np.ndarray  # [3]

    def apply_to_poses(self, poses: np.ndarray) -> np.ndarray:
        """Camera-to-world poses ``[M, 4, 4]`` moved by this similarity (still rigid transforms)."""
        moved = np.empty_like(poses)
        moved[:, :3, :3] = self.rotation @ poses[:, :3, :3]
        moved[:, :3, 3] = self.scale * poses[:, :3, 3] @ self.rotation.T + self.translation
        moved[:, 3] = (0.0, 0.0, 0.0, 1.0)
        return moved

    def apply_to_points(self, points: np.ndarray) -> np.ndarray:
        """Points ``[..., 3]`` moved by this similarity, in their own dtype."""
        linear = (self.scale * self.rotation.T).astype(points.dtype)
        return points @ linear + self.translation.astype(points.dtype)


def project_to_rotation(matrix: np.ndarray) -> np.ndarray:
    """The rotation(s) nearest to ``matrix`` ``[..., 3, 3]`` in the Frobenius norm."""
    left, _, right = np.linalg.svd(matrix)
    left[..., :, 2] *= np.where(np.linalg.det(left @ right) < 0.0, -1.0, 1.0)[..., None]
    return left @ right


def fit_similarity(
    source: np.ndarray,
    target: np.ndarray,
    fit_scale: bool = True,
    fallback_scale: float = 1.0,
    min_baseline: float = 0.0,
) -> Similarity:
    """The similarity ``G`` with ``G ∘ source[j] ≈ target[j]`` for camera poses ``[M, 4, 4]``.

    The scale is fitted only with ``fit_scale`` and when the source camera centres spread by more
    than ``min_baseline`` (RMS); otherwise, or when the fit is not positive, ``fallback_scale``.
    """
    rotation = project_to_rotation(np.einsum("mij,mkj->ik", target[:, :3, :3], source[:, :3, :3]))
    source_centres, target_centres = source[:, :3, 3], target[:, :3, 3]
    source_mean, target_mean = source_centres.mean(axis=0), target_centres.mean(axis=0)
    rotated = (source_centres - source_mean) @ rotation.T
    spread = float(np.einsum("mi,mi->", rotated, rotated))
    scale = fallback_scale
    if fit_scale and spread > len(source) * min_baseline**2 and spread > 0.0:
        fitted = float(np.einsum("mi,mi->", rotated, target_centres - target_mean)) / spread
        if fitted > 0.0:
            scale = fitted
    return Similarity(scale, rotation, target_mean - scale * source_mean @ rotation.T)


def anchor_at_identity(pose: np.ndarray) -> Similarity:
    """The rigid transform that moves ``pose`` to the identity."""
    rotation = pose[:3, :3].T
    return Similarity(1.0, rotation, -rotation @ pose[:3, 3])


class PoseChain:
    """Maps each window's poses onto one trajectory through the frames shared with the last window."""

    def __init__(self, fit_scale: bool = True, min_baseline: float = 0.0) -> None:
        self.fit_scale = fit_scale
        self.min_baseline = min_baseline
        self._previous: dict[int, np.ndarray] = {}  # frame id -> chained pose, last window only
        self._scale = 1.0

    def add_window(self, frame_ids: Sequence[int], poses: np.ndarray) -> tuple[np.ndarray, Similarity]:
        """Chain a window's ``[N, 4, 4]`` poses; returns them on the trajectory and the similarity used.

        Rotations are first made exactly orthonormal (networks predict them in float32).
        """
        poses = poses.astype(np.float64)  # a copy
        poses[:, :3, :3] = project_to_rotation(poses[:, :3, :3])
        rows = [row for row, frame_id in enumerate(frame_ids) if frame_id in self._previous]
        if rows:
            anchors = np.stack([self._previous[frame_ids[row]] for row in rows])
            similarity = fit_similarity(poses[rows], anchors, self.fit_scale, self._scale, self.min_baseline)
        else:
            similarity = anchor_at_identity(poses[0])
        chained = similarity.apply_to_poses(poses)
        self._previous = dict(zip(frame_ids, chained))
        self._scale = similarity.scale
        return chained, similarity

    def reset(self) -> None:
        """Start a new trajectory at the identity."""
        self._previous = {}
        self._scale = 1.0
