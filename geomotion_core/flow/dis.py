# SPDX-License-Identifier: Apache-2.0
"""OpenCV DIS optical flow: weight-free, CPU only.

``DISFlow`` is the NumPy entry point used on hot paths (uint8 grayscale in, ``[H, W, 2]`` float32
out); ``DISFlowEstimator`` wraps it behind the torch ``FlowEstimator`` interface.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from geomotion_core.errors import ConfigError, InputError
from geomotion_core.flow.base import FlowEstimator

OPENCV_MIN_SIDE = 12  # OpenCV's DIS refuses frames smaller than this
PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


@dataclass(frozen=True)
class DISConfig:
    """DIS settings: an OpenCV preset, optionally run on downscaled frames, with explicit
    parameters that override the preset's where set (None keeps the preset's value).

    ``scale`` < 1 computes the flow on frames resized by that factor (INTER_AREA); the flow is
    returned at that reduced size, in pixels of the reduced size, by ``DISFlow.__call__``.
    OpenCV's presets: ``medium`` finest scale 1, patch 8, stride 3, 25 descent and 5 refinement
    iterations; ``fast`` 2, 8, 4, 16, 5; ``ultrafast`` 2, 8, 4, 12, 0.
    """

    preset: str = "medium"
    scale: float = 1.0
    finest_scale: int | None = None  # pyramid level the flow is estimated at (0 full size, 1 half...)
    patch_size: int | None = None  # side of the square patches (pixels of that level)
    patch_stride: int | None = None  # distance between neighbouring patches
    descent_iterations: int | None = None  # gradient-descent iterations of each patch's search
    refinement_iterations: int | None = None  # variational-refinement iterations per level (0: off)

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ConfigError(f"DIS preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        if not 0.0 < self.scale <= 1.0:
            raise ConfigError(f"DIS scale must be in (0, 1], got {self.scale}")
        lowest = {"finest_scale": 0, "patch_size": 4, "patch_stride": 1, "descent_iterations": 1, "refinement_iterations": 0}
        for name, low in lowest.items():
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
                raise ConfigError(f"DIS {name} must be None or an integer >= {low}, got {value!r}")
        if self.patch_size is not None and self.patch_stride is not None and self.patch_stride > self.patch_size:
            raise ConfigError(f"DIS patch_stride ({self.patch_stride}) must not exceed patch_size ({self.patch_size})")

    def create(self) -> cv2.DISOpticalFlow:
        """A new OpenCV DIS instance: the preset with the explicit parameters applied."""
        dis = cv2.DISOpticalFlow_create(PRESETS[self.preset])
        setters = (
            (self.finest_scale, dis.setFinestScale),
            (self.patch_size, dis.setPatchSize),
            (self.patch_stride, dis.setPatchStride),
            (self.descent_iterations, dis.setGradientDescentIterations),
            (self.refinement_iterations, dis.setVariationalRefinementIterations),
        )
        for value, setter in setters:
            if value is not None:
                setter(value)
        return dis


class DISFlow:
    """Dense flow between two grayscale frames with one reusable OpenCV DIS instance.

    Not thread-safe: give each thread its own instance.
    """

    def __init__(self, config: DISConfig | None = None) -> None:
        self.config = config or DISConfig()
        self._dis = self.config.create()
        # OpenCV crashes (segmentation fault) when the finest pyramid level is coarser than the
        # coarsest one it can build, i.e. when the short side is below patch size * 2^finest scale.
        self.min_side = max(OPENCV_MIN_SIDE, self._dis.getPatchSize() << self._dis.getFinestScale())

    def prepare(self, rgb: np.ndarray) -> np.ndarray:
        """``[H, W, 3]`` uint8 RGB -> the uint8 grayscale frame DIS works on (resized by ``scale``)."""
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if self.config.scale == 1.0:
            return gray
        size = working_size(gray.shape[1], gray.shape[0], self.config.scale)
        return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)

    def __call__(self, gray_a: np.ndarray, gray_b: np.ndarray) -> np.ndarray:
        """Flow ``[H, W, 2]`` float32 (u, v) from ``gray_a`` to ``gray_b`` (uint8, one size)."""
        if gray_a.shape != gray_b.shape or gray_a.ndim != 2 or gray_a.dtype != np.uint8:
            raise InputError(f"DIS needs two uint8 grayscale frames of one size, got {gray_a.shape} and {gray_b.shape}")
        if min(gray_a.shape) < self.min_side:
            raise InputError(f"frames of {gray_a.shape[1]}x{gray_a.shape[0]} pixels are too small for DIS optical flow "
                             f"(at least {self.min_side} pixels a side where the flow is computed)")
        return self._dis.calc(gray_a, gray_b, None)


def working_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """``(width, height)`` of a frame resized by ``scale`` (at least 8 pixels a side)."""
    return max(8, round(width * scale)), max(8, round(height * scale))


def dis_flow(gray_a: np.ndarray, gray_b: np.ndarray, preset: str = "medium") -> np.ndarray:
    """One-off DIS flow ``[H, W, 2]`` float32 between two uint8 grayscale frames."""
    return DISFlow(DISConfig(preset=preset))(gray_a, gray_b)


class DISFlowEstimator(FlowEstimator):
    """``FlowEstimator`` over OpenCV DIS; pairs run one after another on the CPU.

    With ``scale`` < 1 the flow is computed on downscaled frames, then resized back and its
    vectors rescaled to pixels of the input size.
    """

    name = "dis"

    def __init__(self, preset: str = "medium", scale: float = 1.0) -> None:
        self._flow = DISFlow(DISConfig(preset=preset, scale=scale))

    def flow(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if source.shape != target.shape or source.ndim != 4 or source.shape[1] != 3:
            raise InputError(f"flow needs two [P, 3, H, W] batches of one shape, got {tuple(source.shape)} and {tuple(target.shape)}")
        height, width = source.shape[-2:]
        sources, targets = (_to_uint8_rgb(batch) for batch in (source, target))
        fields = np.stack([
            self._full_size(self._flow(self._flow.prepare(a), self._flow.prepare(b)), width, height)
            for a, b in zip(sources, targets)
        ])
        return torch.from_numpy(fields).permute(0, 3, 1, 2).to(device=source.device).contiguous()

    def _full_size(self, field: np.ndarray, width: int, height: int) -> np.ndarray:
        if field.shape[:2] == (height, width):
            return field
        resized = cv2.resize(field, (width, height), interpolation=cv2.INTER_LINEAR)
        resized *= np.array([width / field.shape[1], height / field.shape[0]], dtype=np.float32)
        return resized


def _to_uint8_rgb(batch: torch.Tensor) -> np.ndarray:
    """``[P, 3, H, W]`` float RGB in [0, 1] -> ``[P, H, W, 3]`` uint8."""
    scaled = (batch.detach().float().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    return scaled.permute(0, 2, 3, 1).cpu().numpy()
