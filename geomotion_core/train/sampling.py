# SPDX-License-Identifier: Apache-2.0
"""Which frames of a sequence form a clip.

Training clips start at a random frame and are re-drawn every epoch; validation clips are centred.
All randomness comes from a generator seeded by ``(seed, epoch, index)``, so a clip depends only on
those three numbers: the same on every rank and worker, and again after ``--resume``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def clip_rng(seed: int, epoch: int, index: int, attempt: int = 0) -> np.random.Generator:
    """The generator that draws everything random about clip ``index`` of ``epoch`` (``attempt``
    > 0: its replacement after an unreadable clip)."""
    entropy = [seed, epoch, index] + ([attempt] if attempt else [])
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))


@dataclass(frozen=True)
class ClipSampler:
    """Frame indices of clips of ``length`` frames, ``stride`` apart.

    ``stride_multipliers`` scale the stride per clip (drawn uniformly; the official GOT-moving loader
    uses {0.5, 1, 2}). A clip that runs past the end repeats the last frame, as the official loaders do.
    """

    length: int = 12
    stride: int = 1
    stride_multipliers: tuple[float, ...] = (1.0,)

    def _indices(self, num_frames: int, start: int, stride: int) -> np.ndarray:
        return np.minimum(start + stride * np.arange(self.length), num_frames - 1)

    def _max_start(self, num_frames: int, stride: int) -> int:
        return max(0, num_frames - 1 - stride * (self.length - 1))

    def random(self, num_frames: int, rng: np.random.Generator) -> np.ndarray:
        """A training clip: random stride multiplier and random start."""
        multiplier = self.stride_multipliers[int(rng.integers(len(self.stride_multipliers)))]
        stride = max(1, round(self.stride * multiplier))
        start = int(rng.integers(self._max_start(num_frames, stride) + 1))
        return self._indices(num_frames, start, stride)

    def centred(self, num_frames: int) -> np.ndarray:
        """A validation clip: the base stride, centred in the sequence."""
        return self._indices(num_frames, self._max_start(num_frames, self.stride) // 2, self.stride)
