# SPDX-License-Identifier: Apache-2.0
"""Shape checks for the network's inputs, each raising one clear ``InputError``."""
from __future__ import annotations

import torch

from geomotion_core.errors import InputError


def check_images(images: object, patch_size: int) -> torch.Tensor:
    """Return float images as ``[B, N, 3, H, W]`` (a 4-D ``[N, 3, H, W]`` gains a batch dim)."""
    if not isinstance(images, torch.Tensor):
        raise InputError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if not images.is_floating_point():
        raise InputError(f"images must be floating point in [0, 1], got {images.dtype}")
    if images.dim() == 4:
        images = images.unsqueeze(0)
    if images.dim() != 5 or images.shape[2] != 3:
        raise InputError(f"images must be [B, N, 3, H, W] (or [N, 3, H, W]), got {list(images.shape)}")
    if min(images.shape[:2]) == 0:
        raise InputError(f"images hold no frames: {list(images.shape)}")
    check_image_size(tuple(images.shape[-2:]), patch_size)
    return images


def check_image_size(size: tuple[int, ...], patch_size: int) -> tuple[int, int]:
    """Validate ``(H, W)``: positive multiples of the patch size."""
    if len(size) != 2:
        raise InputError(f"image size must be (H, W), got {size}")
    height, width = int(size[0]), int(size[1])
    if height <= 0 or width <= 0 or height % patch_size or width % patch_size:
        raise InputError(
            f"image height and width must be positive multiples of {patch_size}, got {height}x{width}"
        )
    return height, width


def check_flow(flow: object, batch: int, frames: int, size: tuple[int, int]) -> torch.Tensor:
    """Return flow magnitudes as ``[B, N, H, W]`` matching the images (3-D gains a batch dim)."""
    if not isinstance(flow, torch.Tensor):
        raise InputError(f"flow_magnitude must be a torch.Tensor or None, got {type(flow).__name__}")
    if not flow.is_floating_point():
        raise InputError(f"flow_magnitude must be floating point (pixels), got {flow.dtype}")
    if flow.dim() == 3:
        flow = flow.unsqueeze(0)
    expected = (batch, frames, *size)
    if tuple(flow.shape) != expected:
        raise InputError(f"flow_magnitude must be [B, N, H, W] = {list(expected)}, got {list(flow.shape)}")
    return flow


def check_tokens(tokens: object, dim: int, size: tuple[int, int], patch_size: int) -> torch.Tensor:
    """Validate encoder tokens ``[B, N, h*w, C]`` against the image size they came from."""
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 4:
        shape = list(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise InputError(f"tokens must be [B, N, P, C], got {shape}")
    height, width = check_image_size(size, patch_size)
    patches = (height // patch_size) * (width // patch_size)
    if tokens.shape[2:] != (patches, dim):
        raise InputError(
            f"tokens {list(tokens.shape)} do not fit image size {height}x{width}: "
            f"expected [B, N, {patches}, {dim}]"
        )
    return tokens
