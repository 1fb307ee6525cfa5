# SPDX-License-Identifier: Apache-2.0
"""Run an exported network with onnxruntime, through the model's own ``encode`` / ``decode`` API."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from geomotion_core.errors import ConfigError
from geomotion_core.export import graphs
from geomotion_core.export.onnx_export import ExportSpec, example_inputs, graph_files, read_manifest
from geomotion_core.model.geomotion import GeoMotionOutput

LOGGER = logging.getLogger(__name__)

CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"


def providers_for(device: torch.device) -> list[str]:
    """onnxruntime execution providers for ``device`` (CUDA when the installed build has it)."""
    import onnxruntime

    if device.type == "cuda":
        if CUDA_PROVIDER in onnxruntime.get_available_providers():
            return [CUDA_PROVIDER, CPU_PROVIDER]
        LOGGER.warning("this onnxruntime build has no CUDA provider (install onnxruntime-gpu): running on the CPU")
    return [CPU_PROVIDER]


class OnnxRuntimeNetwork:
    """An export folder (``geomotion export``) as a network: ``encode``, ``decode`` and ``__call__``.

    Tensors in and out are torch tensors on ``device``; they cross to onnxruntime as numpy arrays.
    """

    def __init__(self, folder: str | Path, device: torch.device, threads: int | None = None) -> None:
        import onnxruntime

        self.folder = Path(folder)
        self.device = device
        self.spec = ExportSpec(**read_manifest(self.folder)["spec"])
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.log_severity_level = 3  # errors only: constant-folding notes are not the user's concern
        providers = providers_for(device)
        self.sessions = {
            name: onnxruntime.InferenceSession(str(path), options, providers=providers)
            for name, path in graph_files(self.folder, self.spec.graph).items()
        }

    @property
    def image_size(self) -> tuple[int, int]:
        return self.spec.image_size

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Encoder tokens ``[B, N, P, C]`` of images ``[B, N, 3, H, W]`` in [0, 1]."""
        batch, frames = images.shape[:2]
        self._check_size(images.shape[-2:], frames)
        (tokens,) = self._run("encoder", images=images.flatten(0, 1))
        return tokens.reshape(batch, frames, *tokens.shape[1:])

    def decode(self, tokens: torch.Tensor, flow_magnitude: torch.Tensor, image_size: Sequence[int]) -> GeoMotionOutput:
        """The network's outputs for encoder tokens ``[1, N, P, C]`` and flow ``[1, N, H, W]``."""
        self._check_size(image_size, tokens.shape[1])
        outputs = self._run("decoder", tokens=tokens, flow_magnitude=flow_magnitude)
        return graphs.finish_camera(graphs.GraphOutputs(*outputs))

    def __call__(self, images: torch.Tensor, flow_magnitude: torch.Tensor) -> GeoMotionOutput:
        """The whole forward, like ``GeoMotion.__call__`` (``[1, N, 3, H, W]`` images)."""
        if self.spec.graph == "whole":
            self._check_size(images.shape[-2:], images.shape[1])
            outputs = self._run("network", images=images, flow_magnitude=flow_magnitude)
            return graphs.finish_camera(graphs.GraphOutputs(*outputs))
        return self.decode(self.encode(images), flow_magnitude, images.shape[-2:])

    def _check_size(self, size: Sequence[int], frames: int) -> None:
        if tuple(int(s) for s in size) != self.spec.image_size:
            raise ConfigError(f"the graphs in {self.folder} take {self.spec.height}x{self.spec.width} images, "
                              f"got {tuple(size)}")
        limit = self.spec.frames or self.spec.max_frames
        if (self.spec.frames is not None and frames != self.spec.frames) or frames > limit:
            raise ConfigError(f"the graphs in {self.folder} take N={self.spec.frames or f'1..{limit}'} frames, got {frames}")

    def _run(self, graph: str, **inputs: torch.Tensor) -> list[torch.Tensor]:
        feeds = {name: np.ascontiguousarray(tensor.detach().float().cpu().numpy()) for name, tensor in inputs.items()}
        results = self.sessions[graph].run(None, feeds)
        return [torch.from_numpy(result).to(self.device) for result in results]


@dataclass
class Agreement:
    """Largest absolute difference per output between the exported graph and PyTorch."""

    max_abs: dict[str, float]
    atol: float
    rtol: float
    frames: int
    passed: bool

    def summary(self) -> str:
        diffs = ", ".join(f"{name} {value:.2e}" for name, value in self.max_abs.items())
        verdict = "OK" if self.passed else "FAILED"
        return f"onnxruntime vs PyTorch at N={self.frames} (atol {self.atol:g}, rtol {self.rtol:g}): {diffs} -> {verdict}"


def compare_with_torch(
    model: torch.nn.Module,
    network: OnnxRuntimeNetwork,
    inputs: dict[str, torch.Tensor] | None = None,
    atol: float = 1e-4,
    rtol: float = 1e-4,
) -> Agreement:
    """Run both on ``inputs`` (default: random, at the export's N, or N=3 for a dynamic N) and compare
    every output with ``|onnx - torch| <= atol + rtol * |torch|``."""
    if inputs is None:
        spec = network.spec
        frames = spec.frames or min(3, spec.max_frames)
        probe = ExportSpec(spec.height, spec.width, frames, max(frames, spec.max_frames))
        inputs = example_inputs(probe, network.device, seed=1)
    with torch.inference_mode():
        expected = model(inputs["images"], inputs["flow_magnitude"])
        got = network(inputs["images"], inputs["flow_magnitude"])
    max_abs, passed = {}, True
    for name, reference in expected.items():
        difference = (got[name].to(reference) - reference).abs()
        max_abs[name] = float(difference.max())
        passed &= bool((difference <= atol + rtol * reference.abs()).all())
    return Agreement(max_abs, atol, rtol, int(inputs["images"].shape[1]), passed)
