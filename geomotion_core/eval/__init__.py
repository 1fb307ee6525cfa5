# SPDX-License-Identifier: Apache-2.0
"""Evaluation equal to the official toolkits: per-frame J and F, statistics, protocols,
benchmark readers and reports (see ``docs/evaluation.md``)."""
from geomotion_core.eval.aggregate import SequenceScores, Statistics, Summary
from geomotion_core.eval.datasets import BENCHMARKS, benchmark_sequences, folder_sequences
from geomotion_core.eval.evaluate import evaluate_benchmark, evaluate_folders, evaluate_sequences, evaluate_set
from geomotion_core.eval.masks import binarize_probability
from geomotion_core.eval.metrics import batch_scores, frame_scores
from geomotion_core.eval.protocols import PROTOCOLS, score_sequence
from geomotion_core.eval.report import EvalReport

__all__ = [
    "BENCHMARKS",
    "PROTOCOLS",
    "EvalReport",
    "SequenceScores",
    "Statistics",
    "Summary",
    "batch_scores",
    "benchmark_sequences",
    "binarize_probability",
    "evaluate_benchmark",
    "evaluate_folders",
    "evaluate_sequences",
    "evaluate_set",
    "folder_sequences",
    "frame_scores",
    "score_sequence",
]
