# SPDX-License-Identifier: Apache-2.0
"""Export settings shared by the exporter and the command line (no heavy imports: `geomotion --help`)."""
from __future__ import annotations

GRAPH_KINDS = ("split", "whole")  # split: encoder + decoder (streaming token reuse); whole: one graph
MIN_OPSET = 18  # the first opset with an antialiased Resize
DEFAULT_MAX_FRAMES = 64  # largest N of a dynamic graph (TensorRT's optimisation profile)
