# SPDX-License-Identifier: Apache-2.0
"""Per-channel residual scaling (LayerScale)."""
from __future__ import annotations

import torch
from torch import nn


class LayerScale(nn.Module):
    """Multiplies its input by a learned per-channel ``gamma`` (initialised to ``init_value``)."""

    def __init__(self, dim: int, init_value: float) -> None:
        super().__init__()
        self.init_value = init_value
        self.gamma = nn.Parameter(torch.full((dim,), float(init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma
