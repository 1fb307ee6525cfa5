"""Which window finalises which frame: pure bookkeeping over stream positions.

Positions count the frames admitted since the stream (segment) started. Regular windows start at
``0, S, 2S, ...`` and hold ``N`` frames. Each frame is finalised by exactly one window:

* causal: the first window that contains it, i.e. window ``k`` finalises its last ``S`` frames
  (the first window also finalises the ``N - S`` frames before them);
* centred: the window where it is most central, i.e. window ``k`` finalises the ``S`` frames that
  start ``(N - S) // 2`` into it (the first window also finalises the frames before them).

At the end of a stream a tail window over the last ``N`` frames finalises whatever is left.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    """Frames ``[start, stop)`` go to the backend; frames ``[final_start, final_stop)`` become final."""

    start: int
    stop: int
    final_start: int
    final_stop: int


class WindowPlanner:
    """Tracks admitted frames and hands out windows as they become complete."""

    def __init__(self, size: int, stride: int, causal: bool) -> None:
        self.size = size
        self.stride = stride
        self.lead = size - stride if causal else (size - stride) // 2  # offset of the finalised block
        self.count = 0  # frames admitted
        self._next_start = 0
        self._next_final = 0

    @property
    def needed(self) -> int:
        """Frames still to admit before the next regular window is complete."""
        return self._next_start + self.size - self.count

    @property
    def pending(self) -> int:
        """Admitted frames that are not final yet."""
        return self.count - self._next_final

    def admit(self) -> int:
        """Admit one frame; returns its position."""
        self.count += 1
        return self.count - 1

    def next_window(self) -> Window | None:
        """The next regular window if all its frames are admitted, else None."""
        if self.needed > 0:
            return None
        start = self._next_start
        window = Window(start, start + self.size, self._next_final, start + self.lead + self.stride)
        self._next_start += self.stride
        self._next_final = window.final_stop
        return window

    def tail_window(self) -> Window | None:
        """A window over the last frames that finalises every pending frame; the stream then ends."""
        if self.pending == 0:
            return None
        window = Window(max(0, self.count - self.size), self.count, self._next_final, self.count)
        self._next_final = self.count
        return window

    def reset(self) -> None:
        """Start a new stream at position 0."""
        self.count = self._next_start = self._next_final = 0
