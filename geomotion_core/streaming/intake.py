# SPDX-License-Identifier: Apache-2.0
"""The thread-safe, bounded hand-over from the frame producer to the worker."""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class QueuedFrame:
    """A submitted frame waiting for the worker."""

    index: int  # position in the input stream (every submitted frame counts)
    stamp: float
    image: np.ndarray  # [H, W, 3] uint8, held by reference until admitted
    intrinsics: np.ndarray | None
    arrival: float  # time.monotonic() at submission


@dataclass(frozen=True)
class IntakeCounts:
    """The intake's counters at one moment."""

    submitted: int
    dropped_stale: int
    dropped_overflow: int
    depth: int


class FrameIntake:
    """A bounded FIFO that never blocks the producer.

    With ``keep_latest`` a full queue evicts its oldest frame and the worker takes only the newest
    frames it needs (the others are stale and counted as dropped by policy); without it a full
    queue refuses the new frame (counted as an overflow) so that no admitted frame is skipped.
    """

    def __init__(self, capacity: int, keep_latest: bool) -> None:
        self.capacity = capacity
        self.keep_latest = keep_latest
        self._items: deque[QueuedFrame] = deque()
        self._changed = threading.Condition()
        self._submitted = 0
        self._dropped_stale = 0
        self._dropped_overflow = 0

    def put(self, image: np.ndarray, stamp: float, intrinsics: np.ndarray | None) -> QueuedFrame | None:
        """Queue a frame; returns it, or None when it was refused because the queue is full."""
        with self._changed:
            item = QueuedFrame(self._submitted, stamp, image, intrinsics, time.monotonic())
            self._submitted += 1
            if len(self._items) >= self.capacity:
                if not self.keep_latest:
                    self._dropped_overflow += 1
                    return None
                self._items.popleft()
                self._dropped_stale += 1
            self._items.append(item)
            self._changed.notify_all()
            return item

    def take(self, count: int) -> list[QueuedFrame]:
        """Remove ``count`` frames in arrival order, or none if fewer are queued.

        With ``keep_latest`` these are the newest ``count`` frames and older ones are dropped.
        """
        with self._changed:
            if len(self._items) < count:
                return []
            if self.keep_latest:
                stale = len(self._items) - count
                for _ in range(stale):
                    self._items.popleft()
                self._dropped_stale += stale
            return [self._items.popleft() for _ in range(count)]

    def take_all(self) -> list[QueuedFrame]:
        """Remove every queued frame, in arrival order."""
        with self._changed:
            items = list(self._items)
            self._items.clear()
            return items

    def restore(self, items: list[QueuedFrame]) -> None:
        """Put frames taken but not used back at the front of the queue, in order."""
        with self._changed:
            self._items.extendleft(reversed(items))
            self._changed.notify_all()

    def wait(self, count: int, timeout: float | None) -> bool:
        """Block until at least ``count`` frames are queued; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self._items) >= count, timeout)

    def counts(self) -> IntakeCounts:
        with self._changed:
            return IntakeCounts(self._submitted, self._dropped_stale, self._dropped_overflow, len(self._items))
