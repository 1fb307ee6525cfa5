"""The low-latency ``newest`` policy, look-ahead, input gaps and admission failures of the engine."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.data import read_frames
from geomotion_core.backend import BackendOptions
from geomotion_core.backends import build_backend
from geomotion_core.errors import ConfigError
from geomotion_core.streaming import StreamingConfig, StreamingSegmenter
from geomotion_core.streaming import segmenter as segmenter_module
from test_streaming import FakeBackend, assert_results_match_frames, expected_trajectory, make_frame


def newest(size: int = 4, lookahead: int = 0, **changes) -> StreamingConfig:
    return StreamingConfig(window_size=size, stride=1, policy="newest", lookahead=lookahead, **changes)


@pytest.mark.parametrize("lookahead", [0, 1, 2])
def test_each_frame_is_final_after_exactly_lookahead_later_frames(lookahead):
    backend = FakeBackend()
    engine = StreamingSegmenter(backend, newest(size=5, lookahead=lookahead))
    batches = [engine.push(make_frame(index), 0.1 * index) for index in range(12)]
    for index, batch in enumerate(batches):
        # from the second frame on, every push finalises the frame `lookahead` frames back, alone
        expected = [index - lookahead] if index >= max(1, lookahead) else []
        if index == 1 and lookahead == 0:
            expected = [0, 1]  # the first window (2 frames) finalises both
        assert [result.index for result in batch] == expected, index
    tail = engine.flush()
    assert [result.index for result in tail] == list(range(12 - lookahead, 12))
    results = [result for batch in batches for result in batch] + tail
    assert_results_match_frames(results)
    # windows grow from 2 frames to the window size and always end at the newest frame
    lengths = [len(call) for call in backend.calls]
    assert lengths[0] == max(2, lookahead + 1) and lengths == sorted(lengths) and lengths[-1] == 5
    assert [call[-1] for call in backend.calls[: 13 - lengths[0]]] == list(range(lengths[0] - 1, 12))
    assert all(call[-1] - call[0] == len(call) - 1 for call in backend.calls)


def test_newest_chains_one_continuous_trajectory():
    engine = StreamingSegmenter(FakeBackend(), newest(size=4))
    results = [result for index in range(15) for result in engine.push(make_frame(index), 0.1 * index)]
    poses = np.stack([result.pose for result in results])
    expected = expected_trajectory([result.index for result in results])
    centres, truth = poses[:, :3, 3], expected[:, :3, 3]
    scale = np.linalg.norm(centres[-1] - centres[0]) / np.linalg.norm(truth[-1] - truth[0])
    np.testing.assert_allclose(centres, truth * scale, atol=1e-6)


def test_a_slow_worker_takes_the_newest_frame_and_skips_the_rest_as_stale():
    backend = FakeBackend()
    engine = StreamingSegmenter(backend, newest(size=4, max_queue=8))
    for index in range(3):  # the camera is faster than the worker: three frames wait
        engine.submit(make_frame(index), 0.1 * index)
    assert [r.index for r in engine.process_pending()] == [1, 2]  # the first window: the two newest
    for index in range(3, 9):
        engine.submit(make_frame(index), 0.1 * index)
    assert [r.index for r in engine.process_pending()] == [8]  # only the newest; 3..7 are stale
    engine.submit(make_frame(9), 0.9)
    assert [r.index for r in engine.process_pending()] == [9]
    assert backend.calls[-2:] == [[1, 2, 8], [1, 2, 8, 9]]  # windows of the processed frames
    stats = engine.stats
    assert (stats.processed, stats.dropped_stale, stats.queue_depth) == (4, 6, 0)


def test_newest_results_are_the_geometric_backend_on_the_window_ending_at_each_frame(davis_root):
    """Causal on real frames: a frame's mask only depends on it and the frames before it."""
    frames = read_frames(davis_root, "car-shadow", 7, size=(214, 120))
    options = BackendOptions(backend="geometric", flow="dis")
    engine = StreamingSegmenter(build_backend(options), newest(size=4))
    results = {}
    for index, frame in enumerate(frames):
        for result in engine.push(frame, float(index)):
            results[result.index] = result
    reference = build_backend(options)
    for index in range(2, 7):
        start = max(0, index - 3)
        window = reference.predict_window(frames[start : index + 1])
        np.testing.assert_array_equal(results[index].probability, window.probability[-1])
    assert any(result.mask.any() for result in results.values())


def test_finish_pending_after_a_gap_keeps_the_trajectory():
    backend = FakeBackend()
    engine = StreamingSegmenter(backend, StreamingConfig(window_size=5, stride=2))
    before = [result for index in range(7) for result in engine.push(make_frame(index), 0.1 * index)]
    held = engine.finish_pending()  # input gap: the waiting frames are finalised now
    assert [r.index for r in before + held] == list(range(7))
    after = [result for index in range(7, 14) for result in engine.push(make_frame(index), 0.1 * index)]
    after += engine.flush()
    results = before + held + after
    assert [r.index for r in results] == list(range(14))  # nothing finalised twice, nothing lost
    assert engine.stats.resets == {} and backend.resets == 1  # only the final flush ends the stream
    poses = np.stack([result.pose for result in results])
    expected = expected_trajectory(list(range(14)))
    scale = np.linalg.norm(poses[6, :3, 3] - poses[0, :3, 3]) / np.linalg.norm(expected[6, :3, 3] - expected[0, :3, 3])
    np.testing.assert_allclose(poses[:, :3, 3], expected[:, :3, 3] * scale, atol=1e-6)  # continuous


def test_a_frame_that_cannot_be_admitted_is_dropped_counted_and_the_engine_recovers(monkeypatch):
    real_ring = segmenter_module.FrameRing

    def ring(capacity, frame_shape):
        if frame_shape[0] > 100:
            raise MemoryError("cannot allocate the window buffer")
        return real_ring(capacity, frame_shape)

    monkeypatch.setattr(segmenter_module, "FrameRing", ring)
    engine = StreamingSegmenter(FakeBackend(), StreamingConfig(window_size=3, stride=1))
    results = [r for index in range(4) for r in engine.push(make_frame(index), 0.1 * index)]
    with pytest.raises(MemoryError):
        engine.push(make_frame(4, shape=(200, 16)), 0.4)
    for index in range(5, 9):  # later frames are processed again: no wedge on the bad frame
        results += engine.push(make_frame(index), 0.1 * index)
    results += engine.flush()
    stats = engine.stats
    assert [r.index for r in results] == [0, 1, 2, 3, 5, 6, 7, 8]
    assert stats.failed == 1 and stats.resets == {"size_change": 1, "frame_error": 1}
    assert stats.submitted == stats.processed + stats.dropped


@pytest.mark.parametrize("changes, message", [
    ({"policy": "newest", "stride": 2}, "policy newest runs causal windows at stride 1"),
    ({"policy": "newest", "stride": 1, "causal": False}, "lookahead|stride 1"),
    ({"lookahead": 3, "stride": 1}, "lookahead must be in"),
    ({"lookahead": 1, "stride": 1, "window_size": 2, "align_scale": False}, r"\[0, 0\]"),
    ({"lookahead": 1, "stride": 1, "causal": False}, "causal windows only"),
])
def test_invalid_newest_and_lookahead_settings_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        StreamingConfig(**changes).validate()
