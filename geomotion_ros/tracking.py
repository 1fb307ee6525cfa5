# SPDX-License-Identifier: Apache-2.0
"""The node's record of frames handed to the engine, so each result gets its input's header back.

The engine numbers every submitted frame in order (``FrameResult.index``) and returns results in
that order, so a result for index ``i`` also settles every frame before ``i`` (dropped by policy or
finished). Only the headers are kept for every waiting frame; the RGB arrays (needed for the
overlay) only for the newest ``image_slots`` frames, so a stalled backend cannot hold more memory.
"""
from __future__ import annotations

import threading
from collections import OrderedDict, deque
from dataclasses import dataclass

import numpy as np
from std_msgs.msg import Header

MAX_TRACKED = 4096  # headers kept at most (a stalled engine drops older frames itself)


@dataclass
class TrackedFrame:
    """What the node keeps about a frame until its result is published."""

    header: Header
    rgb: np.ndarray | None  # None once the slot was given to a newer frame
    arrival: float  # monotonic time the message arrived
    epoch: int  # stream number: a size change, stamp jump back, reset or end starts a new one


class FrameTracker:
    """Thread-safe, bounded map from engine frame index to the frame's header and image."""

    def __init__(self, image_slots: int) -> None:
        self.image_slots = image_slots
        self._lock = threading.Lock()
        self._frames: OrderedDict[int, TrackedFrame] = OrderedDict()
        self._with_image: deque[int] = deque()
        self._next_index = 0

    def add(self, frame: TrackedFrame) -> int:
        """Record the next frame to submit; returns the index the engine will give it."""
        with self._lock:
            index = self._next_index
            self._next_index += 1
            self._frames[index] = frame
            self._with_image.append(index)
            while len(self._with_image) > self.image_slots:
                released = self._frames.get(self._with_image.popleft())
                if released is not None:
                    released.rgb = None
            while len(self._frames) > MAX_TRACKED:
                self._frames.popitem(last=False)
            return index

    def withdraw(self, index: int, counted: bool) -> None:
        """Forget a frame the engine refused; ``counted=False`` when it did not number it either."""
        with self._lock:
            self._frames.pop(index, None)
            if not counted and index == self._next_index - 1:
                self._next_index -= 1

    def take(self, index: int) -> TrackedFrame | None:
        """Remove and return the frame ``index``, forgetting every earlier one."""
        with self._lock:
            while self._frames and next(iter(self._frames)) < index:
                self._frames.popitem(last=False)
            return self._frames.pop(index, None)

    @property
    def images_held(self) -> int:
        """How many waiting frames still hold their image."""
        with self._lock:
            return sum(frame.rgb is not None for frame in self._frames.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._frames)
