# SPDX-License-Identifier: Apache-2.0
"""Binary little-endian PLY point clouds written with numpy."""
from __future__ import annotations

from pathlib import Path

import numpy as np

VERTEX_DTYPE = np.dtype(
    [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")]
)


def write_ply(path: Path, points: np.ndarray, colors: np.ndarray | None = None) -> None:
    """Write ``points [M, 3]`` (float) with optional ``colors [M, 3]`` uint8 RGB (default grey)."""
    vertices = np.empty(len(points), dtype=VERTEX_DTYPE)
    for axis, name in enumerate("xyz"):
        vertices[name] = points[:, axis]
    rgb = np.full((len(points), 3), 200, np.uint8) if colors is None else colors
    for channel, name in enumerate(("red", "green", "blue")):
        vertices[name] = rgb[:, channel]
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(points)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\n"
        "end_header\n"
    )
    with open(path, "wb") as handle:
        handle.write(header.encode("ascii"))
        handle.write(vertices.tobytes())


def read_ply(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a PLY written by :func:`write_ply` -> ``(points [M, 3] float32, colors [M, 3] uint8)``."""
    data = Path(path).read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    vertices = np.frombuffer(data[end:], dtype=VERTEX_DTYPE)
    points = np.stack([vertices[name] for name in "xyz"], axis=1)
    colors = np.stack([vertices[name] for name in ("red", "green", "blue")], axis=1)
    return points, colors
