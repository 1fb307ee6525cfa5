"""Map-style clip datasets: probabilistic mixing of training datasets, and validation clips.

Like the official ``ProbabilisticDataset``, item ``i`` of an epoch first draws a dataset with the
configured probabilities, then a sequence of it uniformly, then the clip's frames; an epoch holds as
many clips as the largest dataset has sequences unless ``epoch_length`` says otherwise. Every draw
comes from :func:`clip_rng` ``(seed, epoch, i)``, so any process can rebuild any item.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from geomotion_core.train.datasets import VideoSequence
from geomotion_core.train.sampling import ClipSampler, clip_rng
from geomotion_core.train.transforms import load_clip


@dataclass(frozen=True)
class ClipSource:
    """The sequences of one training dataset, how to sample them, and its mixing weight."""

    sequences: Sequence[VideoSequence]
    sampler: ClipSampler
    probability: float = 1.0


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
    """Training clips drawn anew every epoch (call :meth:`set_epoch`)."""

    def __init__(
        self, sources: Sequence[ClipSource], size: int, crop: str, seed: int, length: int | None = None
    ) -> None:
        weights = np.array([source.probability for source in sources], dtype=np.float64)
        self.sources = list(sources)
        self.probabilities = weights / weights.sum()
        self.size, self.crop, self.seed = size, crop, seed
        self.length = length or max(len(source.sequences) for source in sources)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def draw(self, index: int) -> tuple[VideoSequence, np.ndarray]:
        """The sequence and frame indices of item ``index`` in the current epoch (no I/O)."""
        rng = clip_rng(self.seed, self.epoch, index)
        source = self.sources[int(rng.choice(len(self.sources), p=self.probabilities))]
        sequence = source.sequences[int(rng.integers(len(source.sequences)))]
        return sequence, source.sampler.random(len(sequence), rng)

    def __getitem__(self, index: int) -> dict:
        sequence, indices = self.draw(index)
        return clip_item(sequence, indices, self.size, self.crop)


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
