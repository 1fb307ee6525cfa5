# SPDX-License-Identifier: Apache-2.0
"""Alternating frame/global attention over all frames of a clip (Pi3's "decoder")."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from geomotion_core.model.config import GeoMotionConfig
from geomotion_core.model.layers import Block, RotaryTables


class AggregatedTokens(NamedTuple):
    """Tapped aggregator features, each ``[B*N, T, taps*C]`` with T = registers + patches."""

    low: torch.Tensor  # concatenated outputs of the low tapped layers (5 and 15 officially)
    high: torch.Tensor  # concatenated outputs of the last two layers


class Aggregator(nn.Module):
    """Prepends learned register tokens and runs blocks that alternate frame and global attention.

    Even blocks attend within each frame, odd blocks across all frames of a clip (frames flattened
    frame-major). No frame index is encoded, so the result is equivariant to frame permutations.
    """

    def __init__(self, config: GeoMotionConfig) -> None:
        super().__init__()
        dim = config.dec_embed_dim
        self.num_register_tokens = config.num_register_tokens
        self.low_layers = tuple(config.tapped_low_layers)
        self.high_layers = config.tapped_high_layers
        self.register_token = nn.Parameter(torch.zeros(1, 1, config.num_register_tokens, dim))
        self.blocks = nn.ModuleList(
            Block(
                dim,
                config.dec_num_heads,
                config.dec_mlp_ratio,
                layerscale_init=config.dec_layerscale_init,
                qk_norm=True,
            )
            for _ in range(config.dec_depth)
        )
        nn.init.normal_(self.register_token, std=1e-6)

    @staticmethod
    def is_global(index: int) -> bool:
        """Whether block ``index`` attends across frames (odd blocks) or within a frame."""
        return index % 2 == 1

    def forward(self, patch_tokens: torch.Tensor, rope: RotaryTables) -> AggregatedTokens:
        """``patch_tokens`` ``[B, N, P, C]`` and one frame's RoPE tables -> tapped features."""
        batch, frames, patches, dim = patch_tokens.shape
        registers = self.register_token.expand(batch, frames, -1, -1)
        x = torch.cat([registers, patch_tokens], dim=2)
        tokens = x.shape[2]
        global_rope = rope.repeat_frames(frames)
        taps: dict[int, torch.Tensor] = {}
        wanted = set(self.low_layers) | set(self.high_layers)
        for index, block in enumerate(self.blocks):
            if self.is_global(index):
                x = block(x.reshape(batch, frames * tokens, dim), global_rope)
            else:
                x = block(x.reshape(batch * frames, tokens, dim), rope)
            if index in wanted:
                taps[index] = x.reshape(batch * frames, tokens, dim)
        low = torch.cat([taps[i] for i in self.low_layers], dim=-1)
        high = torch.cat([taps[i] for i in self.high_layers], dim=-1)
        return AggregatedTokens(low, high)
