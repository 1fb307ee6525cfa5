# SPDX-License-Identifier: Apache-2.0
"""Optical flow with torchvision RAFT-large, exactly as the official GeoMotion inference runs it.

Official details (docs/flow_and_refine.md, "Optical flow"): the ``C_T_SKHT_V2`` weights, inputs mapped from
[0, 1] to [-1, 1], frames resized to the next multiple of 8 with bilinear interpolation without
antialiasing (518 -> 520), the default 12 flow updates, the last (finest) prediction, and the flow
resized back with the same call, its u and v components rescaled to pixels of the input size.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterator, Mapping

import torch
import torchvision.transforms.functional as TF
from torchvision.models.optical_flow import RAFT, raft_large

from geomotion_core.errors import CheckpointError, ConfigError, InputError
from geomotion_core.flow.base import FlowEstimator
from geomotion_core.weights import candidate_paths, require_weight

LOGGER = logging.getLogger(__name__)

PRECISION_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
OFFICIAL_FLOW_UPDATES = 12
RAFT_STRIDE = 8
RAFT_MIN_SIDE = 128  # the correlation pyramid needs feature maps of at least 16 x 16


def padded_size(height: int, width: int) -> tuple[int, int]:
    """The next multiples of 8 at or above ``(height, width)`` (518 x 518 -> 520 x 520)."""
    return math.ceil(height / RAFT_STRIDE) * RAFT_STRIDE, math.ceil(width / RAFT_STRIDE) * RAFT_STRIDE


def _resize_bilinear(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The official resize: torchvision bilinear without antialiasing (a no-op at equal size)."""
    if tuple(images.shape[-2:]) == size:
        return images
    return TF.resize(images, list(size), interpolation=TF.InterpolationMode.BILINEAR, antialias=False)


def resize_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a flow field ``[P, 2, h, w]`` to ``size`` and rescale u by W/w and v by H/h."""
    height, width = flow.shape[-2:]
    if (height, width) == size:
        return flow
    scale = flow.new_tensor([size[1] / width, size[0] / height]).view(1, 2, 1, 1)
    return _resize_bilinear(flow, size) * scale


def load_raft_state_dict(path: str | os.PathLike) -> Mapping[str, torch.Tensor]:
    """Read a RAFT state dict without executing pickled code; CheckpointError if unreadable."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types for truncated or foreign files
        raise CheckpointError(f"RAFT weights {path} are not a readable PyTorch checkpoint: {exc}") from exc
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"RAFT weights {path} do not hold a state dict of tensors")
    return state


def build_raft_large(path: str | os.PathLike) -> RAFT:
    """torchvision ``raft_large`` with the weights of ``path``, in eval mode, on the CPU."""
    model = raft_large(weights=None, progress=False)
    try:
        model.load_state_dict(load_raft_state_dict(path))
    except RuntimeError as exc:  # missing, unexpected or mis-shaped parameters
        detail = " ".join(str(exc).split())
        raise CheckpointError(f"RAFT weights {path} do not fit torchvision raft_large: {detail[:300]}") from exc
    return model.eval()


class RaftFlowEstimator(FlowEstimator):
    """torchvision RAFT-large, batched over frame pairs.

    Args:
        model: a RAFT network (normally from ``from_weights``).
        device: where RAFT runs; inputs are moved there chunk by chunk and the flow comes back
            on the device of the input.
        precision: ``fp32`` (official), ``bf16`` or ``fp16`` (autocast).
        batch_size: frame pairs per RAFT call; bounds memory.
        num_flow_updates: recurrent refinement steps (official: 12).
    """

    name = "raft"

    def __init__(
        self,
        model: RAFT,
        device: str | torch.device = "cpu",
        precision: str = "fp32",
        batch_size: int = 8,
        num_flow_updates: int = OFFICIAL_FLOW_UPDATES,
    ) -> None:
        if precision not in PRECISION_DTYPES:
            raise ConfigError(f"precision must be one of {', '.join(PRECISION_DTYPES)}, got {precision!r}")
        if batch_size < 1 or num_flow_updates < 1:
            raise ConfigError("RAFT batch_size and num_flow_updates must be positive")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.precision = precision
        self.batch_size = batch_size
        self.num_flow_updates = num_flow_updates

    @classmethod
    def from_weights(
        cls,
        weights: str | os.PathLike | None = None,
        device: str | torch.device = "cpu",
        **options: object,
    ) -> RaftFlowEstimator:
        """Build from the ``C_T_SKHT_V2`` weight file: ``weights`` or the one in GEOMOTION_HOME.

        Never downloads. A missing file raises CheckpointError naming every path looked at.
        """
        path = require_weight(
            "raft", weights, what="RAFT weights",
            hint="fetch them with `geomotion weights download raft` or use --flow dis",
        )
        if weights is not None and path != candidate_paths("raft", weights)[0]:
            LOGGER.warning("RAFT weights %s do not exist; using %s instead", weights, path)
        return cls(build_raft_large(path), device=device, **options)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=PRECISION_DTYPES[self.precision])

    def _chunks(self, count: int) -> Iterator[slice]:
        for start in range(0, count, self.batch_size):
            yield slice(start, min(start + self.batch_size, count))

    @torch.no_grad()  # not inference_mode: training feeds the flow to layers that need autograd
    def flow(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Flow ``[P, 2, H, W]`` in pixels from ``source`` to ``target`` (``[P, 3, H, W]`` in [0, 1])."""
        if source.shape != target.shape or source.dim() != 4 or source.shape[1] != 3:
            shapes = f"{tuple(source.shape)} and {tuple(target.shape)}"
            raise InputError(f"RAFT needs two [P, 3, H, W] batches of one shape, got {shapes}")
        size = (source.shape[-2], source.shape[-1])
        network_size = padded_size(*size)
        if min(network_size) < RAFT_MIN_SIDE:
            raise InputError(f"RAFT needs frames of at least {RAFT_MIN_SIDE} x {RAFT_MIN_SIDE} pixels, got {size}")
        result = torch.empty((source.shape[0], 2, *size), dtype=torch.float32, device=source.device)
        for chunk in self._chunks(source.shape[0]):
            pair = torch.cat([source[chunk], target[chunk]]).to(self.device, torch.float32)
            pair = _resize_bilinear(pair * 2 - 1, network_size)
            first, second = pair.chunk(2)
            with self._autocast():
                predicted = self.model(first, second, num_flow_updates=self.num_flow_updates)[-1]
            result[chunk] = resize_flow(predicted.float(), size).to(result.device)
        return result
