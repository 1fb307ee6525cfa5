# SPDX-License-Identifier: Apache-2.0
"""Image to patch tokens."""
from __future__ import annotations

import torch
from torch import nn


class PatchEmbed(nn.Module):
    """A stride-``patch_size`` convolution; tokens ``[B, h*w, dim]`` in row-major patch order."""

    def __init__(self, patch_size: int, dim: int, in_channels: int = 3) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(images).flatten(2).transpose(1, 2)
