# SPDX-License-Identifier: Apache-2.0
"""Instance maps as indexed PNGs with the DAVIS 2017 palette, and overlays coloured per object id.

DAVIS 2017 stores object ids as palette indices (0 background) with the PASCAL VOC colour map;
the DAVIS toolkits and :func:`geomotion_core.eval.masks.read_labels` read the indices back.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from geomotion_core.errors import GeoMotionError, InputError

PALETTE_SIZE = 256


def davis_palette() -> np.ndarray:
    """The DAVIS 2017 (PASCAL VOC) palette ``[256, 3]`` uint8: the bits of each index spread over R, G, B."""
    index = np.arange(PALETTE_SIZE)
    colours = np.zeros((PALETTE_SIZE, 3), np.int64)
    for bit in range(8):
        for channel in range(3):
            colours[:, channel] |= ((index >> (3 * bit + channel)) & 1) << (7 - bit)
    return colours.astype(np.uint8)


def write_indexed_png(path: Path, ids: np.ndarray) -> None:
    """Write object ids ``[H, W]`` (0 background, at most 255) as a palette PNG."""
    if ids.ndim != 2:
        raise InputError(f"an instance map must be 2-D, got shape {ids.shape}")
    if ids.size and int(ids.max()) >= PALETTE_SIZE:
        raise InputError(f"an indexed PNG holds ids up to {PALETTE_SIZE - 1}, got {int(ids.max())}")
    image = Image.fromarray(ids.astype(np.uint8), mode="P")
    image.putpalette(davis_palette().ravel().tolist())
    try:
        image.save(path, optimize=False, compress_level=1)
    except OSError as exc:
        raise GeoMotionError(f"cannot write {path}: {exc.strerror or exc}") from exc


def write_instance_png(path: Path, ids: np.ndarray) -> None:
    """Write an instance map: a DAVIS palette PNG while ids fit 8 bits, else a 16-bit grey PNG."""
    if ids.size == 0 or int(ids.max()) < PALETTE_SIZE:
        write_indexed_png(path, ids)
        return
    import cv2

    if not cv2.imwrite(str(path), ids.astype(np.uint16)):
        raise GeoMotionError(f"cannot write {path}")


def id_colours(ids: np.ndarray) -> np.ndarray:
    """An RGB colour per pixel ``[H, W, 3]``: the palette colour of its id (ids above 255 wrap, skipping 0)."""
    palette = davis_palette()
    index = np.where(ids > 0, (ids.astype(np.int64) - 1) % (PALETTE_SIZE - 1) + 1, 0)
    return palette[index]


def render_instances(image: np.ndarray, ids: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """RGB frame with each object blended in its id's colour and outlined in white."""
    import cv2

    moving = ids > 0
    blended = cv2.addWeighted(image, 1.0 - alpha, id_colours(ids), alpha, 0.0)
    result = np.where(moving[..., None], blended, image)
    edges = cv2.morphologyEx(ids.astype(np.float32), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    result[edges & moving] = 255
    return result
