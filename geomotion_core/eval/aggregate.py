# SPDX-License-Identifier: Apache-2.0
"""Statistics of per-frame values: Mean, Recall and Decay, per sequence or pooled over frames.

Per sequence (or object), the official DAVIS statistics of a vector ``v`` of frame values:

* Mean ``nanmean(v)``;
* Recall ``mean(v > 0.5)``, strict, a NaN frame counting as a miss (JR is the J-Recall);
* Decay ``nanmean(bin 0) - nanmean(bin 3)`` with ``ids = round(linspace(1, T, 5) + 1e-10) - 1``
  and ``bin i = v[ids[i] : ids[i+1] + 1]`` (neighbouring bins share their edge frame). The official
  code stores ``ids`` as uint8 and so wraps past 256 frames; here the indices stay correct.

Datasets are summarised two ways: the official mean over sequences (or objects), and the mean
over all frames pooled together (GeoMotion's ``eval.py`` and Easi3R), where Recall is the
fraction of all frames above 0.5 and Decay is undefined.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

RECALL_THRESHOLD = 0.5
DECAY_BINS = 4


def _nanmean(values: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)  # all-NaN or empty -> NaN
        return float(np.nanmean(values)) if values.size else float("nan")


def recall(values: np.ndarray) -> float:
    """Fraction of frames whose value is strictly above 0.5 (NaN frames count as misses)."""
    return float(np.mean(values > RECALL_THRESHOLD)) if values.size else float("nan")


def decay(values: np.ndarray) -> float:
    """Mean of the first quarter of the frames minus the mean of the last quarter (DAVIS bins)."""
    if values.size == 0:
        return float("nan")
    ids = (np.round(np.linspace(1, values.size, DECAY_BINS + 1) + 1e-10) - 1).astype(np.int64)
    first, last = values[ids[0] : ids[1] + 1], values[ids[-2] : ids[-1] + 1]
    return _nanmean(first) - _nanmean(last)


@dataclass(frozen=True)
class Statistics:
    """Mean, Recall and Decay of one metric; Decay is NaN where it is undefined (pooled)."""

    mean: float
    recall: float
    decay: float = float("nan")

    @classmethod
    def of(cls, values: np.ndarray) -> "Statistics":
        """The official per-sequence statistics of a vector of frame values."""
        values = np.asarray(values, dtype=np.float64)
        return cls(_nanmean(values), recall(values), decay(values))

    @classmethod
    def pooled(cls, value_lists: Iterable[np.ndarray]) -> "Statistics":
        """Mean and Recall over all frames of all sequences together (no Decay)."""
        arrays = [np.asarray(values, dtype=np.float64) for values in value_lists]
        values = np.concatenate(arrays) if arrays else np.zeros(0)
        return cls(_nanmean(values), recall(values))

    @classmethod
    def averaged(cls, statistics: Sequence["Statistics"]) -> "Statistics":
        """The mean of per-sequence (or per-object) statistics, ignoring NaN entries."""
        table = np.array([[s.mean, s.recall, s.decay] for s in statistics], dtype=np.float64)
        if table.size == 0:
            return cls(float("nan"), float("nan"))
        return cls(*(_nanmean(column) for column in table.T))


@dataclass(frozen=True)
class Summary:
    """J and F statistics of a sequence, an object or a dataset, and their J&F mean."""

    J: Statistics
    F: Statistics

    @property
    def jf_mean(self) -> float:
        """J&F-Mean = (J-Mean + F-Mean) / 2, taken after aggregation."""
        return (self.J.mean + self.F.mean) / 2

    def to_dict(self, with_decay: bool = True) -> dict[str, float]:
        """Metrics under the official names (``J-Mean``, ..., ``J&F-Mean``)."""
        names: dict[str, float] = {}
        for metric, stats in (("J", self.J), ("F", self.F)):
            names[f"{metric}-Mean"] = stats.mean
            names[f"{metric}-Recall"] = stats.recall
            if with_decay:
                names[f"{metric}-Decay"] = stats.decay
        names["J&F-Mean"] = self.jf_mean
        return names


@dataclass
class SequenceScores:
    """Per-frame J and F of one scored unit: a sequence, or one object of a sequence."""

    name: str  # the sequence name, or ``<sequence>_<k>`` for the k-th matched object
    sequence: str
    frames: list[str]  # names of the scored frames, in order
    J: np.ndarray  # [T] float64
    F: np.ndarray  # [T] float64

    def summary(self) -> Summary:
        """The official per-sequence statistics of this unit."""
        return Summary(Statistics.of(self.J), Statistics.of(self.F))


def mean_summary(units: Sequence[SequenceScores]) -> Summary:
    """The official dataset summary: per-unit statistics averaged over the units."""
    summaries = [unit.summary() for unit in units]
    return Summary(
        Statistics.averaged([s.J for s in summaries]), Statistics.averaged([s.F for s in summaries])
    )


def pooled_summary(units: Sequence[SequenceScores]) -> Summary:
    """The frame-pooled dataset summary: every scored frame of every unit weighs the same."""
    return Summary(Statistics.pooled(u.J for u in units), Statistics.pooled(u.F for u in units))
