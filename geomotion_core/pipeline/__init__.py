# SPDX-License-Identifier: Apache-2.0
"""Offline segmentation of videos and frame folders: the official protocols, outputs, summary."""
from geomotion_core.pipeline.segment import SegmentOptions, SegmentSummary, segment_to_folder

__all__ = ["SegmentOptions", "SegmentSummary", "segment_to_folder"]
