# SPDX-License-Identifier: Apache-2.0
"""How each protocol brings a probability map from the network's size to the frame size.

The network predicts at its own input size (518x518 officially); every front door resizes that
probability to the frame size before thresholding, and the official scripts do it two ways:

- :func:`resize_bilinear` — bilinear on the float probability, no antialiasing (``cv2.INTER_LINEAR``,
  as the official ``motion_seg_inference.py`` overlays do). The streaming engine and the ROS node
  get it on the backend's device; the ``official`` chunk protocol as :func:`bilinear_resize`.
- :func:`official_eval_resize` — exactly the last step of the official ``eval.py``: the probability
  truncated to 8 bits (``(p * 255).astype(uint8)``), resized with PIL ``BILINEAR`` (which widens its
  filter when shrinking, i.e. antialiases), divided by 255. Thresholding the result at ``> 0.1``
  gives the official evaluation mask. Used by the ``eval`` protocol, with or without SAM2.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from geomotion_core.pipeline.preprocessing import resize_pil


def resize_bilinear(maps: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear resize of ``[N, C, h, w]`` float maps (as ``cv2.INTER_LINEAR``); a no-op at the same size."""
    if maps.shape[-2:] == (height, width):
        return maps
    return F.interpolate(maps, size=(height, width), mode="bilinear", align_corners=False)


def bilinear_resize(probability: np.ndarray, height: int, width: int) -> np.ndarray:
    """:func:`resize_bilinear` of ``[N, h, w]`` float32 maps on the CPU (the ``official`` protocol)."""
    if probability.shape[1:] == (height, width):
        return probability
    return resize_bilinear(torch.from_numpy(probability)[:, None], height, width)[:, 0].numpy()


def to_official_levels(probability: np.ndarray) -> np.ndarray:
    """``(p * 255).astype(uint8)`` of float32 maps, as the official evaluation: truncation, not rounding."""
    return (np.asarray(probability, dtype=np.float32) * 255).astype(np.uint8)


def official_eval_resize(probability: np.ndarray, height: int, width: int) -> np.ndarray:
    """The official evaluation's final resize of ``[N, h, w]`` probabilities to ``[N, height, width]``.

    Returns float32 maps on the 8-bit grid (``level / 255``): threshold them with ``> t`` to get the
    official masks. At the same size only the 8-bit truncation applies.
    """
    from PIL import Image

    levels = resize_pil(to_official_levels(probability), height, width, Image.Resampling.BILINEAR)
    return (levels / 255.0).astype(np.float32)
