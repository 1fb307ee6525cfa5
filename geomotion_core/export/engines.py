# SPDX-License-Identifier: Apache-2.0
"""The inference engines of the network: ``torch`` (eager or compiled), ``onnxruntime``, ``tensorrt``.

Each engine offers the model's ``encode`` / ``decode`` API, so the backend's per-frame token cache
works with all of them: the exported engines run an encoder graph and a decoder graph.
"""
from __future__ import annotations

from typing import Sequence

import torch

from geomotion_core.backend import ENGINES
from geomotion_core.errors import ConfigError
from geomotion_core.export.onnx_export import DEFAULT_MAX_FRAMES, ExportSpec
from geomotion_core.export.store import ExportStore
from geomotion_core.model import GeoMotion
from geomotion_core.model.geomotion import GeoMotionOutput

__all__ = ["ENGINES", "CompiledNetwork", "ExportedNetwork"]


class ExportedNetwork:
    """The network through exported graphs (``onnxruntime`` or ``tensorrt``), one export per input size.

    The PyTorch model stays on the CPU to export a size the first time it is needed (or at
    :meth:`prepare`); exports and engines are cached on disk by :class:`ExportStore`.
    """

    def __init__(
        self,
        engine: str,
        model: GeoMotion,
        weights: str | None,
        device: torch.device,
        precision: str = "fp32",
        store: ExportStore | None = None,
        max_frames: int = DEFAULT_MAX_FRAMES,
    ) -> None:
        if engine not in ENGINES[1:]:
            raise ConfigError(f"exported engine must be onnxruntime or tensorrt, got {engine!r}")
        self.engine = engine
        self.model = model.cpu().eval()
        self.weights = weights
        self.device = device
        self.precision = precision
        self.store = store or ExportStore()
        self.max_frames = max_frames
        self._runners: dict[tuple[int, int], object] = {}

    def prepare(self, image_size: Sequence[int]):
        """The runner of one input size: exported (or found in the cache) and loaded."""
        size = (int(image_size[0]), int(image_size[1]))
        runner = self._runners.get(size)
        if runner is None:
            spec = ExportSpec(*size, frames=None, max_frames=self.max_frames)
            folder = self.store.folder(self.model, self.weights, spec)
            if self.engine == "onnxruntime":
                from geomotion_core.export.onnx_runtime import OnnxRuntimeNetwork

                runner = OnnxRuntimeNetwork(folder, self.device)
            else:
                from geomotion_core.export.tensorrt_engine import TensorRtNetwork

                runner = TensorRtNetwork(folder, self.device, self.precision)
            self._runners[size] = runner
        return runner

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.prepare(images.shape[-2:]).encode(images)

    def decode(self, tokens: torch.Tensor, flow_magnitude: torch.Tensor, image_size: Sequence[int]) -> GeoMotionOutput:
        return self.prepare(image_size).decode(tokens, flow_magnitude, image_size)

    def close(self) -> None:
        self.store.close()


class CompiledNetwork:
    """``model.encode`` / ``model.decode`` through ``torch.compile``, one static graph per frame count.

    ``backend``: torch.compile's backend (``inductor``; ``eager`` only traces, for checks).

    ``mode="reduce-overhead"`` (CUDA) replays CUDA graphs, removing the per-kernel launch cost that
    dominates small windows; the replay reuses its output memory, so outputs are cloned.
    """

    def __init__(self, model: GeoMotion, mode: str | None = None, backend: str = "inductor") -> None:
        self.model = model
        device_type = next(model.parameters()).device.type
        self.mode = mode or ("reduce-overhead" if device_type == "cuda" else "default")
        settings = dict(dynamic=False, fullgraph=True, backend=backend)
        if backend == "inductor":
            settings["mode"] = self.mode
        self._encode = torch.compile(model.encode, **settings)
        self._decode = torch.compile(model.decode, **settings)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self._encode(images).clone()

    def decode(self, tokens: torch.Tensor, flow_magnitude: torch.Tensor, image_size: Sequence[int]) -> GeoMotionOutput:
        output = self._decode(tokens, flow_magnitude, tuple(int(s) for s in image_size))
        return GeoMotionOutput(**{name: value.clone() for name, value in output.items()})
