# SPDX-License-Identifier: Apache-2.0
"""Frame preprocessing for the network, as the official inference does it.

The official pipeline resizes every frame to 518x518 with PIL ``LANCZOS`` (no crop, no padding),
converts to [0, 1] and applies the ImageNet normalisation. The model's ``forward`` normalises once
more, so the official weights expect the normalisation twice; this module applies the first one.
With ``keep_aspect`` the frame keeps its aspect ratio instead: the long side becomes ``size`` and
the short side the nearest multiple of the patch size.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PATCH_SIZE = 14


def model_input_size(height: int, width: int, size: int, keep_aspect: bool) -> tuple[int, int]:
    """``(height, width)`` the network sees for a frame of the given size."""
    if not keep_aspect:
        return size, size
    scale = size / max(height, width)
    short = max(PATCH_SIZE, round(min(height, width) * scale / PATCH_SIZE) * PATCH_SIZE)
    return (size, short) if height >= width else (short, size)


def resize_pil(frames: np.ndarray, height: int, width: int, resample: int) -> np.ndarray:
    """Resize ``[N, H, W(, C)]`` uint8 images with PIL's ``resample`` filter -> ``[N, height, width(, C)]``.

    PIL resizes one image per call and releases the GIL while it does, so the images of a batch
    are resized on a few threads (one per image, at most one per CPU). At the same size the images
    are returned as they are (PIL would copy them unchanged).
    """
    from PIL import Image

    if frames.shape[1:3] == (height, width):
        return frames
    resized = np.empty((len(frames), height, width, *frames.shape[3:]), np.uint8)

    def resize_one(index: int) -> None:
        resized[index] = np.asarray(Image.fromarray(frames[index]).resize((width, height), resample))

    workers = min(len(frames), os.cpu_count() or 1)
    if workers <= 1:
        for index in range(len(frames)):
            resize_one(index)
        return resized
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pil-resize") as pool:
        list(pool.map(resize_one, range(len(frames))))
    return resized


def resize_lanczos(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize ``[N, H, W, 3]`` uint8 RGB frames with PIL LANCZOS (the official preprocessing)."""
    from PIL import Image

    return resize_pil(frames, height, width, Image.Resampling.LANCZOS)


def imagenet_normalise(images: torch.Tensor) -> torch.Tensor:
    """``(x - mean) / std`` over the channel axis of ``[..., 3, H, W]`` images in [0, 1]."""
    mean = images.new_tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(3, 1, 1)
    return (images - mean) / std


def imagenet_denormalise(images: torch.Tensor) -> torch.Tensor:
    """Invert :func:`imagenet_normalise` and clamp to [0, 1] (the frames the flow sees)."""
    mean = images.new_tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(3, 1, 1)
    return (images * std + mean).clamp_(0.0, 1.0)


def preprocess_frames(
    frames: np.ndarray, height: int, width: int, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Official preprocessing of ``[N, H, W, 3]`` uint8 RGB -> ``[N, 3, height, width]`` float32.

    The result is normalised once; the model normalises it a second time in ``forward``.
    """
    resized = torch.from_numpy(resize_lanczos(frames, height, width)).to(device)
    images = resized.permute(0, 3, 1, 2).float().div_(255.0)
    return imagenet_normalise(images)
