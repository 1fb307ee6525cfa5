# SPDX-License-Identifier: Apache-2.0
"""Pre-norm transformer block: ``x + ls1(attn(norm1(x)))``, then ``x + ls2(mlp(norm2(x)))``."""
from __future__ import annotations

import torch
from torch import nn

from geomotion_core.model.layers.attention import Attention
from geomotion_core.model.layers.layer_scale import LayerScale
from geomotion_core.model.layers.mlp import Mlp
from geomotion_core.model.layers.rope2d import RotaryTables

NORM_EPS = 1e-6


class Block(nn.Module):
    """One transformer block; LayerScale when ``layerscale_init`` is given, q/k norm on request."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        layerscale_init: float | None = None,
        qk_norm: bool = False,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=NORM_EPS)
        self.attn = Attention(dim, num_heads, qk_norm=qk_norm)
        self.ls1 = LayerScale(dim, layerscale_init) if layerscale_init is not None else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=NORM_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, layerscale_init) if layerscale_init is not None else nn.Identity()

    def forward(self, x: torch.Tensor, rope: RotaryTables | None = None) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x), rope))
        return x + self.ls2(self.mlp(self.norm2(x)))
