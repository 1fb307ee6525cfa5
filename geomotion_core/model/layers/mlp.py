# SPDX-License-Identifier: Apache-2.0
"""Transformer feed-forward layer."""
from __future__ import annotations

import torch
from torch import nn


class Mlp(nn.Module):
    """``fc2(GELU(fc1(x)))`` with the exact (erf) GELU."""

    def __init__(self, dim: int, hidden_dim: int, bias: bool = True) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim, bias=bias)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))
