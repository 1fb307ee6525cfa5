"""The streaming engine on real DAVIS 2016 frames with the real backends.

Checks that every frame gets one result at the input size, that windows reuse the backend's caches
without changing the results (a result equals a fresh, cache-free run of its finalising window),
and that a size change mid-stream continues at the new size.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks.data import read_frames
from geomotion_core.backend import BackendOptions, MotionBackend
from geomotion_core.backends import build_backend
from geomotion_core.streaming import StreamingConfig, StreamingSegmenter
from geomotion_core.types import FrameResult

SEQUENCE = "car-shadow"


@pytest.fixture(scope="module")
def davis_frames(davis_root: Path) -> list[np.ndarray]:
    return list(read_frames(davis_root, SEQUENCE, 10))


@pytest.fixture(scope="module")
def geometric_backend() -> MotionBackend:
    return build_backend(BackendOptions(backend="geometric", flow="dis"))


@pytest.fixture(scope="module")
def network_backend(small_reference) -> MotionBackend:
    return build_backend(small_reference.backend_options(size=70))


def stream(
    backend: MotionBackend, frames: list[np.ndarray], config: StreamingConfig
) -> tuple[list[FrameResult], StreamingSegmenter]:
    backend.reset()
    engine = StreamingSegmenter(backend, config)
    results = list(engine.stream((frame, 0.04 * index) for index, frame in enumerate(frames)))
    return results, engine


def assert_valid_results(results: list[FrameResult], frames: list[np.ndarray]) -> None:
    assert [result.index for result in results] == list(range(len(frames)))
    assert [result.stamp for result in results] == [0.04 * index for index in range(len(frames))]
    for result, frame in zip(results, frames):
        assert result.mask.shape == frame.shape[:2] and result.mask.dtype == np.uint8
        assert set(np.unique(result.mask)) <= {0, 255}
        assert result.probability.shape == frame.shape[:2] and result.probability.dtype == np.float32
        assert np.all((result.probability >= 0.0) & (result.probability <= 1.0))
        assert np.all(np.isfinite(result.pose))
        np.testing.assert_allclose(result.pose[:3, :3] @ result.pose[:3, :3].T, np.eye(3), atol=1e-9)
    np.testing.assert_allclose(results[0].pose, np.eye(4), atol=1e-9)


def assert_matches_fresh_windows(
    backend: MotionBackend, results: list[FrameResult], frames: list[np.ndarray], size: int
) -> None:
    """Causal stride 1: frame i >= size - 1 is the last row of window [i - size + 1, i], run without ids."""
    for result in results[size - 1 :]:
        backend.reset()
        window = np.stack(frames[result.index - size + 1 : result.index + 1])
        fresh = backend.predict_window(window)
        np.testing.assert_allclose(result.probability, fresh.probability[-1], atol=1e-5)


def test_geometric_backend_gives_every_davis_frame_a_mask_reusing_its_caches(geometric_backend, davis_frames):
    config = StreamingConfig(window_size=4, stride=1)
    results, engine = stream(geometric_backend, davis_frames, config)
    assert_valid_results(results, davis_frames)
    assert engine.stats.windows == len(davis_frames) - 3
    assert_matches_fresh_windows(geometric_backend, results[-3:], davis_frames, config.window_size)


def test_small_network_gives_every_davis_frame_a_mask_reusing_its_caches(network_backend, davis_frames):
    config = StreamingConfig(window_size=4, stride=1)
    results, _ = stream(network_backend, davis_frames, config)
    assert_valid_results(results, davis_frames)
    assert_matches_fresh_windows(network_backend, results[-3:], davis_frames, config.window_size)
    # The first window finalises its 4 frames: their poses are the network's, moved to start at the identity.
    network_backend.reset()
    first = network_backend.predict_window(np.stack(davis_frames[:4])).poses
    expected = np.linalg.inv(first[0]) @ first
    np.testing.assert_allclose(np.stack([result.pose for result in results[:4]]), expected, atol=1e-5)
    assert np.abs(expected[1:, :3, 3]).max() > 1e-3  # the comparison is not between zeros


def test_size_change_on_real_frames_continues_at_the_new_size(geometric_backend, davis_frames):
    half = [cv2.resize(frame, (frame.shape[1] // 2, frame.shape[0] // 2), interpolation=cv2.INTER_AREA)
            for frame in davis_frames[5:]]
    frames = davis_frames[:5] + half
    results, engine = stream(geometric_backend, frames, StreamingConfig(window_size=3, stride=1))
    assert [result.index for result in results] == list(range(len(frames)))
    assert [result.mask.shape for result in results] == [frame.shape[:2] for frame in frames]
    assert engine.stats.resets == {"size_change": 1}
    np.testing.assert_allclose(results[5].pose, np.eye(4), atol=1e-9)
