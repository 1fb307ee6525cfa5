# SPDX-License-Identifier: Apache-2.0
"""From a motion score to a clean binary mask and a probability-like map."""
from __future__ import annotations

import cv2
import numpy as np

SCORE_CEILING = 64.0  # scores above this many noise units are all "certainly moving"
STATIC_CEILING = 0.09  # the highest probability given to a pixel outside the mask
MOVING_FLOOR = 0.55  # the lowest probability given to a pixel inside the mask
LOG_LEVELS = 255
HISTOGRAM_STRIDE = 2  # the threshold's histogram counts every 2nd row and column (4x fewer pixels)
TEXTURE_WINDOW = 5  # side of the structure tensor's window (pixels of the score's size)
TEXTURE_BLUR = 3.0  # Gaussian sigma spreading a textured pixel's weight to its neighbours
REGION_PERCENTILE = 90  # a region's strength: this percentile of its scores (robust to a few spikes)


def select_threshold(score: np.ndarray, floor: float) -> float:
    """Per-frame threshold: Otsu's split of the log-score histogram, never below ``floor``.

    Scores are heavy-tailed (a few noise units on the background, tens on a moving object), so the
    two classes separate best on a log scale. The histogram counts a regular subsample.
    """
    low, high = np.log1p(floor), np.log1p(SCORE_CEILING)
    sample = score[::HISTOGRAM_STRIDE, ::HISTOGRAM_STRIDE]
    levels = (np.log1p(np.clip(sample, floor, SCORE_CEILING)) - low) * (LOG_LEVELS / (high - low))
    otsu, _ = cv2.threshold(levels.astype(np.uint8), 0, LOG_LEVELS, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return max(float(np.expm1(low + otsu * (high - low) / LOG_LEVELS)), floor)


def texture_weight(frame: np.ndarray, shape: tuple[int, int], floor: float) -> np.ndarray:
    """``[H, W]`` float32 in [0, 1] (``shape``): how much texture the RGB ``frame`` has around each
    pixel at that size, ``min(1, lambda_min / floor)`` with ``lambda_min`` the smaller eigenvalue of
    the structure tensor (``cv2.cornerMinEigenVal``), smoothed. Flow is measured where the image
    has texture in two directions and only interpolated elsewhere (sky, water, smoke, walls)."""
    gray = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), shape[::-1], interpolation=cv2.INTER_AREA)
    weight = cv2.cornerMinEigenVal(gray, TEXTURE_WINDOW)
    weight *= np.float32(1.0 / floor)
    np.minimum(weight, np.float32(1.0), out=weight)
    return cv2.GaussianBlur(weight, (0, 0), TEXTURE_BLUR)


def extract_mask(
    score: np.ndarray,
    threshold: float,
    seed_level: float,
    min_area: int,
    seeds: np.ndarray | None = None,
    dominant_ratio: float = 0.0,
) -> np.ndarray:
    """Hysteresis mask: regions above ``threshold`` that hold a pixel whose ``seeds`` value (the
    score by default) is above ``seed_level`` and cover at least ``min_area`` pixels, with their
    holes filled. With ``dominant_ratio`` > 0 a region is also dropped when its 90th-percentile
    score is below that fraction of the strongest region's. ``[H, W]`` uint8 0/1."""
    candidate = (score > threshold).view(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(candidate, connectivity=8)
    if count <= 1:
        return candidate
    seeded = np.zeros(count, dtype=bool)
    seeded[labels[(score if seeds is None else seeds) > seed_level]] = True
    seeded &= stats[:, cv2.CC_STAT_AREA] >= min_area
    seeded[0] = False
    if dominant_ratio > 0.0 and seeded.sum() > 1:
        strength = region_strength(score, labels, stats, np.flatnonzero(seeded))
        weak = [label for label, value in strength.items() if value < dominant_ratio * max(strength.values())]
        seeded[weak] = False
    kept = seeded[labels].view(np.uint8)
    return fill_holes(kept)


def region_strength(score: np.ndarray, labels: np.ndarray, stats: np.ndarray, regions: np.ndarray) -> dict[int, float]:
    """``{label: 90th percentile of the score over the region}`` for the given labels of a
    ``cv2.connectedComponentsWithStats`` labelling (each read within its bounding box)."""
    strength = {}
    for label in regions:
        left, top, width, height = stats[label, :4]
        box = (slice(top, top + height), slice(left, left + width))
        strength[int(label)] = float(np.percentile(score[box][labels[box] == label], REGION_PERCENTILE))
    return strength


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill the holes of every region of a 0/1 mask."""
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros_like(mask)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    return filled


def to_probability(score: np.ndarray, threshold: float, mask: np.ndarray) -> np.ndarray:
    """Probability-like map consistent with the mask for any cut-off in [0.1, 0.5].

    Inside the mask: ``MOVING_FLOOR`` at or below the threshold (filled holes), towards 1 for strong
    motion. Outside: at most ``STATIC_CEILING``, growing with the score, so regions the
    mask rejected stay visible in the map but below any usual cut-off.
    """
    ratio = score * (1.0 / threshold)
    probability = np.clip(ratio, 0.0, 1.0)
    probability *= STATIC_CEILING
    inside = mask.view(bool)
    probability[inside] = 1.0 - (1.0 - MOVING_FLOOR) / np.maximum(ratio[inside], 1.0)
    return probability


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A 0/1 mask resized to ``size`` (width, height) smoothly: bilinear, cut at 0.5. ``[H, W]`` bool."""
    if mask.shape[::-1] == size:
        return mask.astype(bool)
    return cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_LINEAR) > 0.5


def upsample_probability(probability: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Bilinear resizing of ``probability`` to the size of the final mask ``inside`` (bool) that
    keeps the mask/probability contract: the mask decides the side of every output pixel, the
    resized probability its value within that side's range.

    Every pixel is capped at ``STATIC_CEILING``, then the mask's pixels are raised to at least
    ``MOVING_FLOOR``: only the mask's bounding box is visited for that, not the whole frame.
    """
    height, width = inside.shape
    resized = cv2.resize(probability, (width, height), interpolation=cv2.INTER_LINEAR)
    left, top, box_width, box_height = cv2.boundingRect(inside.view(np.uint8))
    region = resized[top : top + box_height, left : left + box_width]
    moving = np.maximum(region, np.float32(MOVING_FLOOR))
    np.minimum(resized, np.float32(STATIC_CEILING), out=resized)
    np.copyto(region, moving, where=inside[top : top + box_height, left : left + box_width])
    return resized
