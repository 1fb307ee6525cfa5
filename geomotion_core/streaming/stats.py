# SPDX-License-Identifier: Apache-2.0
"""Counters the engine keeps about itself (for diagnostics and summaries)."""
from __future__ import annotations

from dataclasses import dataclass, field

RESET_REASONS = ("requested", "size_change", "stamp_backwards", "backend_error", "frame_error")


@dataclass
class StreamingStats:
    """The engine's counters (``StreamingSegmenter.stats`` returns a copy).

    Every submitted frame ends up in exactly one bucket: ``processed`` (a result was produced),
    ``dropped_stale`` (``latest`` / ``newest`` policies: superseded by newer frames while the engine
    was busy), ``dropped_overflow`` (``every_frame`` policy: the queue was full),
    ``dropped_duplicate`` (same stamp as the frame before), ``dropped_reset`` (discarded by a
    requested reset), ``failed`` (the backend raised on its window, or the frame could not be
    admitted), or still waiting (``queue_depth`` + ``pending``).
    """

    submitted: int = 0
    processed: int = 0
    windows: int = 0
    dropped_stale: int = 0
    dropped_overflow: int = 0
    dropped_duplicate: int = 0
    dropped_reset: int = 0
    failed: int = 0
    resets: dict[str, int] = field(default_factory=dict)  # reason -> count, see RESET_REASONS
    last_reset_reason: str | None = None
    queue_depth: int = 0  # submitted, not yet admitted to a window
    pending: int = 0  # admitted, waiting for the window that finalises them
    last_latency_s: float | None = None  # submission to result, of the newest result
    last_window_s: float | None = None  # backend time of the newest window
    backend_s: float = 0.0  # total time inside the backend
    engine_s: float = 0.0  # total time of the engine's own work (admission, chaining, results)

    @property
    def dropped(self) -> int:
        """Frames that got no result although they were valid input."""
        return self.dropped_stale + self.dropped_overflow + self.dropped_duplicate + self.dropped_reset + self.failed
