"""The official chunking protocols, streamed over a frame iterator.

- ``official`` (``motion_seg_inference.py``): consecutive, non-overlapping chunks of ``chunk_size``
  frames (the last may be shorter), one network pass each; nothing is shared across chunks.
- ``eval`` (``eval.py``): the sequence is split into 4 interleaved groups (every 4th frame), each
  group in consecutive chunks of ``chunk_size``. Chunk ``c`` of every group lies inside the block
  of frames ``[4 * chunk_size * c, 4 * chunk_size * (c + 1))``, so the sequence is streamed block by
  block: memory is bounded by one block whatever the video length.

Each chunk's poses are expressed in that pass's own world frame; ``Chunk.worlds`` numbers them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import islice
from typing import Iterable, Iterator

import numpy as np

from geomotion_core.backend import MotionBackend
from geomotion_core.io.frames import Frame

PROTOCOLS = ("official", "eval")
EVAL_GROUPS = 4
DEFAULT_CHUNK_SIZE = 32
PROTOCOL_THRESHOLDS = {"official": 0.5, "eval": 0.1}


@dataclass
class Chunk:
    """Predictions for consecutive input frames, at the input size."""

    frames: list[Frame]
    probability: np.ndarray  # [N, H, W] float32
    poses: np.ndarray  # [N, 4, 4] float64 camera-to-world
    worlds: np.ndarray  # [N] int: which network pass (world frame) each pose belongs to
    points: np.ndarray | None = None  # [N, H, W, 3] float32 world points
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage, whole chunk

    @property
    def images(self) -> np.ndarray:
        return np.stack([frame.image for frame in self.frames])


def batched(frames: Iterable[Frame], size: int) -> Iterator[list[Frame]]:
    """Consecutive lists of ``size`` frames; the last may be shorter."""
    iterator = iter(frames)
    while block := list(islice(iterator, size)):
        yield block


def official_chunks(backend: MotionBackend, frames: Iterable[Frame], chunk_size: int) -> Iterator[Chunk]:
    """One backend pass per consecutive, non-overlapping chunk."""
    for world, block in enumerate(batched(frames, chunk_size)):
        prediction = backend.predict_window(np.stack([frame.image for frame in block]))
        yield Chunk(
            frames=block,
            probability=prediction.probability,
            poses=prediction.poses,
            worlds=np.full(len(block), world),
            points=prediction.points,
            timings=dict(prediction.timings),
        )


def eval_chunks(
    backend: MotionBackend, frames: Iterable[Frame], chunk_size: int, groups: int = EVAL_GROUPS
) -> Iterator[Chunk]:
    """The evaluation protocol: per block of ``groups * chunk_size`` frames, one pass per group."""
    for block_index, block in enumerate(batched(frames, groups * chunk_size)):
        images = np.stack([frame.image for frame in block])
        count, height, width = images.shape[:3]
        probability = np.empty((count, height, width), np.float32)
        poses = np.empty((count, 4, 4), np.float64)
        worlds = np.empty(count, np.int64)
        points = None
        timings: dict[str, float] = {}
        for group in range(min(groups, count)):
            rows = slice(group, None, groups)
            prediction = backend.predict_window(images[rows])
            probability[rows] = prediction.probability
            poses[rows] = prediction.poses
            worlds[rows] = block_index * groups + group
            if prediction.points is not None:
                if points is None:
                    points = np.empty((count, height, width, 3), np.float32)
                points[rows] = prediction.points
            for stage, seconds in prediction.timings.items():
                timings[stage] = timings.get(stage, 0.0) + seconds
        yield Chunk(block, probability, poses, worlds, points, timings)


def protocol_chunks(
    protocol: str, backend: MotionBackend, frames: Iterable[Frame], chunk_size: int
) -> Iterator[Chunk]:
    """Chunks of the named protocol (``official`` or ``eval``)."""
    if protocol == "eval":
        return eval_chunks(backend, frames, chunk_size)
    return official_chunks(backend, frames, chunk_size)
