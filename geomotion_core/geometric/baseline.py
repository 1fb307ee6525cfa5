# SPDX-License-Identifier: Apache-2.0
"""Longer baselines: a frame's motion evidence against a frame two or more steps away.

A slowly moving object (an animal the camera follows) moves about a pixel per frame against the
background, close to the flow's noise. Over k frames its departure from the background grows k
times, while flow noise does not add up coherently; chaining the flows of consecutive pairs
(``x -> x + F_1(x) -> ... ``) gives that longer baseline without another optical flow.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from geomotion_core.geometric.config import GeometricConfig
from geomotion_core.geometric.egomotion import PixelGrid
from geomotion_core.geometric.pair import DirectionalMotion, score_flow


def chain_landing(
    landing: np.ndarray, reliable: np.ndarray, step: DirectionalMotion
) -> tuple[np.ndarray, np.ndarray]:
    """A chain of flows taken one step further: where each pixel lands after ``step`` (``[H, W, 2]``
    float32) and whether every step was reliable along its way (``[H, W]`` bool).

    ``landing`` and ``reliable`` describe the chain so far (a pixel of frame t lands at
    ``landing`` in frame t + k s, s = +1 or -1); ``step`` is frame t + k s's evidence towards
    t + (k + 1) s, whose landing and reliability are read (bilinearly) where the chain arrived.
    """
    onward = cv2.remap(step.landing, landing, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    trusted = cv2.remap(step.reliable.astype(np.float32), landing, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return onward, reliable & (trusted > 0.5)


def long_baseline_motion(
    steps: Sequence[DirectionalMotion], grid: PixelGrid, config: GeometricConfig
) -> DirectionalMotion:
    """The first step's evidence with its score raised towards the score of each longer chain of
    ``steps`` (``steps[k]``: frame t + k s towards t + (k + 1) s) where that chain is reliable,
    but to at most ``config.long_baseline_cap`` noise units: weak evidence of a slow mover adds
    up over the longer baseline, while a fast mover, already clear in one step, keeps its
    one-step score (over two steps the smoothed flow spills further around it). Occluded chains
    leave the one-step score."""
    first = steps[0]
    score, landing, reliable = first.score, first.landing, first.reliable
    cap = np.float32(config.long_baseline_cap)
    for step in steps[1:]:
        landing, reliable = chain_landing(landing, reliable, step)
        longer = score_flow(landing - grid.coordinates, landing, reliable, grid, config)
        np.minimum(longer, cap, out=longer)
        score = np.where(reliable, np.maximum(score, longer), score)
    return DirectionalMotion(score, first.reliable, first.landing)
