# SPDX-License-Identifier: Apache-2.0
"""Map-style clip datasets: probabilistic mixing of training datasets, and validation clips.

Like the official ``ProbabilisticDataset``, item ``i`` of an epoch first draws a dataset with the
configured probabilities, then a sequence of it uniformly, then the clip's frames, then the
dataset's augmentation (flip, photometric view, synthetic camera sweep); an epoch holds as many
clips as the largest dataset has sequences unless ``epoch_length`` says otherwise. Every draw comes
from :func:`clip_rng` ``(seed, epoch, i)``, so any process can rebuild any item.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from geomotion_core.errors import InputError
from geomotion_core.train.augment import ClipAugmentation, NoAugmentation
from geomotion_core.train.datasets import VideoSequence
from geomotion_core.train.sampling import ClipSampler, clip_rng
from geomotion_core.train.transforms import load_clip

LOGGER = logging.getLogger(__name__)
MAX_ATTEMPTS = 8  # replacement draws for an unreadable clip before the run stops


@dataclass(frozen=True)
class ClipSource:
    """The sequences of one training dataset, how to sample and augment them, and its mixing weight."""

    sequences: Sequence[VideoSequence]
    sampler: ClipSampler
    probability: float = 1.0
    augment: ClipAugmentation = NoAugmentation()


def clip_item(sequence: VideoSequence, indices: np.ndarray, size: int, crop: str) -> dict:
    """One clip as a training sample: ``frames`` ``[N,S,S,3]`` uint8, ``masks`` ``[N,S,S]`` uint8
    (0/1), ``sequence`` (its key) and ``frame_ids`` ``[N]`` (positions in the sequence)."""
    frames, masks = load_clip(
        [sequence.frames[i] for i in indices], [sequence.masks[i] for i in indices], size, crop
    )
    return {
        "frames": torch.from_numpy(frames),
        "masks": torch.from_numpy(masks.astype(np.uint8)),
        "sequence": sequence.key,
        "frame_ids": torch.from_numpy(indices.astype(np.int64)),
    }


class MixedClipDataset(Dataset):
    """Training clips drawn anew every epoch (call :meth:`set_epoch`), augmented by their source.

    Besides :func:`clip_item`'s keys, an item holds ``flipped`` and ``camera_only`` (bool tensors:
    mirrored frames; a synthetic stop view, whose flow no cache holds) and, with ``keep_source``,
    ``source_frames``: the frames before augmentation, from which a flow cache is filled.
    A clip whose files cannot be read is logged and replaced by another draw (the same on every
    run, so resuming stays exact); the item's ``skipped`` counts the replaced clips.
    """

    def __init__(
        self,
        sources: Sequence[ClipSource],
        size: int,
        crop: str,
        seed: int,
        length: int | None = None,
        keep_source: bool = False,
    ) -> None:
        weights = np.array([source.probability for source in sources], dtype=np.float64)
        self.sources = list(sources)
        self.probabilities = weights / weights.sum()
        self.size, self.crop, self.seed = size, crop, seed
        self.length = length or max(len(source.sequences) for source in sources)
        self.keep_source = keep_source
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def draw(self, index: int, attempt: int = 0) -> tuple[VideoSequence, np.ndarray]:
        """The sequence and frame indices of item ``index`` in the current epoch (no I/O)."""
        _, sequence, indices = self._draw(clip_rng(self.seed, self.epoch, index, attempt))
        return sequence, indices

    def _draw(self, rng: np.random.Generator) -> tuple[ClipSource, VideoSequence, np.ndarray]:
        source = self.sources[int(rng.choice(len(self.sources), p=self.probabilities))]
        sequence = source.sequences[int(rng.integers(len(source.sequences)))]
        return source, sequence, source.sampler.random(len(sequence), rng)

    def __getitem__(self, index: int) -> dict:
        error = None
        for attempt in range(MAX_ATTEMPTS):
            rng = clip_rng(self.seed, self.epoch, index, attempt)  # the clip draws, then the augmentation's
            source, sequence, indices = self._draw(rng)
            try:
                item = clip_item(sequence, indices, self.size, self.crop)
            except InputError as exc:
                LOGGER.warning("skipped an unreadable clip of %s: %s", sequence.key, exc)
                error = exc
                continue
            frames, masks, plan = source.augment(item["frames"], item["masks"], rng)
            if self.keep_source:
                item["source_frames"] = item["frames"]
            return {
                **item,
                "frames": frames,
                "masks": masks,
                "flipped": torch.tensor(plan.flip),
                "camera_only": torch.tensor(plan.camera_only),
                "skipped": attempt,
            }
        raise InputError(f"{MAX_ATTEMPTS} clips in a row could not be read, the last: {error}")


class ValidationClips(Dataset):
    """One centred clip per sequence of every validation source."""

    def __init__(self, sources: Sequence[ClipSource], size: int, crop: str) -> None:
        self.clips = [(sequence, source.sampler) for source in sources for sequence in source.sequences]
        self.size, self.crop = size, crop

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict:
        sequence, sampler = self.clips[index]
        return clip_item(sequence, sampler.centred(len(sequence)), self.size, self.crop)
