# SPDX-License-Identifier: Apache-2.0
"""The interface every motion backend implements, and the options a backend is built from.

One engine, three front doors: the CLI, the streaming engine (and so the ROS node) and the bag
evaluator all build their backend from one ``BackendOptions`` with
:func:`geomotion_core.backends.build_backend`, where the implementations are registered.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from geomotion_core.errors import ConfigError
from geomotion_core.types import WindowPrediction

BACKENDS = ("geomotion", "geometric")
FLOW_METHODS = ("raft", "dis")
PRECISIONS = ("fp32", "bf16", "fp16")
ENGINES = ("torch", "onnxruntime", "tensorrt")  # how the network runs (docs/export.md)


@dataclass
class BackendOptions:
    """Everything needed to build a backend (shared by CLI, node and bag evaluation)."""

    backend: str = "geomotion"
    checkpoint: str | None = None  # GeoMotion best_model.pth, Pi3 model.safetensors or ours
    model_config: str | None = None  # JSON whose "model" object is a GeoMotionConfig dict
    flow: str = "raft"
    raft_weights: str | None = None
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "fp32"
    size: int = 518  # inference size: the square side, or the long side with keep_aspect
    keep_aspect: bool = False  # aspect-preserving multiples of 14 instead of the official square
    allow_random_weights: bool = False  # geomotion without a checkpoint: random init (tests, smoke runs)
    points: bool = False  # also return world points at the input size (costs memory)
    geometric: dict[str, object] = field(default_factory=dict)  # GeometricConfig settings (name -> value)
    engine: str = "torch"  # the network's inference engine: torch | onnxruntime | tensorrt

    def validate(self) -> None:
        """Raise ConfigError on a value outside its allowed set."""
        for name, value, allowed in (
            ("backend", self.backend, BACKENDS),
            ("flow", self.flow, FLOW_METHODS),
            ("precision", self.precision, PRECISIONS),
            ("engine", self.engine, ENGINES),
        ):
            if value not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        if self.size < 14 or self.size % 14:
            raise ConfigError(f"size must be a positive multiple of 14, got {self.size}")
        if self.backend == "geomotion" and self.engine == "onnxruntime" and self.precision != "fp32":
            raise ConfigError(f"engine onnxruntime runs the fp32 graph; precision {self.precision} needs "
                              "engine torch or tensorrt")


class MotionBackend(Protocol):
    """Segments a window of frames into motion probabilities and camera poses."""

    name: str

    def predict_window(
        self,
        frames: np.ndarray,
        frame_ids: Sequence[int] | None = None,
        intrinsics: np.ndarray | None = None,
    ) -> WindowPrediction:
        """Predict a window.

        Args:
            frames: ``[N, H, W, 3]`` uint8 RGB, all of one size.
            frame_ids: stable ids of these frames in the stream; with them a backend may reuse
                per-frame and per-pair work cached from earlier, overlapping windows.
            intrinsics: ``[3, 3]`` camera matrix at the input size, if known.
        Returns:
            The window's prediction at the input size.
        """

    def reset(self) -> None:
        """Forget every cached per-frame / per-pair result (a new stream starts)."""


@runtime_checkable
class NativeSizeBackend(Protocol):
    """A backend that predicts at a size of its own (the network) and can return that size as it is."""

    def predict_window_native(self, frames: np.ndarray, frame_ids: Sequence[int] | None = None) -> WindowPrediction:
        """As ``predict_window``, with the probability at the backend's own size instead of the input size."""
