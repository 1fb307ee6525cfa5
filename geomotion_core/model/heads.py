# SPDX-License-Identifier: Apache-2.0
"""Per-frame head decoders and the pixel-shuffle dense heads."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from geomotion_core.model.layers import Block, RotaryTables


class HeadDecoder(nn.Module):
    """Projects tapped features, runs frame-wise RoPE blocks (no LayerScale, no q/k norm), projects out."""

    def __init__(
        self, in_dim: int, dim: int, depth: int, num_heads: int, out_dim: int, mlp_ratio: float = 4.0
    ) -> None:
        super().__init__()
        self.projects = nn.Linear(in_dim, dim)
        self.blocks = nn.ModuleList(Block(dim, num_heads, mlp_ratio) for _ in range(depth))
        self.linear_out = nn.Linear(dim, out_dim)

    def forward(self, hidden: torch.Tensor, rope: RotaryTables) -> torch.Tensor:
        """``hidden`` ``[B*N, T, in_dim]`` -> ``[B*N, T, out_dim]``."""
        x = self.projects(hidden)
        for block in self.blocks:
            x = block(x, rope)
        return self.linear_out(x)


class PixelShuffleHead(nn.Module):
    """Dense head: one linear map per patch token to ``out_channels * p * p`` values, pixel-shuffled.

    Feature ``c * p*p + i * p + j`` of patch ``(py, px)`` becomes channel ``c`` of pixel
    ``(p*py + i, p*px + j)`` (Pi3's ``LinearPts3d``).
    """

    def __init__(self, in_dim: int, out_channels: int, patch_size: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Linear(in_dim, out_channels * patch_size * patch_size)

    def forward(self, patch_tokens: torch.Tensor, grid_h: int, grid_w: int) -> torch.Tensor:
        """``patch_tokens`` ``[B*N, h*w, in_dim]`` -> ``[B*N, H, W, out_channels]``."""
        features = self.proj(patch_tokens).transpose(1, 2)
        features = features.reshape(features.shape[0], -1, grid_h, grid_w)
        return F.pixel_shuffle(features, self.patch_size).permute(0, 2, 3, 1)
