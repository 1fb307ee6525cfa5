# SPDX-License-Identifier: Apache-2.0
"""The frames of the current window, kept so any window is one contiguous array without copying."""
from __future__ import annotations

import numpy as np


class FrameRing:
    """The last ``capacity`` frames of one size.

    Every frame is written to two slots, ``p % capacity`` and ``p % capacity + capacity``, so any
    run of at most ``capacity`` consecutive positions is a contiguous slice of the storage: a window
    is handed to the backend as a view, and each frame is copied only when it is admitted.
    """

    def __init__(self, capacity: int, frame_shape: tuple[int, ...]) -> None:
        self.capacity = capacity
        self.frame_shape = frame_shape
        self._storage = np.empty((2 * capacity, *frame_shape), dtype=np.uint8)
        self._count = 0

    def put(self, position: int, frame: np.ndarray) -> None:
        """Store the frame at stream position ``position`` (positions arrive in order)."""
        slot = position % self.capacity
        self._storage[slot] = frame
        self._storage[slot + self.capacity] = frame
        self._count = position + 1

    def view(self, start: int, stop: int) -> np.ndarray:
        """Read-only ``[stop - start, H, W, 3]`` view of positions ``[start, stop)``."""
        if not (self._count - self.capacity <= start < stop <= self._count):
            raise IndexError(f"positions [{start}, {stop}) are not all held (held: up to {self._count})")
        slot = start % self.capacity
        window = self._storage[slot : slot + stop - start]
        window.flags.writeable = False
        return window
