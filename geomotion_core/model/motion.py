# SPDX-License-Identifier: Apache-2.0
"""Motion-aware fusion: geometry features + optical-flow magnitude + camera features per patch."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from geomotion_core.model.config import GeoMotionConfig


def centre_window(patch_size: int, num_convs: int) -> tuple[int, int]:
    """``(start, width)`` of the patch-centred window that determines the resized flow features.

    Bilinear resizing by the integer factor ``p`` (``align_corners=False``) reads pixel ``p/2 - 1``
    and ``p/2`` of each patch at weight 1/2 (even ``p``) or the single centre pixel (odd ``p``);
    each unpadded 3x3 convolution widens the window that feeds them by one pixel per side.
    """
    width = (2 if patch_size % 2 == 0 else 1) + 2 * num_convs
    return (patch_size - width) // 2, width


def flow_patch_features(flow_encoder: nn.Sequential, flow: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Per-patch flow features ``[B*N, h*w, C]`` from magnitudes ``[B*N, H, W]``.

    Equal to running the zero-padded convolutions at full resolution and resizing to the patch
    grid bilinearly (``align_corners=False``, no antialias), the official computation: that resize
    only reads the centre pixels of each patch, whose receptive field lies inside the patch, so
    only those windows are convolved (unpadded) -- a small fraction of the work and memory.
    """
    frames, height, width = flow.shape
    grid_h, grid_w = height // patch_size, width // patch_size
    convs = [layer for layer in flow_encoder if isinstance(layer, nn.Conv2d)]
    start, size = centre_window(patch_size, len(convs))
    windows = flow.reshape(frames, grid_h, patch_size, grid_w, patch_size)
    windows = windows[:, :, start:start + size, :, start:start + size]
    features = windows.permute(0, 1, 3, 2, 4).reshape(frames * grid_h * grid_w, 1, size, size)
    for layer in flow_encoder:
        if isinstance(layer, nn.Conv2d):
            features = F.conv2d(features, layer.weight, layer.bias)
        else:
            features = layer(features)
    return features.mean(dim=(2, 3)).reshape(frames, grid_h * grid_w, -1)


class MotionFusion(nn.Module):
    """Fuses low- and high-level aggregator features with flow and camera features.

    The official ``MotionAwareDecoder`` (state-dict prefix ``motion_aware_decoder.``); it decodes
    nothing, so it is named for what it does (docs/model.md lists every renamed module).

    Patch tokens: ``fusion_proj(cat(feature_proj(cat(low, high)), flow_features, camera))``.
    Special tokens: ``feature_proj(cat(low, high))`` only.
    """

    def __init__(self, config: GeoMotionConfig) -> None:
        super().__init__()
        self.patch_size = config.patch_size
        self.num_special = config.num_register_tokens
        taps = len(config.tapped_low_layers) + 2
        channels = (1, *config.flow_channels)
        self.feature_proj = nn.Sequential(
            nn.Linear(taps * config.dec_embed_dim, config.motion_hidden_dim), nn.ReLU()
        )
        layers: list[nn.Module] = []
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1), nn.ReLU()]
        self.flow_encoder = nn.Sequential(*layers)
        fused = config.motion_hidden_dim + channels[-1] + config.camera_out_dim
        self.fusion_proj = nn.Linear(fused, config.motion_hidden_dim)

    def forward(
        self, low: torch.Tensor, high: torch.Tensor, flow: torch.Tensor, camera: torch.Tensor
    ) -> torch.Tensor:
        """``low``/``high`` ``[B*N, T, *]``, ``flow`` ``[B*N, H, W]`` pixels, ``camera`` ``[B*N, T, D]``."""
        projected = self.feature_proj(torch.cat([low, high], dim=-1))
        special, patches = projected[:, : self.num_special], projected[:, self.num_special:]
        flow_features = flow_patch_features(self.flow_encoder, flow.to(low.dtype), self.patch_size)
        fused = self.fusion_proj(torch.cat([patches, flow_features, camera[:, self.num_special:]], dim=-1))
        return torch.cat([special, fused], dim=1)
