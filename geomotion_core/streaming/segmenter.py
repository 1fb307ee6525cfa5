# SPDX-License-Identifier: Apache-2.0
"""StreamingSegmenter: frames in, final per-frame results out, with bounded memory and latency."""
from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import replace
from typing import Iterable, Iterator

import numpy as np

from geomotion_core.backend import MotionBackend
from geomotion_core.errors import InputError
from geomotion_core.streaming.config import StreamingConfig
from geomotion_core.streaming.frame_ring import FrameRing
from geomotion_core.streaming.intake import FrameIntake, QueuedFrame
from geomotion_core.streaming.schedule import Window, WindowPlanner
from geomotion_core.streaming.stats import StreamingStats
from geomotion_core.streaming.trajectory import PoseChain
from geomotion_core.types import FrameResult, WindowPrediction

LOGGER = logging.getLogger(__name__)


class StreamingSegmenter:
    """Runs a motion backend over a live stream in overlapping windows.

    Two ways to drive it:

    * one thread: ``push(frame, stamp)`` returns the results that became final;
    * two threads (the ROS node): the frame callback calls ``submit`` (cheap, never blocks, bounded),
      the worker loops on ``wait_ready`` + ``process_pending`` (the heavy part).

    Every admitted frame gets exactly one result, in stamp order, stamped with its input stamp. A
    frame-size change or a stamp going backwards finalises the frames pending so far, then starts
    a new window sequence and a new trajectory (logged and counted in ``stats.resets``). Frames are
    held by reference until a window needs them and copied then; do not modify a submitted array.
    """

    def __init__(self, backend: MotionBackend, config: StreamingConfig) -> None:
        config.validate()
        self.backend = backend
        self.config = config
        self._intake = FrameIntake(config.max_queue, keep_latest=config.policy in ("latest", "newest"))
        self._work_lock = threading.RLock()  # serialises process_pending / flush / reset
        self._stats_lock = threading.Lock()
        self._planner = WindowPlanner(
            config.window_size, config.stride, config.causal, config.lookahead, growing=config.policy == "newest"
        )
        self._chain = PoseChain(config.align_scale, config.min_baseline)
        self._ring: FrameRing | None = None
        self._admitted: deque[QueuedFrame] = deque(maxlen=config.window_size)  # the ring's frames
        self._last_stamp: float | None = None
        self._outbox: list[FrameResult] = []  # final results not yet handed to the caller
        self._stats = StreamingStats()

    # -- producer side -------------------------------------------------------------------------

    def submit(self, frame: np.ndarray, stamp: float, intrinsics: np.ndarray | None = None) -> bool:
        """Queue a frame for processing; thread-safe and cheap.

        Returns False when the frame was refused (``every_frame`` policy with a full queue; counted
        as an overflow). Raises InputError for a frame that is not ``[H, W, 3]`` uint8, a stamp that
        is not finite, or intrinsics that are not a finite ``[3, 3]`` matrix.
        """
        _check_frame(frame, stamp, intrinsics)
        if self._intake.put(frame, float(stamp), intrinsics) is not None:
            return True
        overflow = self._intake.counts().dropped_overflow
        if overflow == 1 or overflow % 100 == 0:
            LOGGER.warning(
                "streaming queue full (%d frames): %d frames refused so far", self.config.max_queue, overflow
            )
        return False

    # -- worker side ---------------------------------------------------------------------------

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until enough frames are queued for the next window; False on timeout."""
        return self._intake.wait(self._planner.needed, timeout)

    def process_pending(self, max_windows: int | None = 1) -> list[FrameResult]:
        """Run the next window(s) whose frames are queued; returns the results that became final.

        One window per call by default, so a worker publishes each window's results at once;
        ``None`` runs windows until the queue cannot complete another (in ``latest`` mode with a
        camera faster than the backend, that is never: keep the default there).
        """
        with self._engine_work():
            self._run_ready_windows(max_windows)
            return self._drain_outbox()

    def push(self, frame: np.ndarray, stamp: float, intrinsics: np.ndarray | None = None) -> list[FrameResult]:
        """``submit`` then ``process_pending``: the single-thread way to drive the engine."""
        self.submit(frame, stamp, intrinsics)
        return self.process_pending(max_windows=None)

    def flush(self) -> list[FrameResult]:
        """Finalise every queued and pending frame (end of stream); the next frame starts afresh."""
        with self._engine_work():
            self._run_ready_windows(None)
            self._admit_and_run(self._intake.take_all())
            self._finish_segment()
            return self._drain_outbox()

    def finish_pending(self) -> list[FrameResult]:
        """Finalise every queued and pending frame but keep the stream open (an input gap).

        The trajectory, the window and the backend's caches are kept, so the next frame's window
        is aligned to the poses before the gap instead of restarting at the identity.
        """
        with self._engine_work():
            self._run_ready_windows(None)
            self._admit_and_run(self._intake.take_all())
            window = self._planner.tail_window()
            if window is not None:
                self._run_window(window)
            return self._drain_outbox()

    def reset(self) -> None:
        """Forget the window, the queue, the trajectory and the backend's caches.

        Queued and pending frames are discarded (counted as ``dropped_reset``); results that were
        already final are kept and returned by the next call.
        """
        with self._work_lock:
            discarded = len(self._intake.take_all()) + self._planner.pending
            self._clear_segment()
            with self._stats_lock:
                self._stats.dropped_reset += discarded
            self._record_reset("requested")
            LOGGER.info("streaming reset: %d queued or pending frames discarded", discarded)

    def stream(
        self, frames: Iterable[tuple[np.ndarray, float]], intrinsics: np.ndarray | None = None
    ) -> Iterator[FrameResult]:
        """Results for ``(frame, stamp)`` pairs as they become final, then the flushed rest."""
        for frame, stamp in frames:
            yield from self.push(frame, stamp, intrinsics)
        yield from self.flush()

    @property
    def stats(self) -> StreamingStats:
        """A consistent snapshot of the counters (thread-safe)."""
        counts = self._intake.counts()
        with self._stats_lock:
            return replace(
                self._stats,
                submitted=counts.submitted,
                dropped_stale=counts.dropped_stale,
                dropped_overflow=counts.dropped_overflow,
                queue_depth=counts.depth,
                pending=self._planner.pending,
                resets=dict(self._stats.resets),
            )

    # -- internals -----------------------------------------------------------------------------

    def _run_ready_windows(self, max_windows: int | None) -> None:
        ran = 0
        while max_windows is None or ran < max_windows:
            items = self._intake.take(self._planner.needed)
            if not items:
                return
            ran += self._admit_and_run(items)

    def _admit_and_run(self, items: list[QueuedFrame]) -> int:
        """Admit frames in order, running each window once complete; returns the windows run.

        If a frame cannot be admitted (e.g. no memory for its copy) it is counted as failed and the
        stream restarts; if the backend fails, the window's frames are lost (see ``_abandon_segment``).
        Either way the frames not yet admitted go back to the front of the queue and the error
        propagates, so the caller logs it and the next call continues with the next frames.
        """
        ran = 0
        for done, item in enumerate(items):
            try:
                self._admit_or_drop(item)
                window = self._planner.next_window()
                if window is not None:
                    self._run_window(window)
                    ran += 1
            except Exception:
                self._intake.restore(items[done + 1 :])
                raise
        return ran

    def _admit_or_drop(self, item: QueuedFrame) -> None:
        """``_admit``, or on failure drop this frame (counted), restart the stream and re-raise."""
        try:
            self._admit(item)
        except Exception:
            LOGGER.error("frame %d (stamp %.6f) could not be admitted: dropped, stream restarts", item.index, item.stamp)
            lost = self._planner.pending
            self._clear_segment()
            self._ring = None
            with self._stats_lock:
                self._stats.failed += 1 + lost
            self._record_reset("frame_error")
            raise

    def _admit(self, item: QueuedFrame) -> None:
        """Copy a frame into the window ring, first ending the segment if the stream broke."""
        shape = item.image.shape
        if self._last_stamp is not None:
            if shape != self._ring.frame_shape:
                LOGGER.warning(
                    "frame size changed from %dx%d to %dx%d at stamp %.6f: window and trajectory restart",
                    self._ring.frame_shape[1], self._ring.frame_shape[0], shape[1], shape[0], item.stamp,
                )
                self._restart_segment("size_change")
            elif item.stamp < self._last_stamp:
                LOGGER.warning(
                    "stamp went back from %.6f to %.6f: window and trajectory restart", self._last_stamp, item.stamp
                )
                self._restart_segment("stamp_backwards")
            elif item.stamp == self._last_stamp:
                LOGGER.warning("frame %d repeats stamp %.6f: dropped", item.index, item.stamp)
                with self._stats_lock:
                    self._stats.dropped_duplicate += 1
                return
        if self._ring is None or self._ring.frame_shape != shape:
            self._ring = FrameRing(self.config.window_size, shape)
        self._ring.put(self._planner.admit(), item.image)
        self._admitted.append(item)
        self._last_stamp = item.stamp

    def _restart_segment(self, reason: str) -> None:
        self._finish_segment()
        self._record_reset(reason)

    def _finish_segment(self) -> None:
        """Finalise the pending frames with a tail window, then clear the segment."""
        window = self._planner.tail_window()
        if window is not None:
            self._run_window(window)
        self._clear_segment()

    def _clear_segment(self) -> None:
        self._planner.reset()
        self._chain.reset()
        self._admitted.clear()
        self._last_stamp = None
        self.backend.reset()

    def _run_window(self, window: Window) -> None:
        """Run the backend on a window, chain its poses and emit the results it finalises."""
        first_held = self._planner.count - len(self._admitted)
        items = [self._admitted[position - first_held] for position in range(window.start, window.stop)]
        frames = self._ring.view(window.start, window.stop)
        frame_ids = [item.index for item in items]
        intrinsics = next((item.intrinsics for item in reversed(items) if item.intrinsics is not None), None)
        started = time.perf_counter()
        try:
            prediction = self.backend.predict_window(frames, frame_ids=frame_ids, intrinsics=intrinsics)
            _check_prediction(prediction, frames.shape[:3])
        except Exception:
            self._abandon_segment(window)
            raise
        backend_s = time.perf_counter() - started
        poses, similarity = self._chain.add_window(frame_ids, prediction.poses)
        final = slice(window.final_start - window.start, window.final_stop - window.start)
        points = None if prediction.points is None else similarity.apply_to_points(prediction.points[final])
        self._emit(items[final], prediction.probability[final], poses[final], points, prediction.timings, backend_s)

    def _emit(
        self,
        finals: list[QueuedFrame],
        probability: np.ndarray,
        poses: np.ndarray,
        points: np.ndarray | None,
        stage_timings: dict[str, float],
        backend_s: float,
    ) -> None:
        """Queue one result per finalised frame and count them."""
        if not finals:
            return
        probability = np.array(probability, dtype=np.float32)  # a copy: results must not pin the window
        masks = (probability > self.config.threshold).view(np.uint8)
        masks *= 255
        poses = poses.copy()  # the pose chain keeps its own rows
        share = 1.0 / len(finals)  # a window's cost is paid by the frames it finalises
        timings = {stage: seconds * share for stage, seconds in stage_timings.items()}
        timings["backend"] = backend_s * share
        now = time.monotonic()
        for row, item in enumerate(finals):
            self._outbox.append(
                FrameResult(
                    index=item.index,
                    stamp=item.stamp,
                    mask=masks[row],
                    probability=probability[row],
                    pose=poses[row],
                    points=None if points is None else points[row],
                    timings={**timings, "latency": now - item.arrival},
                )
            )
        with self._stats_lock:
            self._stats.processed += len(finals)
            self._stats.windows += 1
            self._stats.last_latency_s = now - finals[-1].arrival
            self._stats.last_window_s = backend_s
            self._stats.backend_s += backend_s

    def _abandon_segment(self, window: Window) -> None:
        """After a backend error: count the frames that will get no result and start clean."""
        lost = window.final_stop - window.final_start + self._planner.pending
        LOGGER.error("backend failed on a window: %d pending frames get no result, stream restarts", lost)
        self._clear_segment()
        with self._stats_lock:
            self._stats.failed += lost
        self._record_reset("backend_error")

    def _record_reset(self, reason: str) -> None:
        with self._stats_lock:
            self._stats.resets[reason] = self._stats.resets.get(reason, 0) + 1
            self._stats.last_reset_reason = reason

    @contextmanager
    def _engine_work(self) -> Iterator[None]:
        """Hold the work lock and charge the time spent outside the backend to ``engine_s``."""
        with self._work_lock:
            started = time.perf_counter()
            backend_before = self._stats.backend_s
            try:
                yield
            finally:
                elapsed = time.perf_counter() - started
                with self._stats_lock:
                    self._stats.engine_s += elapsed - (self._stats.backend_s - backend_before)

    def _drain_outbox(self) -> list[FrameResult]:
        results, self._outbox = self._outbox, []
        return results


def _check_frame(frame: np.ndarray, stamp: float, intrinsics: np.ndarray | None) -> None:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        described = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise InputError(f"a frame must be an [H, W, 3] uint8 RGB array, got {described}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise InputError(f"a frame must not be empty, got shape {frame.shape}")
    if not math.isfinite(stamp):
        raise InputError(f"a frame stamp must be finite, got {stamp}")
    if intrinsics is not None and (np.shape(intrinsics) != (3, 3) or not np.all(np.isfinite(intrinsics))):
        problem = "non-finite values" if np.shape(intrinsics) == (3, 3) else f"shape {np.shape(intrinsics)}"
        raise InputError(f"intrinsics must be a finite 3x3 matrix, got {problem}")


def _check_prediction(prediction: WindowPrediction, frames_shape: tuple[int, int, int]) -> None:
    count = frames_shape[0]
    if prediction.probability.shape != frames_shape or prediction.poses.shape != (count, 4, 4):
        raise ValueError(
            f"backend returned probability {prediction.probability.shape} and poses {prediction.poses.shape} "
            f"for {count} frames of {frames_shape[1]}x{frames_shape[2]}"
        )
    if not np.all(np.isfinite(prediction.poses)):
        raise ValueError("backend returned non-finite camera poses")
