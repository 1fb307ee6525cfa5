# SPDX-License-Identifier: Apache-2.0
"""The GeoMotion network as a :class:`~geomotion_core.backend.MotionBackend`.

One window: official preprocessing -> bidirectional flow magnitudes on the de-normalised model-size
frames -> encoder -> decoder with the flow -> probability and poses resized back to the input size.
With ``frame_ids``, preprocessed frames, encoder tokens and per-pair flow magnitudes of frames seen
in earlier windows are reused from bounded caches, so a sliding window only pays for new frames.

The network itself runs on one of the engines of :mod:`geomotion_core.export.engines` (PyTorch,
onnxruntime, TensorRT): each offers ``encode`` / ``decode``, so the token cache works with all of them.
:func:`geomotion_core.backends.build_backend` builds it from ``BackendOptions``.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator, Protocol, Sequence

import numpy as np
import torch

from geomotion_core.cache import LruCache
from geomotion_core.errors import ConfigError, InputError
from geomotion_core.flow.base import FlowEstimator
from geomotion_core.model.geomotion import GeoMotionOutput
from geomotion_core.pipeline.probability_resize import resize_bilinear
from geomotion_core.pipeline.preprocessing import imagenet_denormalise, model_input_size, preprocess_frames
from geomotion_core.types import WindowPrediction

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
DEFAULT_CACHE_FRAMES = 64
STREAMING_WINDOW_SIZES = tuple(range(1, 9))  # the node's window lengths the warm-up prepares by default
CUDA_GRAPH_WARMUP_CALLS = 3  # CUDA-graph trees record on a later call than the first


class Network(Protocol):
    """What the backend needs of the network, whatever engine runs it (the model's own API)."""

    def encode(self, images: torch.Tensor) -> torch.Tensor: ...

    def decode(self, tokens: torch.Tensor, flow_magnitude: torch.Tensor, image_size: Sequence[int]) -> GeoMotionOutput: ...


class NetworkBackend:
    """Runs the GeoMotion network on windows of frames."""

    name = "geomotion"

    def __init__(
        self,
        model: torch.nn.Module,
        flow: FlowEstimator,
        device: torch.device,
        precision: str = "fp32",
        size: int = 518,
        keep_aspect: bool = False,
        return_points: bool = False,
        cache_frames: int = DEFAULT_CACHE_FRAMES,
        network: Network | None = None,
        engine: str = "torch",
    ) -> None:
        self.model = model
        self.network: Network = network if network is not None else model
        self.engine = engine
        self.flow_estimator = flow
        self.device = device
        self.precision = precision
        self.size = size
        self.keep_aspect = keep_aspect
        self.return_points = return_points
        self._inputs: LruCache[torch.Tensor] = LruCache(cache_frames)
        self._tokens: LruCache[torch.Tensor] = LruCache(cache_frames)
        self._pair_flow: LruCache[torch.Tensor] = LruCache(2 * cache_frames)

    def warmup(
        self,
        window_sizes: Sequence[int] = STREAMING_WINDOW_SIZES,
        frame_size: tuple[int, int] | None = None,
        compile: bool | None = None,
    ) -> dict[int, float]:
        """Prepare every window length in ``window_sizes`` before the first frame; seconds per length.

        Exported engines export (or load) and build their graphs here; the torch engine compiles
        encode/decode with ``torch.compile`` (``reduce-overhead``: CUDA graphs) when ``compile`` is
        True, or by default on CUDA, one static graph per length. ``frame_size`` ``(H, W)`` is only
        needed with ``keep_aspect`` (the network's input size then depends on it).
        """
        sizes = warmup_sizes(window_sizes)
        if self.keep_aspect and frame_size is None:
            raise ConfigError("warm-up with keep_aspect needs the frame size (height, width)")
        height, width = frame_size or (self.size, self.size)
        image_size = model_input_size(height, width, self.size, self.keep_aspect)
        if self.engine == "torch" and (compile if compile is not None else self.device.type == "cuda"):
            self._compile(len(sizes))
        calls = CUDA_GRAPH_WARMUP_CALLS if self.device.type == "cuda" else 1
        seconds = {}
        for count in sizes:
            start = time.perf_counter()
            images = torch.zeros(1, count, 3, *image_size, device=self.device)
            flow = torch.zeros(1, count, *image_size, device=self.device)
            with torch.inference_mode(), self._autocast():
                for _ in range(calls):
                    self.network.decode(self.network.encode(images), flow, image_size)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            seconds[count] = time.perf_counter() - start
        return seconds

    def _compile(self, lengths: int) -> None:
        """Route the torch engine through :class:`CompiledNetwork` (once)."""
        from geomotion_core.export.engines import CompiledNetwork

        if isinstance(self.network, CompiledNetwork):
            return
        self.network = CompiledNetwork(self.model)
        # each length is a recompilation of the same functions; allow them all
        limit = max(torch._dynamo.config.recompile_limit, lengths + 2)
        torch._dynamo.config.recompile_limit = limit

    def reset(self) -> None:
        self._inputs.clear()
        self._tokens.clear()
        self._pair_flow.clear()

    def predict_window(
        self,
        frames: np.ndarray,
        frame_ids: Sequence[int] | None = None,
        intrinsics: np.ndarray | None = None,
    ) -> WindowPrediction:
        """Probability and camera-to-world poses of ``[N, H, W, 3]`` uint8 RGB frames, at the input size.

        The probability is resized with :func:`resize_bilinear` on the device (streaming, node).
        """
        return self._predict(frames, frame_ids, native_probability=False)

    def predict_window_native(self, frames: np.ndarray, frame_ids: Sequence[int] | None = None) -> WindowPrediction:
        """As :meth:`predict_window`, but the probability stays at the network's input size.

        For protocols that bring it to the frame size their own way (the official evaluation's 8-bit
        PIL resize) or that hand it to SAM2 at the network's size, as the official code does.
        """
        return self._predict(frames, frame_ids, native_probability=True)

    @torch.inference_mode()
    def _predict(self, frames: np.ndarray, frame_ids: Sequence[int] | None, native_probability: bool) -> WindowPrediction:
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not len(frames):
            raise InputError(f"frames must be a non-empty [N, H, W, 3] uint8 RGB array, got {frames.dtype} {frames.shape}")
        if frame_ids is not None and len(frame_ids) != len(frames):
            raise InputError(f"{len(frame_ids)} frame ids for {len(frames)} frames")
        height, width = frames.shape[1:3]
        model_height, model_width = model_input_size(height, width, self.size, self.keep_aspect)
        ids = list(frame_ids) if frame_ids is not None else None
        timings: dict[str, float] = {}
        with self._timed("preprocess", timings):
            images = self._model_inputs(frames, ids, model_height, model_width)
        with self._timed("flow", timings):
            flow = self._flow_magnitudes(images, ids)
        with self._timed("network", timings), self._autocast():
            tokens = self._encoder_tokens(images, ids)
            output = self.network.decode(tokens, flow[None], (model_height, model_width))
        with self._timed("postprocess", timings):
            probability = output.motion_mask[0].float()
            if not native_probability:
                probability = resize_bilinear(probability[:, None], height, width)[:, 0]
            points = None
            if self.return_points:
                world = output.points[0].float().permute(0, 3, 1, 2)
                points = resize_bilinear(world, height, width).permute(0, 2, 3, 1).cpu().numpy()
            probability = probability.clamp_(0.0, 1.0).cpu().numpy()
            poses = output.camera_poses[0].double().cpu().numpy()
        return WindowPrediction(probability=probability, poses=poses, points=points, timings=timings)

    def _model_inputs(self, frames: np.ndarray, ids: list[int] | None, height: int, width: int) -> torch.Tensor:
        """Preprocessed ``[N, 3, h, w]`` frames, normalised once; new frames only when ids are given."""
        if ids is None:
            return preprocess_frames(frames, height, width, self.device)
        missing = [i for i, key in enumerate(ids) if (key, height, width) not in self._inputs]
        if missing:
            fresh = preprocess_frames(frames[missing], height, width, self.device)
            for row, i in enumerate(missing):
                self._inputs.put((ids[i], height, width), fresh[row])
        return torch.stack([self._inputs.get((key, height, width)) for key in ids])

    def _flow_magnitudes(self, images: torch.Tensor, ids: list[int] | None) -> torch.Tensor:
        """Official bidirectional flow magnitudes ``[N, h, w]`` on the de-normalised frames."""
        rgb = imagenet_denormalise(images)
        if ids is None:
            return self.flow_estimator.magnitudes(rgb)
        count, _, height, width = rgb.shape
        if count < 2:
            return rgb.new_zeros((count, height, width))
        pairs = [(t, t + 1) for t in range(count - 1)] + [(t + 1, t) for t in range(count - 1)]
        keys = [(ids[a], ids[b], height, width) for a, b in pairs]
        missing = [row for row, key in enumerate(keys) if key not in self._pair_flow]
        if missing:
            sources = torch.stack([rgb[pairs[row][0]] for row in missing])
            targets = torch.stack([rgb[pairs[row][1]] for row in missing])
            magnitudes = torch.linalg.vector_norm(self.flow_estimator.flow(sources, targets), dim=1)
            for index, row in enumerate(missing):
                self._pair_flow.put(keys[row], magnitudes[index])
        directed = torch.stack([self._pair_flow.get(key) for key in keys])
        forward, backward = directed[: count - 1], directed[count - 1 :]
        result = rgb.new_zeros((count, height, width))
        result[:-1] = forward
        result[1:] = torch.maximum(result[1:], backward)
        return result

    def _encoder_tokens(self, images: torch.Tensor, ids: list[int] | None) -> torch.Tensor:
        """Encoder tokens ``[1, N, P, C]``; only frames not cached are encoded."""
        if ids is None:
            return self.network.encode(images[None])
        height, width = images.shape[-2:]
        keys = [(key, height, width) for key in ids]
        missing = [i for i, key in enumerate(keys) if key not in self._tokens]
        if missing:
            fresh = self.network.encode(images[missing][None])[0]
            for row, i in enumerate(missing):
                self._tokens.put(keys[i], fresh[row])
        return torch.stack([self._tokens.get(key) for key in keys])[None]

    def _autocast(self):
        """Autocast for the torch engine; exported engines carry their precision in the graph/engine."""
        dtype = AUTOCAST_DTYPES.get(self.precision) if self.engine == "torch" else None
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None)

    @contextmanager
    def _timed(self, stage: str, timings: dict[str, float]) -> Iterator[None]:
        start = time.perf_counter()
        yield
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start



def warmup_sizes(window_sizes: Sequence[int]) -> list[int]:
    """The distinct window lengths to prepare, ascending; each a positive integer."""
    sizes = sorted({int(size) for size in window_sizes})
    if not sizes or sizes[0] < 1 or any(int(size) != size for size in window_sizes):
        raise ConfigError(f"window sizes must be positive integers, got {list(window_sizes)}")
    return sizes
