# SPDX-License-Identifier: Apache-2.0
"""Load a clip's frames and masks at the training size.

Training clips get a square centre crop (side = the short side), then frames are resized with
PIL ``LANCZOS`` and masks with PIL ``NEAREST`` to ``size x size`` (the official recipe);
``crop="none"`` resizes directly, as the official test loader does.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from geomotion_core.errors import InputError
from geomotion_core.pipeline.preprocessing import resize_lanczos


def centre_square(height: int, width: int) -> tuple[slice, slice]:
    """Row and column slices of the centred square whose side is ``min(height, width)``."""
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return slice(top, top + side), slice(left, left + side)


def read_frame(path: Path) -> np.ndarray:
    """``[H, W, 3]`` uint8 RGB."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except OSError as exc:
        raise InputError(f"cannot read frame {path}: {exc}") from exc


def read_mask(path: Path) -> np.ndarray:
    """``[H, W]`` bool: any non-zero value (in any channel, or palette index) is foreground.

    ``.npz`` masks use the archive's first array (loaded without pickle).
    """
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                values = archive[archive.files[0]]
        else:
            with Image.open(path) as image:
                values = np.asarray(image)
    except (OSError, ValueError, IndexError) as exc:
        raise InputError(f"cannot read mask {path}: {exc}") from exc
    values = np.squeeze(values)
    if values.ndim == 3:
        values = values.any(axis=-1)
    if values.ndim != 2:
        raise InputError(f"mask {path} has shape {values.shape}, expected [H, W] or [H, W, C]")
    return values != 0


def load_clip(
    frame_paths: Sequence[Path], mask_paths: Sequence[Path], size: int, crop: str
) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``[N, size, size, 3]`` uint8 and masks ``[N, size, size]`` bool of one clip."""
    images = [read_frame(p) for p in frame_paths]
    height, width = images[0].shape[:2]
    for path, image in zip(frame_paths, images):
        if image.shape[:2] != (height, width):
            raise InputError(f"frame {path} is {image.shape[1]}x{image.shape[0]}, the clip's first {width}x{height}")
    frames = np.stack(images)
    masks = [read_mask(p) for p in mask_paths]
    for path, mask in zip(mask_paths, masks):
        if mask.shape != (height, width):
            raise InputError(f"mask {path} is {mask.shape[1]}x{mask.shape[0]}, its frame {width}x{height}")
    rows, cols = centre_square(height, width) if crop == "center" else (slice(None), slice(None))
    frames = resize_lanczos(np.ascontiguousarray(frames[:, rows, cols]), size, size)
    resized_masks = np.stack([
        np.asarray(Image.fromarray(mask[rows, cols]).resize((size, size), Image.Resampling.NEAREST))
        for mask in masks
    ])
    return frames, resized_masks
