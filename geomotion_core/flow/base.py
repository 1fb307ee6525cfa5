# SPDX-License-Identifier: Apache-2.0
"""The optical-flow interface and the official flow-magnitude rule."""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch


class FlowEstimator(ABC):
    """Dense optical flow between frame pairs, batched over pairs."""

    name: str

    @abstractmethod
    def flow(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Flow from ``source`` to ``target``.

        Args:
            source, target: ``[P, 3, H, W]`` RGB in [0, 1] (float), P frame pairs.
        Returns:
            ``[P, 2, H, W]`` float32 (u, v) displacements in pixels of the input size.
        """

    def magnitudes(self, frames: torch.Tensor) -> torch.Tensor:
        """Official bidirectional flow magnitude of a clip ``[N, 3, H, W]`` -> ``[N, H, W]``.

        Frame t gets ``max(|flow(t -> t+1)|, |flow(t -> t-1)|)``; the first frame has only its
        forward term, the last only its backward term, and a single frame gets zeros.
        """
        count, _, height, width = frames.shape
        if count < 2:
            return frames.new_zeros((count, height, width), dtype=torch.float32)
        pairs_source = torch.cat([frames[:-1], frames[1:]])
        pairs_target = torch.cat([frames[1:], frames[:-1]])
        magnitude = torch.linalg.vector_norm(self.flow(pairs_source, pairs_target), dim=1)
        forward, backward = magnitude[: count - 1], magnitude[count - 1 :]
        result = frames.new_zeros((count, height, width), dtype=magnitude.dtype)
        result[:-1] = forward
        result[1:] = torch.maximum(result[1:], backward)
        return result
