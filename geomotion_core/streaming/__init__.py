# SPDX-License-Identifier: Apache-2.0
"""Streaming motion segmentation: overlapping windows over a live stream, one pose trajectory.

``StreamingSegmenter`` is the one engine behind the ROS node, the bag evaluator and
``geomotion segment --streaming``; it has no ROS dependency.
"""
from geomotion_core.streaming.config import POLICIES, StreamingConfig
from geomotion_core.streaming.segmenter import StreamingSegmenter
from geomotion_core.streaming.stats import RESET_REASONS, StreamingStats
from geomotion_core.streaming.stream import segment_stream
from geomotion_core.streaming.trajectory import PoseChain, Similarity, fit_similarity

__all__ = [
    "POLICIES",
    "RESET_REASONS",
    "PoseChain",
    "Similarity",
    "StreamingConfig",
    "StreamingSegmenter",
    "StreamingStats",
    "fit_similarity",
    "segment_stream",
]
