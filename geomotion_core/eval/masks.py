# SPDX-License-Identifier: Apache-2.0
"""Reading mask images and putting masks into the form each protocol scores.

Mask files are read as label maps: palette PNGs give their palette indices (object ids, as
the DAVIS toolkits read them), grey images their values, colour images their luminance (as
GeoMotion's ``convert('L')``). Foreground is any label above a threshold, 0 by default.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from geomotion_core.errors import InputError

EASI3R_LONG_SIDE = 512
EASI3R_MULTIPLE = 16
GEOMOTION_THRESHOLD = 0.1  # GeoMotion eval.py: bilinear upsampling, then probability > 0.1


def read_labels(path: Path) -> np.ndarray:
    """The label map ``[H, W]`` of one mask file; InputError if it cannot be decoded."""
    try:
        with Image.open(path) as image:
            if image.mode not in ("P", "L", "1", "I", "I;16"):
                image = image.convert("L")
            labels = np.asarray(image)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read mask {path}: {exc}") from exc
    if labels.ndim != 2:
        raise InputError(f"mask {path} is not a single-channel image (shape {labels.shape})")
    return labels


def read_merged(paths: Sequence[Path]) -> np.ndarray:
    """The union (as a 0/1 uint8 map) of several per-object mask files of one frame."""
    if len(paths) == 1:
        return read_labels(paths[0])
    layers = [read_labels(path) > 0 for path in paths]
    shapes = {layer.shape for layer in layers}
    if len(shapes) > 1:
        raise InputError(f"object masks of one frame differ in size {sorted(shapes)}: {[str(p) for p in paths]}")
    return np.logical_or.reduce(layers).astype(np.uint8)


def foreground(labels: np.ndarray, threshold: float = 0) -> np.ndarray:
    """Boolean foreground ``labels > threshold`` (all object ids merged)."""
    return labels > threshold


def proposal_ids(labels: np.ndarray) -> np.ndarray:
    """Object ids of a predicted label stack; a binary 0/255 mask is one proposal with id 1.

    (The DAVIS-2017 toolkit would read a 0/255 mask as 255 proposals and stop; a binary mask
    is read here as the single object it is.)
    """
    if labels.dtype == bool:
        return labels.astype(np.uint8)
    values = np.unique(labels)
    if np.isin(values, (0, 255)).all():
        return (labels > 0).astype(np.uint8)
    return labels


def easi3r_crop(mask: np.ndarray) -> np.ndarray:
    """Easi3R's ``crop_img(512, square_ok=True)`` of a boolean mask, as a boolean mask.

    Long side resized to 512 with Pillow (NEAREST when it shrinks, BICUBIC otherwise), then a
    centre crop to multiples of 16; every non-zero pixel of the resized 0/255 image is foreground.
    For 854x480 DAVIS frames this gives 512x288.
    """
    image = Image.fromarray(np.where(mask, 255, 0).astype(np.uint8))
    width, height = image.size
    side = max(width, height)
    size = (round(width * EASI3R_LONG_SIDE / side), round(height * EASI3R_LONG_SIDE / side))
    resample = Image.Resampling.NEAREST if side > EASI3R_LONG_SIDE else Image.Resampling.BICUBIC
    image = image.resize(size, resample)
    centre_x, centre_y = size[0] // 2, size[1] // 2
    half_w = (2 * centre_x // EASI3R_MULTIPLE) * EASI3R_MULTIPLE // 2
    half_h = (2 * centre_y // EASI3R_MULTIPLE) * EASI3R_MULTIPLE // 2
    box = (centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h)
    return np.asarray(image.crop(box)) > 0.5


def binarize_probability(
    probability: np.ndarray, size: tuple[int, int], threshold: float = GEOMOTION_THRESHOLD
) -> np.ndarray:
    """GeoMotion's evaluation binarisation of probability maps ``[N, h, w]`` at ``size`` (H, W).

    The maps are quantised to 8 bits, resized bilinearly (antialiased when shrinking, like
    Pillow's BILINEAR) in one batched call, and thresholded at ``threshold``.
    """
    import torch
    import torch.nn.functional as functional

    probability = np.asarray(probability, dtype=np.float32)
    single = probability.ndim == 2
    stack = probability[None] if single else probability
    levels = torch.from_numpy(np.rint(np.clip(stack, 0.0, 1.0) * 255.0))
    if tuple(stack.shape[-2:]) != tuple(size):
        levels = functional.interpolate(
            levels[:, None], size=tuple(size), mode="bilinear", align_corners=False, antialias=True
        )[:, 0].round_()
    masks = (levels / 255.0 > threshold).numpy()
    return masks[0] if single else masks
