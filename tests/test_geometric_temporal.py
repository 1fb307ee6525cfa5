"""Temporal support of the geometric backend's scores, and objects slower than the camera."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from geomotion_core.demo import DemoClipConfig, render_clip
from geomotion_core.errors import ConfigError
from geomotion_core.eval.metrics import batch_scores
from geomotion_core.geometric import GeometricBackend, GeometricConfig
from geomotion_core.geometric.egomotion import PixelGrid, landing_map
from geomotion_core.geometric.temporal import carry, temporal_median


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5])
def test_temporal_median_equals_the_numpy_median(count):
    maps = [np.random.default_rng(count + seed).normal(size=(31, 47)).astype(np.float32) for seed in range(count)]
    median = temporal_median(maps)
    assert median.dtype == np.float32
    np.testing.assert_allclose(median, np.median(np.stack(maps), axis=0), rtol=0, atol=1e-6)


def test_temporal_median_rejects_too_many_maps():
    with pytest.raises(ValueError, match="1 to 5"):
        temporal_median([np.zeros((2, 2), np.float32)] * 6)


def test_carry_brings_a_neighbours_blob_back_along_the_flow():
    grid = PixelGrid.with_samples(60, 80, 100)
    neighbour = np.zeros((60, 80), np.float32)
    neighbour[30:40, 45:55] = 5.0  # the object after moving by (+7, +4)
    flow = np.broadcast_to(np.array([7.0, 4.0], np.float32), (60, 80, 2)).copy()
    carried = carry(neighbour, landing_map(flow, grid))
    expected = np.zeros_like(neighbour)
    expected[26:36, 38:48] = 5.0
    np.testing.assert_array_equal(carried, expected)


def test_object_slower_than_the_panning_camera_is_found():
    """The demo clip rendered over 8 frames: the camera pans ~9 px per frame, the objects move
    3.5 px relative to the scene (their scores stay a few noise units above the background)."""
    clip = render_clip(DemoClipConfig(frames=8))
    probability = GeometricBackend().predict_window(clip.frames).probability
    j_values, _ = batch_scores(probability > 0.5, clip.masks)
    assert j_values.mean() > 0.5  # measured 0.75 (0.06 before the seed level was bounded)


def test_temporal_radius_is_validated_and_zero_scores_each_frame_alone():
    with pytest.raises(ConfigError, match="temporal_radius"):
        GeometricConfig(temporal_radius=3)
    clip = render_clip(DemoClipConfig(frames=8))
    alone = GeometricBackend(replace(GeometricConfig(), temporal_radius=0)).predict_window(clip.frames[3:5])
    supported = GeometricBackend().predict_window(clip.frames[3:5])
    # with two frames each has one neighbour: the median of two maps differs from either score
    assert not np.array_equal(alone.probability, supported.probability)
    np.testing.assert_array_equal(alone.poses, supported.poses)


@pytest.mark.parametrize("lookahead", [0, 1, 2, 3])
def test_causal_lookahead_results_do_not_change_when_later_frames_arrive(lookahead):
    """With ``lookahead`` L a frame's result uses frames up to L after it: in a window ending L
    frames after it, it is already what every longer window gives (so a stream can publish it)."""
    clip = render_clip(DemoClipConfig(frames=10))
    config = GeometricConfig(lookahead=lookahead)
    whole = GeometricBackend(config).predict_window(clip.frames).probability
    for index in range(len(clip.frames) - lookahead):
        early = GeometricBackend(config).predict_window(clip.frames[: index + 1 + lookahead]).probability
        np.testing.assert_array_equal(early[index], whole[index])
    offline = GeometricBackend().predict_window(clip.frames[:6]).probability
    assert not np.array_equal(offline[3], whole[3])  # the offline default does look further ahead


def test_cached_causal_windows_equal_fresh_ones():
    """A stream of windows ending at the newest frame reuses cached results keyed by the frames
    they depend on: each newest-minus-L frame equals a fresh computation."""
    clip = render_clip(DemoClipConfig(frames=10))
    config = GeometricConfig(lookahead=1)
    streaming = GeometricBackend(config)
    for end in range(2, len(clip.frames) + 1):
        start = max(0, end - 5)
        window = streaming.predict_window(clip.frames[start:end], frame_ids=range(start, end)).probability
        fresh = GeometricBackend(config).predict_window(clip.frames[start:end]).probability
        np.testing.assert_array_equal(window, fresh)


def test_lookahead_is_validated():
    with pytest.raises(ConfigError, match="lookahead"):
        GeometricConfig(lookahead=-1)
    assert GeometricConfig.from_settings({"lookahead": "none"}).lookahead is None
