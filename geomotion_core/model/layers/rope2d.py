# SPDX-License-Identifier: Apache-2.0
"""2-D rotary position embedding (RoPE2D) as used by Pi3 / GeoMotion.

Each head's channels are split in two: the first half is rotated by the token's row (y), the
second half by its column (x), both in the rotate-half (non-interleaved) pairing. The inverse
frequencies are computed in float32 (as officially); the cos/sin tables in the token dtype.
"""
from __future__ import annotations

from typing import NamedTuple

import torch


class RotaryTables(NamedTuple):
    """Per-token cos/sin, ``[1, 1, T, head_dim]``, laid out to match ``rotate_halves``."""

    cos: torch.Tensor
    sin: torch.Tensor

    def repeat_frames(self, num_frames: int) -> "RotaryTables":
        """Tables for ``num_frames`` frames flattened frame-major (global attention)."""
        return RotaryTables(self.cos.repeat(1, 1, num_frames, 1), self.sin.repeat(1, 1, num_frames, 1))


def patch_positions(
    grid_h: int, grid_w: int, num_special: int, device: torch.device | str | None = None
) -> torch.Tensor:
    """Integer ``(y, x)`` positions ``[num_special + h*w, 2]`` of one frame's tokens.

    Special (register) tokens sit at ``(0, 0)``; patches are row-major with a +1 offset, so no
    patch shares the registers' unrotated position.
    """
    rows = torch.arange(1, grid_h + 1, device=device)
    cols = torch.arange(1, grid_w + 1, device=device)
    grid = torch.cartesian_prod(rows, cols)
    special = torch.zeros(num_special, 2, dtype=grid.dtype, device=device)
    return torch.cat([special, grid], dim=0)


def rotary_tables(
    positions: torch.Tensor, head_dim: int, base: float, dtype: torch.dtype
) -> RotaryTables:
    """cos/sin tables for ``positions`` ``[T, 2]`` and heads of width ``head_dim``."""
    axis_dim = head_dim // 2
    inv_freq = 1.0 / (base ** (torch.arange(0, axis_dim, 2, device=positions.device).float() / axis_dim))
    angles = positions.to(inv_freq.dtype)[..., None] * inv_freq  # [T, 2, axis_dim / 2], float32
    angles = angles.to(dtype)
    angles = torch.cat([angles, angles], dim=-1).flatten(-2)  # [T, head_dim]: y half, then x half
    return RotaryTables(angles.cos()[None, None], angles.sin()[None, None])


def rotate_halves(x: torch.Tensor) -> torch.Tensor:
    """Rotate-half within each of the y and x channel chunks: ``[a, b, c, d] -> [-b, a, -d, c]``."""
    a, b, c, d = x.chunk(4, dim=-1)
    return torch.cat([-b, a, -d, c], dim=-1)


def apply_rotary(x: torch.Tensor, tables: RotaryTables) -> torch.Tensor:
    """Rotate queries or keys ``[B, heads, T, head_dim]`` by their 2-D positions."""
    return x * tables.cos + rotate_halves(x) * tables.sin
