# SPDX-License-Identifier: Apache-2.0
"""Result types shared by the backends, the pipeline, the streaming engine and the node."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class WindowPrediction:
    """A backend's output for a window of N frames, at the input frame size.

    ``poses`` are camera-to-world 4x4 transforms (OpenCV optical convention: x right, y down,
    z forward) in the window's own world frame; their scale is arbitrary.
    """

    probability: np.ndarray  # [N, H, W] float32 in [0, 1]: motion probability (or score)
    poses: np.ndarray  # [N, 4, 4] float64 camera-to-world
    points: np.ndarray | None = None  # [N, H, W, 3] float32 world points, if the backend has them
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage, whole window


@dataclass
class FrameResult:
    """The final result for one input frame."""

    index: int  # position in the input stream
    stamp: float  # the input frame's timestamp in seconds (never the processing time)
    mask: np.ndarray  # [H, W] uint8, 0 static / 255 moving, at the input size
    probability: np.ndarray  # [H, W] float32 in [0, 1]
    pose: np.ndarray  # [4, 4] float64 camera-to-world on one continuous trajectory
    points: np.ndarray | None = None  # [H, W, 3] float32 world points
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage for this frame
