"""StreamingSegmenter bookkeeping, pose chaining, resets, policies and memory with a test double.

The double derives each frame's probability from its brightness (so a result can be traced back to
its frame) and its poses from a known trajectory seen through a random similarity per window (so
chaining must undo a different scale, rotation and offset in every window).
"""
from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterator, Sequence

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from geomotion_core.errors import ConfigError, InputError
from geomotion_core.streaming import Similarity, StreamingConfig, StreamingSegmenter, segment_stream
from geomotion_core.types import FrameResult, WindowPrediction

SHAPE = (12, 16)


def brightness(index: int) -> int:
    return (37 * index + 11) % 256


def make_frame(index: int, shape: tuple[int, int] = SHAPE) -> np.ndarray:
    return np.full((*shape, 3), brightness(index), dtype=np.uint8)


def true_pose(index: int) -> np.ndarray:
    """A helix with a turning camera: positions and orientations change every frame."""
    pose = np.eye(4)
    pose[:3, :3] = Rotation.from_rotvec([0.03 * index, 0.2 * np.sin(0.3 * index), 0.01 * index]).as_matrix()
    pose[:3, 3] = (np.cos(0.2 * index), np.sin(0.2 * index), 0.1 * index)
    return pose


def scene_points(shape: tuple[int, int]) -> np.ndarray:
    """One static world point per pixel."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    return np.stack([cols, rows, np.full_like(rows, 5.0)], axis=-1)


class ManualClock:
    """A ``time.perf_counter`` / ``time.monotonic`` stand-in that moves only when told to."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeBackend:
    """Deterministic MotionBackend double that records what it was asked; with a ``clock``, each
    window takes ``delay`` seconds on it."""

    name = "fake"

    def __init__(
        self,
        seed: int = 0,
        delay: float = 0.0,
        fail_on_call: int | None = None,
        scales: tuple[float, float] = (0.2, 5.0),
        clock: ManualClock | None = None,
    ) -> None:
        self.rng = np.random.default_rng(seed)
        self.scales = scales
        self.delay = delay
        self.clock = clock
        self.fail_on_call = fail_on_call
        self.calls: list[list[int]] = []
        self.shapes: list[tuple[int, ...]] = []
        self.intrinsics: list[np.ndarray | None] = []
        self.resets = 0

    def predict_window(
        self, frames: np.ndarray, frame_ids: Sequence[int] | None = None, intrinsics: np.ndarray | None = None
    ) -> WindowPrediction:
        self.calls.append(list(frame_ids))
        self.shapes.append(frames.shape)
        self.intrinsics.append(intrinsics)
        if self.fail_on_call == len(self.calls):
            raise RuntimeError("backend failure for the test")
        if self.clock is not None:
            self.clock.now += self.delay
        window_frame = Similarity(
            scale=float(self.rng.uniform(*self.scales)),
            rotation=Rotation.random(random_state=int(self.rng.integers(1 << 30))).as_matrix(),
            translation=self.rng.normal(0.0, 10.0, 3),
        )
        truth = np.stack([true_pose(frame_id) for frame_id in frame_ids])
        points = np.broadcast_to(window_frame.apply_to_points(scene_points(frames.shape[1:3])), (*frames.shape[:3], 3))
        return WindowPrediction(
            probability=frames.mean(axis=3, dtype=np.float32) / 255.0,
            poses=window_frame.apply_to_poses(truth),
            points=np.ascontiguousarray(points),
            timings={"fake": 0.001},
        )

    def reset(self) -> None:
        self.resets += 1


class GatedBackend(FakeBackend):
    """A FakeBackend whose calls wait at a gate until the test opens it; ``entered`` is set once the
    first call is inside the backend (and holds the engine's work lock)."""

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.entered = threading.Event()
        self.gate = threading.Event()

    def predict_window(self, frames: np.ndarray, frame_ids: Sequence[int] | None = None,
                       intrinsics: np.ndarray | None = None) -> WindowPrediction:
        self.entered.set()
        assert self.gate.wait(10.0), "the test never opened the gate"
        return super().predict_window(frames, frame_ids, intrinsics)


def run_stream(segmenter: StreamingSegmenter, count: int, start: int = 0) -> list[list[FrameResult]]:
    """Push frames ``start .. start+count-1`` (stamp = 0.1 * index); the results of each push."""
    return [segmenter.push(make_frame(index), 0.1 * index) for index in range(start, start + count)]


def flatten(batches: list[list[FrameResult]]) -> list[FrameResult]:
    return [result for batch in batches for result in batch]


@contextlib.contextmanager
def background_worker(segmenter: StreamingSegmenter) -> Iterator[list[FrameResult]]:
    """Process windows on a worker thread (as the node does) while the body submits frames.

    Yields the list the worker appends its results to; the worker is stopped and joined on exit.
    """
    results: list[FrameResult] = []
    done = threading.Event()

    def worker() -> None:
        while not done.is_set():
            if segmenter.wait_ready(timeout=0.01):
                results.extend(segmenter.process_pending())

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        yield results
    finally:
        done.set()
        thread.join()


def assert_results_match_frames(results: list[FrameResult], threshold: float = 0.5) -> None:
    for result in results:
        expected = brightness(result.index) / 255.0
        assert result.probability.shape == SHAPE and result.mask.shape == SHAPE
        np.testing.assert_allclose(result.probability, expected, rtol=1e-6)
        assert result.mask.dtype == np.uint8
        assert np.all(result.mask == (255 if expected > threshold else 0))


WINDOWINGS = [(4, 1, True), (4, 1, False), (5, 2, True), (5, 2, False), (6, 4, True), (7, 3, False), (2, 1, True)]


def windowing(size: int, stride: int, causal: bool, **changes) -> StreamingConfig:
    """A config; a one-frame overlap cannot carry a scale, so those chain rigidly."""
    return StreamingConfig(window_size=size, stride=stride, causal=causal, align_scale=size - stride >= 2, **changes)


@pytest.mark.parametrize("size,stride,causal", WINDOWINGS)
@pytest.mark.parametrize("count", [1, 3, 7, 23])
def test_every_stamp_final_exactly_once_in_order(size, stride, causal, count):
    segmenter = StreamingSegmenter(FakeBackend(), windowing(size, stride, causal))
    results = flatten(run_stream(segmenter, count)) + segmenter.flush()
    assert [result.index for result in results] == list(range(count))
    assert [result.stamp for result in results] == [0.1 * index for index in range(count)]
    assert_results_match_frames(results)
    stats = segmenter.stats
    assert (stats.submitted, stats.processed, stats.dropped) == (count, count, 0)
    assert stats.pending == stats.queue_depth == 0


@pytest.mark.parametrize("size,stride,causal", WINDOWINGS)
def test_windows_slide_by_stride_and_finalise_the_documented_frames(size, stride, causal):
    backend = FakeBackend()
    segmenter = StreamingSegmenter(backend, windowing(size, stride, causal))
    batches = run_stream(segmenter, 30)
    lead = size - stride if causal else (size - stride) // 2
    assert all(call == list(range(k * stride, k * stride + size)) for k, call in enumerate(backend.calls))
    for pushed, batch in enumerate(batches):
        completes_window = pushed >= size - 1 and (pushed - size + 1) % stride == 0
        if not completes_window:
            assert batch == []
            continue
        start = pushed - size + 1
        first = 0 if start == 0 else start + lead
        assert [result.index for result in batch] == list(range(first, start + lead + stride))
    regular_count = len(backend.calls)
    tail = segmenter.flush()
    assert [result.index for result in flatten(batches) + tail] == list(range(30))
    if tail:  # a tail window over the last frames finalises the rest
        assert backend.calls[regular_count:] == [list(range(30 - size, 30))]


def test_consecutive_windows_reuse_frame_ids_of_their_overlap():
    backend = FakeBackend()
    segmenter = StreamingSegmenter(backend, StreamingConfig(window_size=6, stride=2))
    run_stream(segmenter, 20)
    assert len(backend.calls) == 8
    for earlier, later in zip(backend.calls, backend.calls[1:]):
        assert later[:4] == earlier[2:]
        assert len(set(later)) == 6


def expected_trajectory(indices: list[int]) -> np.ndarray:
    """The true trajectory moved so that frame ``indices[0]`` is the identity (scale 1)."""
    truth = np.stack([true_pose(index) for index in indices])
    anchor = np.linalg.inv(truth[0])
    return np.einsum("ij,njk->nik", anchor, truth)


def assert_same_trajectory_up_to_scale(poses: np.ndarray, expected: np.ndarray) -> float:
    np.testing.assert_allclose(poses[0], np.eye(4), atol=1e-9)
    np.testing.assert_allclose(poses[:, :3, :3], expected[:, :3, :3], atol=1e-9)
    scale = np.linalg.norm(poses[1, :3, 3]) / np.linalg.norm(expected[1, :3, 3])
    np.testing.assert_allclose(poses[:, :3, 3], scale * expected[:, :3, 3], atol=1e-8 * max(1.0, scale))
    return scale


@pytest.mark.parametrize("size,stride,causal", [(4, 1, True), (5, 3, True), (6, 2, False), (3, 1, True)])
def test_pose_chaining_reproduces_the_trajectory_up_to_one_scale(size, stride, causal):
    backend = FakeBackend(seed=size + stride)
    segmenter = StreamingSegmenter(backend, windowing(size, stride, causal))
    results = flatten(run_stream(segmenter, 40)) + segmenter.flush()
    poses = np.stack([result.pose for result in results])
    scale = assert_same_trajectory_up_to_scale(poses, expected_trajectory(list(range(40))))
    assert scale > 0.0
    for pose in poses:
        np.testing.assert_allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-9)
        np.testing.assert_array_equal(pose[3], [0.0, 0.0, 0.0, 1.0])


def test_rigid_chaining_with_a_one_frame_overlap_for_backends_of_one_scale():
    backend = FakeBackend(seed=5, scales=(1.0, 1.0))
    segmenter = StreamingSegmenter(backend, windowing(3, 2, True))
    results = flatten(run_stream(segmenter, 20)) + segmenter.flush()
    poses = np.stack([result.pose for result in results])
    scale = assert_same_trajectory_up_to_scale(poses, expected_trajectory(list(range(20))))
    assert scale == pytest.approx(1.0)


def test_world_points_follow_the_chained_trajectory():
    segmenter = StreamingSegmenter(FakeBackend(seed=3), StreamingConfig(window_size=4, stride=1))
    results = flatten(run_stream(segmenter, 15)) + segmenter.flush()
    # The scene is static, so every frame must see the same world points on the one trajectory.
    for result in results[1:]:
        np.testing.assert_allclose(result.points, results[0].points, rtol=1e-4, atol=1e-3)
    assert results[0].points.dtype == np.float32 and results[0].points.shape == (*SHAPE, 3)


def test_still_camera_keeps_a_finite_trajectory():
    class StillBackend(FakeBackend):
        def predict_window(self, frames, frame_ids=None, intrinsics=None):
            return super().predict_window(frames, [0] * len(frame_ids), intrinsics)

    segmenter = StreamingSegmenter(StillBackend(), StreamingConfig(window_size=4, stride=1))
    results = flatten(run_stream(segmenter, 12)) + segmenter.flush()
    poses = np.stack([result.pose for result in results])
    np.testing.assert_allclose(poses, np.broadcast_to(np.eye(4), poses.shape), atol=1e-9)


def test_size_change_finalises_the_old_size_and_continues_at_the_new_one():
    backend = FakeBackend()
    segmenter = StreamingSegmenter(backend, StreamingConfig(window_size=4, stride=1))
    results = flatten(run_stream(segmenter, 10))
    small = (8, 10)
    for index in range(10, 17):
        results += segmenter.push(make_frame(index, small), 0.1 * index)
    results += segmenter.flush()
    assert [result.index for result in results] == list(range(17))
    assert all(result.mask.shape == (SHAPE if result.index < 10 else small) for result in results)
    assert not any({9, 10} <= set(call) for call in backend.calls)  # no window spans the change
    assert {shape[1:3] for shape in backend.shapes} == {SHAPE, small}
    stats = segmenter.stats
    assert stats.resets == {"size_change": 1} and stats.last_reset_reason == "size_change"
    assert backend.resets >= 1
    np.testing.assert_allclose(results[10].pose, np.eye(4), atol=1e-9)  # a new trajectory starts
    poses = np.stack([result.pose for result in results[10:]])
    assert_same_trajectory_up_to_scale(poses, expected_trajectory(list(range(10, 17))))


def test_stamp_going_back_restarts_the_window_and_trajectory():
    backend = FakeBackend()
    segmenter = StreamingSegmenter(backend, StreamingConfig(window_size=4, stride=2))
    stamps = [0.1 * i for i in range(9)] + [0.1 * i for i in range(6)]  # a bag loop
    results = []
    for index, stamp in enumerate(stamps):
        results += segmenter.push(make_frame(index), stamp)
    results += segmenter.flush()
    assert [result.index for result in results] == list(range(15))
    assert [result.stamp for result in results] == stamps
    assert segmenter.stats.resets == {"stamp_backwards": 1}
    assert not any({8, 9} <= set(call) for call in backend.calls)  # no window spans the jump
    np.testing.assert_allclose(results[9].pose, np.eye(4), atol=1e-9)


def test_repeated_stamp_is_dropped_and_counted():
    segmenter = StreamingSegmenter(FakeBackend(), StreamingConfig(window_size=3, stride=1))
    results = segmenter.push(make_frame(0), 1.0) + segmenter.push(make_frame(1), 1.0)
    for index in range(2, 6):
        results += segmenter.push(make_frame(index), float(index))
    results += segmenter.flush()
    assert [result.index for result in results] == [0, 2, 3, 4, 5]
    stats = segmenter.stats
    assert stats.dropped_duplicate == 1 and stats.resets == {}
    assert stats.submitted == stats.processed + stats.dropped


def test_latest_policy_keeps_the_newest_frames_and_counts_the_stale_ones():
    backend = FakeBackend()
    segmenter = StreamingSegmenter(backend, StreamingConfig(window_size=4, stride=1, policy="latest"))
    for index in range(12):
        assert segmenter.submit(make_frame(index), 0.1 * index)
    assert segmenter.stats.queue_depth == 12
    first = segmenter.process_pending()
    assert [result.index for result in first] == [8, 9, 10, 11]
    assert segmenter.stats.dropped_stale == 8
    for index in range(12, 15):
        segmenter.submit(make_frame(index), 0.1 * index)
    second = segmenter.process_pending()
    assert [result.index for result in second] == [14]
    assert backend.calls[-1] == [9, 10, 11, 14]  # the window holds the frames that were processed
    assert_results_match_frames(first + second)
    stats = segmenter.stats
    assert (stats.processed, stats.dropped_stale, stats.queue_depth) == (5, 10, 0)


def test_process_pending_runs_one_window_per_call_unless_asked_for_more():
    segmenter = StreamingSegmenter(FakeBackend(), StreamingConfig(window_size=4, stride=1))
    for index in range(10):
        segmenter.submit(make_frame(index), 0.1 * index)
    assert [result.index for result in segmenter.process_pending()] == [0, 1, 2, 3]
    assert [result.index for result in segmenter.process_pending()] == [4]
    assert [result.index for result in segmenter.process_pending(max_windows=None)] == [5, 6, 7, 8, 9]
    assert segmenter.process_pending() == [] and segmenter.stats.dropped == 0


def test_latest_policy_with_a_busy_backend_and_a_fast_camera():
    backend = GatedBackend()
    segmenter = StreamingSegmenter(backend, StreamingConfig(window_size=4, stride=1, policy="latest", max_queue=6))
    with background_worker(segmenter) as results:
        for index in range(4):
            segmenter.submit(make_frame(index), 0.001 * index)
        assert backend.entered.wait(10.0)  # the worker is inside the backend with frames 0-3
        for index in range(4, 150):  # the camera keeps going while the backend is busy
            segmenter.submit(make_frame(index), 0.001 * index)
            assert segmenter.stats.queue_depth <= 6
        assert segmenter.stats.dropped_stale == 146 - 6  # the queue kept the newest 6
        backend.gate.set()
    results += segmenter.flush()
    stats = segmenter.stats
    # the next window takes only the newest frame; the 5 queued before it went stale too
    assert [result.index for result in results] == [0, 1, 2, 3, 149]
    assert backend.calls == [[0, 1, 2, 3], [1, 2, 3, 149]]
    assert (stats.submitted, stats.processed, stats.dropped_stale) == (150, 5, 145)
    assert_results_match_frames(results)


@pytest.mark.parametrize("policy", ["every_frame", "latest"])
def test_a_burst_keeps_memory_bounded(policy):
    segmenter = StreamingSegmenter(FakeBackend(), StreamingConfig(window_size=4, stride=1, policy=policy, max_queue=8))
    alive = []
    accepted = 0
    for index in range(300):
        frame = make_frame(index)
        alive.append(weakref.ref(frame))
        accepted += segmenter.submit(frame, 0.1 * index)
        del frame
    held = sum(reference() is not None for reference in alive)
    assert held <= 8
    stats = segmenter.stats
    assert stats.queue_depth == 8
    if policy == "every_frame":
        assert (accepted, stats.dropped_overflow) == (8, 292)
    else:
        assert (accepted, stats.dropped_stale) == (300, 292)
    results = segmenter.process_pending(max_windows=None) + segmenter.flush()
    assert sum(reference() is not None for reference in alive) == 0  # the engine copies, keeps none
    expected = list(range(8)) if policy == "every_frame" else [296, 297, 298, 299]
    assert [result.index for result in results] == expected


def test_backend_failure_keeps_earlier_results_counts_the_lost_frames_and_recovers():
    backend = FakeBackend(fail_on_call=3)
    segmenter = StreamingSegmenter(backend, StreamingConfig(window_size=3, stride=1))
    results = []
    with pytest.raises(RuntimeError, match="backend failure"):
        for index in range(10):
            results += segmenter.push(make_frame(index), 0.1 * index)
    assert [result.index for result in results] == [0, 1, 2, 3]
    for index in range(5, 12):
        results += segmenter.push(make_frame(index), 0.1 * index)
    results += segmenter.flush()
    stats = segmenter.stats
    assert stats.failed == 1 and stats.resets == {"backend_error": 1}
    assert [result.index for result in results] == [0, 1, 2, 3] + list(range(5, 12))
    assert stats.submitted == stats.processed + stats.dropped


def test_non_finite_poses_count_as_a_backend_failure_instead_of_poisoning_the_trajectory():
    class NanBackend(FakeBackend):
        def predict_window(self, frames, frame_ids=None, intrinsics=None):
            prediction = super().predict_window(frames, frame_ids, intrinsics)
            if len(self.calls) == 2:
                prediction.poses[-1, 0, 3] = np.nan
            return prediction

    segmenter = StreamingSegmenter(NanBackend(), StreamingConfig(window_size=3, stride=1))
    results = flatten(run_stream(segmenter, 3))
    with pytest.raises(ValueError, match="non-finite"):
        segmenter.push(make_frame(3), 0.3)
    results += flatten(run_stream(segmenter, 5, start=4)) + segmenter.flush()
    assert [result.index for result in results] == [0, 1, 2, 4, 5, 6, 7, 8]
    assert all(np.all(np.isfinite(result.pose)) for result in results)
    assert segmenter.stats.failed == 1


def test_requested_reset_discards_pending_frames_and_starts_a_new_trajectory():
    backend = FakeBackend()
    segmenter = StreamingSegmenter(backend, StreamingConfig(window_size=4, stride=1))
    results = flatten(run_stream(segmenter, 6))
    segmenter.submit(make_frame(6), 0.6)
    segmenter.reset()
    stats = segmenter.stats
    assert stats.dropped_reset == 1 and stats.resets == {"requested": 1} and backend.resets == 1
    results = flatten(run_stream(segmenter, 5, start=7)) + segmenter.flush()
    assert [result.index for result in results] == list(range(7, 12))
    np.testing.assert_allclose(results[0].pose, np.eye(4), atol=1e-9)


def test_the_backend_gets_the_newest_intrinsics_of_the_window():
    backend = FakeBackend()
    segmenter = StreamingSegmenter(backend, StreamingConfig(window_size=3, stride=1))
    camera = np.array([[100.0, 0.0, 8.0], [0.0, 100.0, 6.0], [0.0, 0.0, 1.0]])
    for index in range(6):
        segmenter.push(make_frame(index), 0.1 * index, intrinsics=camera * (index + 1) if index in (1, 3) else None)
    assert [None if k is None else k[0, 0] for k in backend.intrinsics] == [200.0, 400.0, 400.0, 400.0]


def test_reset_from_another_thread_while_the_worker_runs():
    backend = GatedBackend()
    segmenter = StreamingSegmenter(backend, StreamingConfig(window_size=3, stride=1, policy="latest"))
    with background_worker(segmenter) as results:
        for index in range(3):
            segmenter.submit(make_frame(index), 0.01 * index)
        assert backend.entered.wait(10.0)  # the worker is inside the backend with frames 0-2
        for index in range(3, 10):
            segmenter.submit(make_frame(index), 0.01 * index)
        resetter = threading.Thread(target=segmenter.reset)
        resetter.start()  # waits for the window in flight, then discards what is queued
        backend.gate.set()
        resetter.join(10.0)
        assert not resetter.is_alive()
        for index in range(10, 20):
            segmenter.submit(make_frame(index), 0.01 * index)
    results += segmenter.flush()
    stats = segmenter.stats
    assert stats.resets == {"requested": 1} and backend.resets >= 1
    assert stats.submitted == 20 == stats.processed + stats.dropped
    indices = [result.index for result in results]
    assert indices[:3] == [0, 1, 2] and indices[-1] == 19  # the window in flight is kept
    assert indices == sorted(set(indices)) and len(indices) == stats.processed
    assert_results_match_frames(results)
    restarted = next(result for result in results if result.index >= 10)  # a new trajectory after the reset
    np.testing.assert_allclose(restarted.pose, np.eye(4), atol=1e-9)


def test_invalid_input_is_rejected_before_it_is_queued():
    segmenter = StreamingSegmenter(FakeBackend(), StreamingConfig(window_size=3, stride=1))
    with pytest.raises(InputError, match="uint8"):
        segmenter.submit(np.zeros((*SHAPE, 3), np.float32), 0.0)
    with pytest.raises(InputError, match="uint8"):
        segmenter.submit(np.zeros(SHAPE, np.uint8), 0.0)
    with pytest.raises(InputError, match="empty"):
        segmenter.submit(np.zeros((0, 4, 3), np.uint8), 0.0)
    with pytest.raises(InputError, match="finite"):
        segmenter.submit(make_frame(0), float("nan"))
    with pytest.raises(InputError, match="3x3"):
        segmenter.submit(make_frame(0), 0.0, intrinsics=np.eye(4))
    assert segmenter.stats.submitted == 0


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"policy": "fastest"}, "policy"),
        ({"window_size": 1}, "window_size"),
        ({"stride": 0}, "stride"),
        ({"window_size": 4, "stride": 4}, "stride"),
        ({"window_size": 4, "stride": 3}, "align_scale"),
        ({"threshold": 1.0}, "threshold"),
        ({"window_size": 8, "max_queue": 7}, "max_queue"),
        ({"min_baseline": -1.0}, "min_baseline"),
    ],
)
def test_invalid_configuration_is_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        StreamingSegmenter(FakeBackend(), StreamingConfig(**changes))


def test_segment_stream_yields_each_result_as_it_becomes_final():
    pairs = ((make_frame(index), 0.5 * index) for index in range(9))
    stream = segment_stream(pairs, FakeBackend(), StreamingConfig(window_size=3, stride=1))
    first = next(stream)
    assert (first.index, first.stamp) == (0, 0.0)
    rest = list(stream)
    assert [result.stamp for result in rest] == [0.5 * index for index in range(1, 9)]


def test_results_carry_timings_and_latency(monkeypatch):
    from types import SimpleNamespace

    from geomotion_core.streaming import intake, segmenter as segmenter_module

    clock = ManualClock()  # only the backend takes time: 0.5 s per window
    for module in (intake, segmenter_module):
        monkeypatch.setattr(module, "time", SimpleNamespace(perf_counter=clock, monotonic=clock))
    segmenter = StreamingSegmenter(FakeBackend(clock=clock, delay=0.5), StreamingConfig(window_size=3, stride=1))
    results = flatten(run_stream(segmenter, 5))
    # the first window finalises frames 0-2, then one window per frame: its cost is shared by its frames
    shares = [0.5 / 3] * 3 + [0.5] * 2
    assert [result.timings["backend"] for result in results] == pytest.approx(shares)
    assert [result.timings["fake"] for result in results] == pytest.approx([0.001 * share / 0.5 for share in shares])
    assert [result.timings["latency"] for result in results] == pytest.approx([0.5] * 5)  # arrival to result
    stats = segmenter.stats
    assert stats.windows == 3 and stats.backend_s == pytest.approx(1.5) and stats.engine_s == pytest.approx(0.0)
    assert stats.last_latency_s == pytest.approx(0.5) and stats.last_window_s == pytest.approx(0.5)
