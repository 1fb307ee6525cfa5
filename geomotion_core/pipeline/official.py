# SPDX-License-Identifier: Apache-2.0
"""The official chunking protocols, streamed over a frame iterator.

- ``official`` (``motion_seg_inference.py``): consecutive, non-overlapping chunks of ``chunk_size``
  frames (the last may be shorter), one network pass each; nothing is shared across chunks.
- ``eval`` (``eval.py``): the sequence is split into 4 interleaved groups (every 4th frame), each
  group in consecutive chunks of ``chunk_size``. Chunk ``c`` of every group lies inside the block
  of frames ``[4 * chunk_size * c, 4 * chunk_size * (c + 1))``, so the sequence is streamed block by
  block: memory is bounded by one block whatever the video length.

Each chunk's poses are expressed in that pass's own world frame; ``Chunk.worlds`` numbers them.

The network's probability is brought to the frame size by the protocol's own function
(``PROTOCOL_RESIZES``, see :mod:`~geomotion_core.pipeline.probability_resize`): ``official``
bilinear on the float map, ``eval`` the official evaluation's 8-bit PIL bilinear resize.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import islice
from typing import Callable, Iterable, Iterator

import numpy as np

from geomotion_core.backend import MotionBackend, NativeSizeBackend
from geomotion_core.io.frames import Frame
from geomotion_core.pipeline.probability_resize import bilinear_resize, official_eval_resize
from geomotion_core.types import WindowPrediction

PROTOCOLS = ("official", "eval")
EVAL_GROUPS = 4
DEFAULT_CHUNK_SIZE = 32
PROTOCOL_THRESHOLDS = {"official": 0.5, "eval": 0.1}
PROTOCOL_RESIZES: dict[str, Callable[[np.ndarray, int, int], np.ndarray]] = {
    "official": bilinear_resize,
    "eval": official_eval_resize,
}


@dataclass
class Chunk:
    """Predictions for consecutive input frames, at the input size."""

    frames: list[Frame]
    probability: np.ndarray  # [N, H, W] float32, resized by the protocol's function
    poses: np.ndarray  # [N, 4, 4] float64 camera-to-world
    worlds: np.ndarray  # [N] int: which network pass (world frame) each pose belongs to
    points: np.ndarray | None = None  # [N, H, W, 3] float32 world points
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage, whole chunk
    native_probability: np.ndarray | None = None  # [N, h, w] float32 at the backend's own size (SAM2's input)

    @property
    def images(self) -> np.ndarray:
        return np.stack([frame.image for frame in self.frames])


def batched(frames: Iterable[Frame], size: int) -> Iterator[list[Frame]]:
    """Consecutive lists of ``size`` frames; the last may be shorter."""
    iterator = iter(frames)
    while block := list(islice(iterator, size)):
        yield block


def predict_native(backend: MotionBackend, images: np.ndarray) -> WindowPrediction:
    """The backend's prediction with the probability at its own size (the input size for most backends)."""
    if isinstance(backend, NativeSizeBackend):
        return backend.predict_window_native(images)
    return backend.predict_window(images)


def official_chunks(backend: MotionBackend, frames: Iterable[Frame], chunk_size: int) -> Iterator[Chunk]:
    """One backend pass per consecutive, non-overlapping chunk."""
    resize = PROTOCOL_RESIZES["official"]
    for world, block in enumerate(batched(frames, chunk_size)):
        images = np.stack([frame.image for frame in block])
        prediction = predict_native(backend, images)
        yield Chunk(
            frames=block,
            probability=resize(prediction.probability, *images.shape[1:3]),
            poses=prediction.poses,
            worlds=np.full(len(block), world),
            points=prediction.points,
            timings=dict(prediction.timings),
            native_probability=prediction.probability,
        )


def eval_chunks(
    backend: MotionBackend, frames: Iterable[Frame], chunk_size: int, groups: int = EVAL_GROUPS
) -> Iterator[Chunk]:
    """The evaluation protocol: per block of ``groups * chunk_size`` frames, one pass per group."""
    for block_index, block in enumerate(batched(frames, groups * chunk_size)):
        images = np.stack([frame.image for frame in block])
        count, height, width = images.shape[:3]
        probability = np.empty((count, height, width), np.float32)
        native_probability = None
        poses = np.empty((count, 4, 4), np.float64)
        worlds = np.empty(count, np.int64)
        points = None
        timings: dict[str, float] = {}
        for group in range(min(groups, count)):
            rows = slice(group, None, groups)
            prediction = predict_native(backend, images[rows])
            probability[rows] = PROTOCOL_RESIZES["eval"](prediction.probability, height, width)
            if native_probability is None:
                native_probability = np.empty((count, *prediction.probability.shape[1:]), np.float32)
            native_probability[rows] = prediction.probability
            poses[rows] = prediction.poses
            worlds[rows] = block_index * groups + group
            if prediction.points is not None:
                if points is None:
                    points = np.empty((count, height, width, 3), np.float32)
                points[rows] = prediction.points
            for stage, seconds in prediction.timings.items():
                timings[stage] = timings.get(stage, 0.0) + seconds
        yield Chunk(block, probability, poses, worlds, points, timings, native_probability)


def protocol_chunks(
    protocol: str, backend: MotionBackend, frames: Iterable[Frame], chunk_size: int
) -> Iterator[Chunk]:
    """Chunks of the named protocol (``official`` or ``eval``)."""
    if protocol == "eval":
        return eval_chunks(backend, frames, chunk_size)
    return official_chunks(backend, frames, chunk_size)
