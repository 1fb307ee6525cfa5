# SPDX-License-Identifier: Apache-2.0
"""Run an exported network as TensorRT engines (CUDA only; ``tensorrt`` imported lazily).

Each ONNX graph of an export folder is built into an fp32 (TF32), fp16 or bf16 engine with one
optimisation profile over the frame count, and cached beside the graph; a cached engine is loaded
only when its recorded key (:mod:`geomotion_core.export.engine_cache`) matches this GPU, TensorRT
version, graph, precision and shape range, and is rebuilt otherwise.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import torch

from geomotion_core.errors import ConfigError
from geomotion_core.export import engine_cache, graphs
from geomotion_core.export.onnx_export import ExportSpec, graph_files, read_manifest
from geomotion_core.model.geomotion import GeoMotionOutput

LOGGER = logging.getLogger(__name__)

DEFAULT_OPT_FRAMES = 8  # the streaming node's default window
WORKSPACE_BYTES = 8 << 30


def _tensorrt():
    try:
        import tensorrt
    except ImportError as exc:
        raise ConfigError("engine tensorrt needs the `tensorrt` package (pip install tensorrt) and a CUDA GPU") from exc
    return tensorrt


def engine_fields(onnx_path: Path, spec: ExportSpec, precision: str, device: torch.device) -> engine_cache.EngineFields:
    """The cache key fields of one graph's engine on ``device``."""
    trt = _tensorrt()
    properties = torch.cuda.get_device_properties(device)
    frames = (spec.frames,) * 3 if spec.frames else (1, min(DEFAULT_OPT_FRAMES, spec.max_frames), spec.max_frames)
    return engine_cache.EngineFields(
        graph=engine_cache.graph_identity(onnx_path),
        precision=precision,
        min_frames=frames[0],
        opt_frames=frames[1],
        max_frames=frames[2],
        gpu_name=properties.name,
        compute_capability=f"{properties.major}.{properties.minor}",
        tensorrt_version=trt.__version__,
        cuda_version=str(torch.version.cuda),
    )


def load_or_build(onnx_path: Path, fields: engine_cache.EngineFields, logger) -> bytes:
    """The serialised engine of ``onnx_path``: the cached one when its key matches, else a new build."""
    trt = _tensorrt()
    engine_path, sidecar = engine_cache.engine_paths(onnx_path.parent, onnx_path.stem, fields)
    decision = engine_cache.decide(engine_cache.read_sidecar(sidecar), fields, engine_path.is_file())
    if decision.load:
        LOGGER.info("TensorRT: loading %s (%s)", engine_path.name, decision.reason)
        return engine_path.read_bytes()
    LOGGER.warning("TensorRT: building %s engine for %s (%s); this takes minutes", fields.precision, onnx_path.name,
                   decision.reason)
    builder = trt.Builder(logger)
    explicit = getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH", None)  # the only mode from TensorRT 10
    network = builder.create_network(0 if explicit is None else 1 << int(explicit))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ConfigError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if fields.precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif fields.precision == "bf16":
        if not hasattr(trt.BuilderFlag, "BF16"):
            raise ConfigError(f"TensorRT {trt.__version__} has no bf16 (TensorRT >= 9 has); use precision fp16")
        config.set_flag(trt.BuilderFlag.BF16)
    profile = builder.create_optimization_profile()
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        shapes = [tuple(frames if dim == -1 else dim for dim in tensor.shape)
                  for frames in (fields.min_frames, fields.opt_frames, fields.max_frames)]
        profile.set_shape(tensor.name, *shapes)
    config.add_optimization_profile(profile)
    serialised = builder.build_serialized_network(network, config)
    if serialised is None:
        raise ConfigError(f"TensorRT failed to build an engine for {onnx_path} (see the TensorRT log above)")
    data = bytes(serialised)
    partial = engine_path.with_name(engine_path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, engine_path)
    sidecar.write_text(json.dumps(asdict(fields), indent=1))
    return data


class TensorRtNetwork:
    """An export folder run as TensorRT engines: ``encode``, ``decode`` and ``__call__`` on CUDA tensors."""

    def __init__(self, folder: str | Path, device: torch.device, precision: str = "bf16") -> None:
        if device.type != "cuda":
            raise ConfigError("engine tensorrt needs a CUDA device (device cuda or auto on a GPU machine)")
        trt = _tensorrt()
        self.folder = Path(folder)
        self.device = device
        self.spec = ExportSpec(**read_manifest(self.folder)["spec"])
        self._logger = trt.Logger(trt.Logger.WARNING)
        runtime = trt.Runtime(self._logger)
        self.engines, self.contexts = {}, {}
        with torch.cuda.device(device):
            for name, path in graph_files(self.folder, self.spec.graph).items():
                fields = engine_fields(path, self.spec, precision, device)
                engine = runtime.deserialize_cuda_engine(load_or_build(path, fields, self._logger))
                if engine is None:  # a matching key but an unreadable file: rebuild once
                    engine_path, _ = engine_cache.engine_paths(path.parent, path.stem, fields)
                    engine_path.unlink(missing_ok=True)
                    engine = runtime.deserialize_cuda_engine(load_or_build(path, fields, self._logger))
                self.engines[name] = engine
                self.contexts[name] = engine.create_execution_context()
        self._max_frames = self.spec.frames or self.spec.max_frames

    @property
    def image_size(self) -> tuple[int, int]:
        return self.spec.image_size

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        batch, frames = images.shape[:2]
        (tokens,) = self._run("encoder", images=images.flatten(0, 1))
        return tokens.reshape(batch, frames, *tokens.shape[1:])

    def decode(self, tokens: torch.Tensor, flow_magnitude: torch.Tensor, image_size: Sequence[int]) -> GeoMotionOutput:
        outputs = self._run("decoder", tokens=tokens, flow_magnitude=flow_magnitude)
        return graphs.finish_camera(graphs.GraphOutputs(*outputs))

    def __call__(self, images: torch.Tensor, flow_magnitude: torch.Tensor) -> GeoMotionOutput:
        if self.spec.graph == "whole":
            outputs = self._run("network", images=images, flow_magnitude=flow_magnitude)
            return graphs.finish_camera(graphs.GraphOutputs(*outputs))
        return self.decode(self.encode(images), flow_magnitude, images.shape[-2:])

    def _run(self, graph: str, **inputs: torch.Tensor) -> list[torch.Tensor]:
        context = self.contexts[graph]
        frames = next(iter(inputs.values())).shape[1 if graph != "encoder" else 0]
        if frames > self._max_frames or (self.spec.frames and frames != self.spec.frames):
            raise ConfigError(f"the TensorRT engines in {self.folder} take at most {self._max_frames} frames, got {frames}")
        keep = []
        for name, tensor in inputs.items():
            tensor = tensor.to(self.device, torch.float32).contiguous()
            keep.append(tensor)
            context.set_input_shape(name, tuple(tensor.shape))
            context.set_tensor_address(name, tensor.data_ptr())
        outputs = []
        for name in graphs.ENCODER_OUTPUTS if graph == "encoder" else graphs.GRAPH_OUTPUTS:
            dtype = torch.float32 if engine.get_tensor_dtype(name) == trt.DataType.FLOAT else torch.float16
            output = torch.empty(tuple(context.get_tensor_shape(name)), dtype=dtype, device=self.device)
            context.set_tensor_address(name, output.data_ptr())
            outputs.append(output)
        stream = torch.cuda.current_stream(self.device)
        if not context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError(f"TensorRT execution of {graph} failed")
        return [output.float() for output in outputs]
