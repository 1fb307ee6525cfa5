# SPDX-License-Identifier: Apache-2.0
"""Motion scores: how far each pixel's flow departs from the background model, in noise units."""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from geomotion_core.geometric.egomotion import magnitude

MAD_TO_SIGMA = 1.4826  # median absolute deviation -> standard deviation of a normal distribution
STATISTICS_STRIDE = 3  # the median and MAD are taken on every 3rd row and column (9x fewer pixels)


def residual_score(
    residual: np.ndarray, background_flow: np.ndarray, reliable: np.ndarray, motion_offset: float, noise_floor: float
) -> np.ndarray:
    """Relative residual ``residual / (|background_flow| + motion_offset)``, normalised per frame:
    ``(r - median) / spread``. ``residual`` (``[H, W]`` float32, pixels, overwritten) is how far
    each pixel's flow departs from the background model, e.g. ``|flow - background_flow|``.

    Dividing by the local camera-induced motion discounts parallax, which grows with it; the
    offset keeps slowly moving regions comparable. The median and the spread (MAD, at least
    ``noise_floor``) come from the reliable pixels of a regular subsample, so the score reads as
    "noise units above the typical background residual".
    """
    camera_motion = magnitude(background_flow)
    camera_motion += motion_offset
    residual /= camera_motion
    stride = slice(None, None, STATISTICS_STRIDE)
    sparse, sparse_reliable = residual[stride, stride], reliable[stride, stride]
    sample = sparse[sparse_reliable] if sparse_reliable.any() else sparse.ravel()
    median = float(np.median(sample))
    spread = max(MAD_TO_SIGMA * float(np.median(np.abs(sample - median))), noise_floor)
    residual -= median
    residual *= 1.0 / spread
    return residual


def combine_directions(scores: Sequence[np.ndarray], reliable: Sequence[np.ndarray]) -> np.ndarray:
    """One score per pixel from the flows towards the previous and the next frame.

    A pixel counts as moving only if every direction in which its flow is reliable says so (the
    minimum over reliable directions): an occluded direction cannot raise it. Where no direction
    is reliable, the minimum over all directions is used.
    """
    if len(scores) == 1:
        return scores[0]
    combined = np.full_like(scores[0], np.inf)
    for score, trusted in zip(scores, reliable):
        np.minimum(combined, score, out=combined, where=trusted)
    unreliable = ~np.logical_or.reduce(reliable)
    np.copyto(combined, np.minimum.reduce(scores), where=unreliable)
    return combined


def smooth(score: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of a score map (no-op for ``sigma`` 0)."""
    return cv2.GaussianBlur(score, (0, 0), sigma) if sigma > 0 else score
