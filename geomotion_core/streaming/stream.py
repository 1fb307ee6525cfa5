# SPDX-License-Identifier: Apache-2.0
"""Streaming segmentation of a finite frame sequence (the CLI's ``segment --streaming``)."""
from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

from geomotion_core.backend import MotionBackend
from geomotion_core.streaming.config import StreamingConfig
from geomotion_core.streaming.segmenter import StreamingSegmenter
from geomotion_core.types import FrameResult


def segment_stream(
    frames: Iterable[tuple[np.ndarray, float]],
    backend: MotionBackend,
    config: StreamingConfig,
    intrinsics: np.ndarray | None = None,
) -> Iterator[FrameResult]:
    """Results for ``(frame [H, W, 3] uint8 RGB, stamp)`` pairs, each as soon as it is final.

    Frames are consumed lazily, so memory stays bounded for any stream length. To read the
    engine's counters afterwards, build a ``StreamingSegmenter`` and use its ``stream`` method.
    """
    return StreamingSegmenter(backend, config).stream(frames, intrinsics)
