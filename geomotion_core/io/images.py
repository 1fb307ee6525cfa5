# SPDX-License-Identifier: Apache-2.0
"""Single-image PNG outputs: binary masks and 8-bit probability maps."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from geomotion_core.errors import GeoMotionError


def probability_to_uint8(probability: np.ndarray) -> np.ndarray:
    """Map probabilities in [0, 1] to 8-bit grey levels (0..255, rounded)."""
    return np.rint(np.clip(probability, 0.0, 1.0) * 255.0).astype(np.uint8)


def write_png(path: Path, image: np.ndarray, compression: int = 1) -> None:
    """Write a single-channel uint8 image (or an RGB image) as PNG (zlib level 0-9; 1 is fastest)."""
    import cv2

    pixels = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), pixels, [cv2.IMWRITE_PNG_COMPRESSION, compression]):
        raise GeoMotionError(f"cannot write {path}")
