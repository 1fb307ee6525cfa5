# SPDX-License-Identifier: Apache-2.0
"""Multi-head self-attention through ``scaled_dot_product_attention``.

PyTorch picks the SDPA kernel (flash / memory-efficient / CPU flash); forcing the math kernel,
as the official code does for float32, materialises the attention matrix.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from geomotion_core.model.layers.rope2d import RotaryTables, apply_rotary

QK_NORM_EPS = 1e-5  # the torch LayerNorm default, used by the official q/k norms


class Attention(nn.Module):
    """Self-attention with a fused ``[q | k | v]`` projection, optional q/k LayerNorm and RoPE."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        qk_norm: bool = False,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.q_norm = nn.LayerNorm(self.head_dim, eps=QK_NORM_EPS) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(self.head_dim, eps=QK_NORM_EPS) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim, bias=proj_bias)

    def forward(self, x: torch.Tensor, rope: RotaryTables | None = None) -> torch.Tensor:
        """Attend over the tokens of ``x`` ``[B, T, C]``; ``rope`` rotates q and k."""
        batch, tokens, channels = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = apply_rotary(q, rope), apply_rotary(k, rope)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, channels))
