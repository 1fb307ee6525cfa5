# SPDX-License-Identifier: Apache-2.0
"""Temporal support: the motion scores of nearby frames carried along the flow to one frame.

A moving object scores high in every frame along its path, while flow noise and badly fitted
patches come and go; the per-pixel median of a frame's score and its neighbours' scores carried
to it (up to two frames each side) keeps the first and suppresses the second. A causal variant
(``GeometricConfig.lookahead``) uses fewer or no frames after the one it scores.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import cv2
import numpy as np

from geomotion_core.geometric.pair import PairMotion

MAX_SUPPORT = 5  # the median is computed by min/max networks for up to five maps


def carry(score: np.ndarray, landing: np.ndarray) -> np.ndarray:
    """A neighbour's score map seen from this frame: ``score(landing(x))``, where ``landing`` is
    ``x + flow(x)`` of the flow from this frame to the neighbour (bilinear, borders replicated)."""
    return cv2.remap(score, landing, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _median_of_three(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))


def temporal_median(maps: Sequence[np.ndarray]) -> np.ndarray:
    """Per-pixel median of 1-5 equally sized float32 maps (the mean of the middle two for four)."""
    count = len(maps)
    if not 1 <= count <= MAX_SUPPORT:
        raise ValueError(f"temporal_median takes 1 to {MAX_SUPPORT} maps, got {count}")
    if count == 1:
        return maps[0]
    if count == 2:
        return (maps[0] + maps[1]) * np.float32(0.5)
    if count == 3:
        return _median_of_three(*maps)
    # dropping the smallest and the largest of two sorted pairs leaves the median's candidates
    low_a, high_a = np.minimum(maps[0], maps[1]), np.maximum(maps[0], maps[1])
    low_b, high_b = np.minimum(maps[2], maps[3]), np.maximum(maps[2], maps[3])
    middle_low, middle_high = np.maximum(low_a, low_b), np.minimum(high_a, high_b)
    if count == 4:
        return (middle_low + middle_high) * np.float32(0.5)
    return _median_of_three(middle_low, middle_high, maps[4])


def carried_neighbours(
    scores: Sequence[np.ndarray | None], pairs: Sequence[PairMotion], index: int, ahead: bool = True
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The next and the previous frame's scores carried to frame ``index`` (None where a frame has
    no score or is outside the window; the next one also when ``ahead`` is False). ``scores[i]``
    belongs to frame i, ``pairs[i]`` to frames (i, i + 1)."""
    if scores[index] is None:
        return None, None
    following = previous = None
    if ahead and index + 1 < len(scores) and scores[index + 1] is not None and pairs[index].forward is not None:
        following = carry(scores[index + 1], pairs[index].forward.landing)
    if index > 0 and scores[index - 1] is not None and pairs[index - 1].backward is not None:
        previous = carry(scores[index - 1], pairs[index - 1].backward.landing)
    return following, previous


def supported_score(
    scores: Sequence[np.ndarray | None],
    neighbours: Mapping[int, tuple[np.ndarray | None, np.ndarray | None]],
    pairs: Sequence[PairMotion],
    index: int,
    radius: int,
    ahead: int | None = None,
) -> np.ndarray | None:
    """Frame ``index``'s score as the median with the scores of up to ``radius`` (at most 2)
    frames before it and ``min(radius, ahead)`` frames after it (``ahead`` None: ``radius``)
    carried to it; a side stops at a window edge or a frame without a score.
    ``neighbours[i]`` is ``carried_neighbours(scores, pairs, i)`` for frames ``index - 1 ..
    index + 1`` (frames two steps away arrive through their neighbour's carried map)."""
    if scores[index] is None:
        return None
    maps = [scores[index]]
    if radius == 0:
        return maps[0]
    reach = {1: radius if ahead is None else min(radius, ahead), -1: radius}
    following, previous = neighbours[index]
    for carried, step, path in ((following, 1, "forward"), (previous, -1, "backward")):
        if carried is None or reach[step] == 0:
            continue
        maps.append(carried)
        further = neighbours.get(index + step, (None, None))[0 if step > 0 else 1]
        if reach[step] == 2 and further is not None:
            landing = getattr(pairs[index if step > 0 else index - 1], path).landing
            maps.append(carry(further, landing))
    return temporal_median(maps)
