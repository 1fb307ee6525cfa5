# SPDX-License-Identifier: Apache-2.0
"""Pipeline health: input and processed rates, latency percentiles, drops -> DiagnosticStatus."""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

RATE_WINDOW_S = 5.0  # rates are averaged over the last few seconds
LATENCY_SAMPLES = 256


@dataclass(frozen=True)
class PipelineSnapshot:
    """What /diagnostics reports, at one moment."""

    input_rate_hz: float
    processed_rate_hz: float
    latency_p50_ms: float
    latency_p95_ms: float
    received: int
    processed: int
    rejected: int
    dropped: int
    queue_depth: int
    resets: int
    errors: int
    camera_infos_ignored: int = 0
    trajectory_restarts: int = 0
    last_restart: str = ""


class PipelineMonitor:
    """Thread-safe counters fed by the image callback and the inference worker.

    Latency is measured from the image's arrival to the publication of its mask (monotonic
    clock, so it is right under sim time too).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._arrivals: deque[float] = deque()
        self._publications: deque[float] = deque()
        self._latencies: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self.received = self.processed = self.rejected = self.errors = self.camera_infos_ignored = 0
        self.restarts: dict[str, int] = {}
        self.last_restart = ""

    def frame_received(self, now: float) -> None:
        with self._lock:
            self.received += 1
            self._arrivals.append(now)

    def frame_rejected(self) -> None:
        with self._lock:
            self.rejected += 1

    def frame_published(self, arrival: float, now: float) -> None:
        with self._lock:
            self.processed += 1
            self._publications.append(now)
            self._latencies.append(now - arrival)

    def inference_failed(self) -> None:
        with self._lock:
            self.errors += 1

    def camera_info_ignored(self) -> None:
        with self._lock:
            self.camera_infos_ignored += 1

    def trajectory_restarted(self, cause: str) -> None:
        with self._lock:
            self.restarts[cause] = self.restarts.get(cause, 0) + 1
            self.last_restart = cause

    def snapshot(self, dropped: int, queue_depth: int, resets: int, now: float | None = None) -> PipelineSnapshot:
        """Rates over the last ``RATE_WINDOW_S`` seconds and latency percentiles of recent frames."""
        now = time.monotonic() if now is None else now
        with self._lock:
            for times in (self._arrivals, self._publications):
                while times and times[0] < now - RATE_WINDOW_S:
                    times.popleft()
            latencies = np.asarray(self._latencies) * 1000.0
            p50, p95 = np.percentile(latencies, [50, 95]) if latencies.size else (float("nan"), float("nan"))
            return PipelineSnapshot(
                input_rate_hz=len(self._arrivals) / RATE_WINDOW_S,
                processed_rate_hz=len(self._publications) / RATE_WINDOW_S,
                latency_p50_ms=float(p50),
                latency_p95_ms=float(p95),
                received=self.received,
                processed=self.processed,
                rejected=self.rejected,
                dropped=dropped,
                queue_depth=queue_depth,
                resets=resets,
                errors=self.errors,
                camera_infos_ignored=self.camera_infos_ignored,
                trajectory_restarts=sum(self.restarts.values()),
                last_restart=self.last_restart,
            )


def pipeline_status(
    name: str,
    snapshot: PipelineSnapshot,
    device: str,
    window: str,
    active: bool,
    drops_expected: bool,
    input_problem: str | None = None,
    inputs: str = "",
    window_ms: float = float("nan"),
) -> DiagnosticStatus:
    """One DiagnosticStatus with every counter.

    ERROR while not active; WARN while ``input_problem`` (e.g. no image for a while), after
    inference errors or rejected images, and after drops when the policy should not drop
    (``every_frame``); OK otherwise (``latest`` and ``newest`` skip frames by design).
    ``window_ms`` is the mean backend time per window (with ``newest``: per processed frame).
    """
    if not active:
        level, message = DiagnosticStatus.ERROR, "not active"
    elif input_problem:
        level, message = DiagnosticStatus.WARN, input_problem
    elif snapshot.errors or snapshot.rejected:
        level = DiagnosticStatus.WARN
        message = f"{snapshot.errors} inference errors, {snapshot.rejected} rejected images"
    elif snapshot.dropped and not drops_expected:
        level, message = DiagnosticStatus.WARN, f"{snapshot.dropped} frames dropped"
    elif snapshot.dropped:
        level, message = DiagnosticStatus.OK, f"running; {snapshot.dropped} stale frames skipped"
    else:
        level, message = DiagnosticStatus.OK, "running"
    values = {
        "input_rate_hz": f"{snapshot.input_rate_hz:.2f}",
        "processed_rate_hz": f"{snapshot.processed_rate_hz:.2f}",
        "latency_p50_ms": f"{snapshot.latency_p50_ms:.1f}",
        "latency_p95_ms": f"{snapshot.latency_p95_ms:.1f}",
        "frames_received": str(snapshot.received),
        "frames_processed": str(snapshot.processed),
        "frames_dropped": str(snapshot.dropped),
        "frames_rejected": str(snapshot.rejected),
        "queue_depth": str(snapshot.queue_depth),
        "stream_resets": str(snapshot.resets),
        "inference_errors": str(snapshot.errors),
        "camera_infos_ignored": str(snapshot.camera_infos_ignored),
        "trajectory_restarts": str(snapshot.trajectory_restarts),
        "last_restart_cause": snapshot.last_restart,
        "window_compute_ms": f"{window_ms:.1f}",
        "device": device,
        "window": window,
        "input_topics": inputs,
    }
    return DiagnosticStatus(
        level=level,
        name=name,
        message=message,
        hardware_id=device,
        values=[KeyValue(key=key, value=value) for key, value in values.items()],
    )
