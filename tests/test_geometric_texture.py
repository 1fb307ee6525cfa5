"""Texture-gated seeds: a region of high motion score is kept only if it holds a seed where the
frame has texture (flow over sky, water or a blank wall is interpolated, not measured)."""
from __future__ import annotations

import numpy as np
import pytest

from geomotion_core.errors import ConfigError
from geomotion_core.geometric import GeometricConfig, frame_probability
from geomotion_core.geometric.masks import extract_mask, texture_weight

HEIGHT, WIDTH = 120, 160


def half_textured_frame() -> np.ndarray:
    """Left half flat grey, right half random texture: ``[120, 160, 3]`` uint8."""
    frame = np.full((HEIGHT, WIDTH, 3), 128, dtype=np.uint8)
    noise = np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH // 2), dtype=np.uint8)
    frame[:, WIDTH // 2 :] = noise[..., None]
    return frame


def blob_score(*boxes: tuple[slice, slice]) -> np.ndarray:
    """Low background score with a strong square blob (20 noise units) in every box."""
    score = np.full((HEIGHT, WIDTH), 0.2, dtype=np.float32)
    for rows, cols in boxes:
        score[rows, cols] = 20.0
    return score


def test_texture_weight_is_zero_on_a_flat_image_and_one_on_texture():
    weight = texture_weight(half_textured_frame(), (HEIGHT, WIDTH), 1e-3)
    assert weight.shape == (HEIGHT, WIDTH) and weight.dtype == np.float32
    assert float(weight[:, :60].max()) < 0.05
    assert float(weight[:, 100:].min()) > 0.95


def test_only_regions_with_a_textured_seed_are_kept():
    frame = half_textured_frame()
    flat, textured = (slice(20, 50), slice(10, 40)), (slice(60, 90), slice(110, 140))
    straddling = (slice(95, 115), slice(60, 100))  # crosses into the texture: seeded there, kept whole
    score = blob_score(flat, textured, straddling)
    seeds = score * texture_weight(frame, score.shape, 1e-3)
    mask = extract_mask(score, 2.0, 4.0, 10, seeds).astype(bool)
    assert not mask[flat].any()
    assert mask[textured].all() and mask[straddling].all()
    np.testing.assert_array_equal(extract_mask(score, 2.0, 4.0, 10), score > 2.0)  # without seeds: all three


def test_frame_probability_drops_a_blob_over_a_flat_area_unless_texture_gating_is_off():
    frame = half_textured_frame()
    score = blob_score((slice(20, 50), slice(10, 40)))
    gated = frame_probability(score, GeometricConfig().at_width(WIDTH), frame)
    ungated = frame_probability(score, GeometricConfig(texture_floor=0.0).at_width(WIDTH), frame)
    assert not np.any(gated > 0.5)
    assert np.all(ungated[25:45, 15:35] > 0.5)  # kept (its rim is trimmed by the edge refinement)


def test_texture_floor_must_not_be_negative():
    with pytest.raises(ConfigError, match="texture_floor"):
        GeometricConfig(texture_floor=-1.0)
