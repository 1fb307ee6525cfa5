# SPDX-License-Identifier: Apache-2.0
"""Which window finalises which frame: pure bookkeeping over stream positions.

Positions count the frames admitted since the stream (segment) started. Regular windows start at
``0, S, 2S, ...`` and hold ``N`` frames. Each frame is finalised by exactly one window:

* causal: the first window that contains it, i.e. window ``k`` finalises its last ``S`` frames
  (the first window also finalises the ``N - S`` frames before them);
* centred: the window where it is most central, i.e. window ``k`` finalises the ``S`` frames that
  start ``(N - S) // 2`` into it (the first window also finalises the frames before them).

With a look-ahead of ``L`` frames (causal only) every finalised block moves ``L`` frames back: a
frame becomes final once ``L`` later frames are in its window.

Growing windows (policy ``newest``, stride 1): window ``k`` is the last ``min(k + 2, N)`` frames,
so the first result comes with the second frame instead of the ``N``-th.

At the end of a stream a tail window over the last ``N`` frames finalises whatever is left. A tail
that keeps the stream open (after an input gap) lets the next windows continue the trajectory;
they skip the frames the tail already finalised.
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

    def __init__(self, size: int, stride: int, causal: bool, lookahead: int = 0, growing: bool = False) -> None:
        self.size = size
        self.stride = stride
        self.lookahead = lookahead
        self.growing = growing
        self.lead = size - stride - lookahead if causal else (size - stride) // 2  # offset of the finalised block
        self.count = 0  # frames admitted
        self._next_start = 0
        self._next_final = 0

    @property
    def needed(self) -> int:
        """Frames still to admit before the next regular window is complete."""
        if self.growing:
            return max(1, 2 - self.count)
        return max(1, self._next_start + self.size - self.count)

    @property
    def pending(self) -> int:
        """Admitted frames that are not final yet."""
        return self.count - self._next_final

    def admit(self) -> int:
        """Admit one frame; returns its position."""
        self.count += 1
        return self.count - 1

    def next_window(self) -> Window | None:
        """The next regular window if all its frames are admitted and it finalises any, else None."""
        if self.growing:
            return self._next_growing_window()
        while self._next_start + self.size <= self.count:
            start = self._next_start
            final_stop = start + self.lead + self.stride
            self._next_start += self.stride
            if final_stop > self._next_final:  # else an earlier tail already finalised its frames
                window = Window(start, start + self.size, self._next_final, final_stop)
                self._next_final = final_stop
                return window
        return None

    def _next_growing_window(self) -> Window | None:
        final_stop = self.count - self.lookahead
        if self.count < 2 or final_stop <= self._next_final:
            return None
        window = Window(max(0, self.count - self.size), self.count, self._next_final, final_stop)
        self._next_final = final_stop
        return window

    def tail_window(self) -> Window | None:
        """A window over the last frames that finalises every pending frame.

        The caller either ends the stream (``reset``) or keeps it open: later windows then finalise
        only frames admitted after this tail.
        """
        if self.pending == 0:
            return None
        window = Window(max(0, self.count - self.size), self.count, self._next_final, self.count)
        self._next_final = self.count
        return window

    def reset(self) -> None:
        """Start a new stream at position 0."""
        self.count = self._next_start = self._next_final = 0
