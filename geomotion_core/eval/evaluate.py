# SPDX-License-Identifier: Apache-2.0
"""Evaluate predictions: in memory, from two folders, or against a benchmark."""
from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from geomotion_core.errors import ConfigError, InputError
from geomotion_core.eval.aggregate import SequenceScores
from geomotion_core.eval.datasets import (
    INSTANCE_SUBFOLDER,
    PREDICTION_SUBFOLDER,
    SequenceFiles,
    SequenceSet,
    benchmark_sequences,
    folder_sequences,
    get_benchmark,
    prediction_files,
)
from geomotion_core.eval.masks import read_labels, read_merged
from geomotion_core.eval.protocols import Protocol, get_protocol, score_sequence
from geomotion_core.eval.report import EvalReport


MaskStack = Sequence[np.ndarray] | np.ndarray


def evaluate_sequences(
    sequences: Mapping[str, tuple[MaskStack, MaskStack]],
    protocol: str | Protocol = "davis",
    pred_threshold: float = 0,
    frames: Mapping[str, Sequence[str]] | None = None,
    workers: int | None = None,
) -> EvalReport:
    """Score in-memory masks: ``{sequence: (predicted masks, GT masks)}``, each ``[T, H, W]``.

    Predictions are boolean, 0/255 or label maps (foreground: value > ``pred_threshold``), or
    object-id maps under ``davis2017-multi``; GT foreground is any label > 0. ``frames`` names
    the frames of a sequence (default ``00000``, ``00001``, ...). Sequences are scored by
    ``workers`` threads (default: one per CPU).
    """
    protocol = get_protocol(protocol)

    def score(item: tuple[str, tuple[MaskStack, MaskStack]]) -> list[SequenceScores]:
        name, (pred, gt) = item
        names = frames.get(name) if frames else None
        return score_sequence(protocol, name, pred, gt, names, pred_threshold)

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        scored = list(pool.map(score, sequences.items()))
    return EvalReport(protocol.name, [unit for units in scored for unit in units], sequences=list(sequences))


def _load_stack(reader, items: Sequence) -> np.ndarray:
    maps = [reader(item) for item in items]
    odd = next((index for index, labels in enumerate(maps) if labels.shape != maps[0].shape), None)
    if odd is not None:
        (height, width), (first_height, first_width) = maps[odd].shape[:2], maps[0].shape[:2]
        raise InputError(f"{_file_names(items[odd])} is {width}x{height} but {_file_names(items[0])} is "
                         f"{first_width}x{first_height}: the frames of one sequence must share one size")
    return np.stack(maps)


def _file_names(item: Path | Sequence[Path]) -> str:
    """A frame's file (or its object files) as plain paths."""
    return ", ".join(map(str, item)) if isinstance(item, (list, tuple)) else str(item)


def _score_files(
    protocol: Protocol, sequence: SequenceFiles, pred_root: Path, pred_threshold: float, extra_allowed: bool
) -> list[SequenceScores]:
    pred_files = prediction_files(
        pred_root, sequence, extra_allowed=extra_allowed, inner_only_allowed=protocol.drop_first_last,
        subfolder=INSTANCE_SUBFOLDER if protocol.multi_object else PREDICTION_SUBFOLDER,
    )
    gt = _load_stack(read_merged, sequence.gt)
    pred = _load_stack(read_labels, pred_files)
    if pred.shape[1:] != gt.shape[1:] and not protocol.easi3r_crop:
        raise InputError(
            f"sequence {sequence.name}: predictions are {pred.shape[2]}x{pred.shape[1]} but the GT is "
            f"{gt.shape[2]}x{gt.shape[1]} ({pred_files[0]})"
        )
    return score_sequence(protocol, sequence.name, pred, gt, sequence.frames, pred_threshold)


def evaluate_set(
    sequence_set: SequenceSet,
    pred_root: str | Path,
    protocol: str | Protocol = "davis",
    pred_threshold: float = 0,
    workers: int | None = None,
    progress: bool = False,
) -> EvalReport:
    """Score the predictions under ``pred_root/<seq>/<frame>.png`` for every sequence of a set.

    Sequences are read and scored by ``workers`` threads (default: one per CPU); decoding,
    NumPy and OpenCV release the GIL, so they run in parallel.
    """
    from tqdm import tqdm

    protocol = get_protocol(protocol)
    if not (math.isfinite(pred_threshold) and 0 <= pred_threshold < 255):
        raise ConfigError(f"pred_threshold must be a grey level in [0, 255), got {pred_threshold}")
    pred_root = Path(pred_root)
    if not pred_root.is_dir():
        raise InputError(f"prediction folder {pred_root} does not exist")

    def score(sequence: SequenceFiles) -> list[SequenceScores]:
        return _score_files(protocol, sequence, pred_root, pred_threshold, sequence_set.annotated_only)

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        results = pool.map(score, sequence_set.sequences)
        scored = list(
            tqdm(results, total=len(sequence_set.sequences), desc="evaluating", unit="seq",
                 disable=None if progress else True)  # None: only on a terminal
        )
    return EvalReport(
        protocol.name,
        [unit for units in scored for unit in units],
        sequences=[s.name for s in sequence_set.sequences],
        benchmark=sequence_set.benchmark,
        sequence_list=sequence_set.sequence_list,
    )


def evaluate_folders(
    gt_root: str | Path,
    pred_root: str | Path,
    protocol: str | Protocol = "davis",
    sequences: Sequence[str] | None = None,
    pred_threshold: float = 0,
    workers: int | None = None,
    progress: bool = False,
) -> EvalReport:
    """Score ``pred_root/<seq>/<frame>.png`` against ``gt_root/<seq>/<frame>.png``.

    Every GT frame needs its prediction and vice versa (InputError otherwise); ``sequences``
    restricts the evaluation to those sequence folders.
    """
    sequence_set = folder_sequences(gt_root, sequences)
    return evaluate_set(sequence_set, pred_root, protocol, pred_threshold, workers, progress)


def evaluate_benchmark(
    benchmark: str,
    data_root: str | Path,
    pred_root: str | Path,
    protocol: str | Protocol | None = None,
    sequence_list: str | None = None,
    sequences: Sequence[str] | None = None,
    pred_threshold: float = 0,
    workers: int | None = None,
    progress: bool = False,
) -> EvalReport:
    """Score predictions against a benchmark (see ``datasets.BENCHMARKS``) under its protocol."""
    sequence_set = benchmark_sequences(benchmark, data_root, sequence_list, sequences)
    chosen = protocol or get_benchmark(benchmark).default_protocol
    return evaluate_set(sequence_set, pred_root, chosen, pred_threshold, workers, progress)
