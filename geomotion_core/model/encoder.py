# SPDX-License-Identifier: Apache-2.0
"""DINOv2 ViT encoder with register tokens (Pi3's image encoder)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from geomotion_core.model.config import GeoMotionConfig
from geomotion_core.model.layers import Block, PatchEmbed
from geomotion_core.model.layers.block import NORM_EPS


class DinoEncoder(nn.Module):
    """ViT with a cls token, ``enc_num_register_tokens`` registers and a resizable position grid.

    Token order is ``[cls, registers, patches]``; the position embedding is added to the cls token
    and the patches before the registers are inserted (registers carry no position).
    """

    def __init__(self, config: GeoMotionConfig) -> None:
        super().__init__()
        dim = config.enc_embed_dim
        grid = config.enc_pos_grid
        self.patch_size = config.patch_size
        self.grid = grid
        self.interpolate_antialias = config.enc_interpolate_antialias
        self.patch_embed = PatchEmbed(config.patch_size, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, dim))
        self.register_tokens = nn.Parameter(torch.zeros(1, config.enc_num_register_tokens, dim))
        self.blocks = nn.ModuleList(
            Block(dim, config.enc_num_heads, config.enc_mlp_ratio, layerscale_init=config.enc_layerscale_init)
            for _ in range(config.enc_depth)
        )
        self.norm = nn.LayerNorm(dim, eps=NORM_EPS)
        self.num_special = 1 + config.enc_num_register_tokens
        for token in (self.cls_token, self.pos_embed, self.register_tokens):
            nn.init.trunc_normal_(token, std=0.02)

    def position_embedding(self, grid_h: int, grid_w: int, dtype: torch.dtype) -> torch.Tensor:
        """Position embedding ``[1, 1 + h*w, C]`` for an ``h x w`` patch grid.

        The stored square grid is used as is for a same-size square input; otherwise it is resized
        with bicubic (antialiased) interpolation, in at least float32.
        """
        stored = self.pos_embed
        if grid_h == grid_w == self.grid:
            return stored.to(dtype)
        work_dtype = torch.promote_types(stored.dtype, torch.float32)
        patch_grid = stored[:, 1:].to(work_dtype).reshape(1, self.grid, self.grid, -1).permute(0, 3, 1, 2)
        resized = F.interpolate(
            patch_grid, size=(grid_h, grid_w), mode="bicubic", antialias=self.interpolate_antialias
        )
        resized = resized.flatten(2).transpose(1, 2)
        return torch.cat([stored[:, :1].to(work_dtype), resized], dim=1).to(dtype)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised images ``[B, 3, H, W]`` -> final-norm patch tokens ``[B, h*w, C]``."""
        grid_h, grid_w = images.shape[-2] // self.patch_size, images.shape[-1] // self.patch_size
        x = self.patch_embed(images)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.position_embedding(grid_h, grid_w, x.dtype)
        registers = self.register_tokens.expand(x.shape[0], -1, -1)
        x = torch.cat([x[:, :1], registers, x[:, 1:]], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)[:, self.num_special:]
