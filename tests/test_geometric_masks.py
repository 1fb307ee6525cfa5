"""From scores to masks and probabilities: the dominant-region rule and the probability upsampling
that keeps the mask's sides."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from geomotion_core.geometric.masks import (
    MOVING_FLOOR,
    STATIC_CEILING,
    extract_mask,
    to_probability,
    upsample_probability,
)


def whole_frame_rule(probability: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """The contract written out over every pixel: bilinear resize, then each side's range."""
    height, width = inside.shape
    resized = cv2.resize(probability, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.where(inside, np.maximum(resized, MOVING_FLOOR), np.minimum(resized, STATIC_CEILING))


def blob_scene(seed: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A score map with a few square blobs of random strength over low noise, and its mask."""
    generator = np.random.default_rng(seed)
    score = generator.uniform(0.0, 1.0, (height, width)).astype(np.float32)
    for _ in range(int(generator.integers(0, 4))):
        row, col = generator.integers(0, height), generator.integers(0, width)
        score[max(0, row - 4) : row + 4, max(0, col - 4) : col + 4] = generator.uniform(0.5, 30.0)
    return score, (score > 3.0).astype(np.uint8)


@pytest.mark.parametrize("seed", range(40))
def test_upsampling_in_the_boxes_equals_the_whole_frame_rule(seed: int):
    generator = np.random.default_rng(1000 + seed)
    height, width = (int(value) for value in generator.integers(12, 70, 2))
    factor = (1, 2, 3)[seed % 3]
    score, mask = blob_scene(seed, height, width)
    probability = to_probability(score, 3.0, mask)
    size = (width * factor, height * factor)
    inside = cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_LINEAR) > generator.uniform(0.2, 0.8)
    inside[generator.integers(0, size[1]), generator.integers(0, size[0])] = seed % 2 == 0  # a pixel the refinement adds
    result = upsample_probability(probability, inside)
    np.testing.assert_array_equal(result, whole_frame_rule(probability, inside))
    assert result[inside].min(initial=1.0) >= MOVING_FLOOR and result[~inside].max(initial=0.0) <= STATIC_CEILING


def test_a_rejected_region_far_from_the_mask_stays_below_the_cut_off():
    score = np.zeros((60, 80), np.float32)
    score[5:15, 5:15] = 50.0  # above the threshold, but not in the mask (rejected region)
    score[40:50, 50:70] = 20.0
    mask = np.zeros_like(score, dtype=np.uint8)
    mask[40:50, 50:70] = 1
    inside = cv2.resize(mask, (160, 120), interpolation=cv2.INTER_NEAREST).astype(bool)
    result = upsample_probability(to_probability(score, 4.0, mask), inside)
    np.testing.assert_array_equal(result, whole_frame_rule(to_probability(score, 4.0, mask), inside))
    assert np.isclose(result[20, 20], STATIC_CEILING) and result[~inside].max() <= STATIC_CEILING
    assert (result[inside] >= MOVING_FLOOR).all()


def three_regions() -> np.ndarray:
    """A score map with a strong region (90th percentile 20), a weak one (6) and a middling one (10)."""
    score = np.zeros((60, 90), np.float32)
    score[5:25, 5:25] = 20.0
    score[35:55, 5:25] = 6.0
    score[35:55, 60:80] = 10.0
    score[36, 61] = 40.0  # a single spike does not make a region strong
    return score


@pytest.mark.parametrize(("ratio", "kept"), [(0.0, (True, True, True)), (0.4, (True, False, True)), (0.6, (True, False, False))])
def test_regions_far_weaker_than_the_strongest_are_dropped(ratio, kept):
    mask = extract_mask(three_regions(), 2.0, 4.0, 10, dominant_ratio=ratio).astype(bool)
    assert (mask[15, 15], mask[45, 15], mask[45, 70]) == kept
    assert mask.sum() == 400 * sum(kept)
