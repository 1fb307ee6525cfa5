# SPDX-License-Identifier: Apache-2.0
"""The overlay video: each input frame with its moving pixels tinted and outlined."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from geomotion_core.errors import GeoMotionError

TINT_RGB = np.array([255, 40, 40], dtype=np.uint8)
OUTLINE_RGB = (255, 255, 0)


def render_overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """RGB frame with the mask (0/255 or bool) blended in red and its contour drawn in yellow."""
    import cv2

    moving = mask.astype(np.uint8)
    tinted = cv2.addWeighted(image, 1.0 - alpha, np.broadcast_to(TINT_RGB, image.shape), alpha, 0.0)
    result = image.copy()
    cv2.copyTo(tinted, moving, result)
    contours, _ = cv2.findContours(moving, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(result, contours, -1, OUTLINE_RGB, thickness=max(1, round(min(image.shape[:2]) / 240)))
    return result


class OverlayVideoWriter:
    """Writes overlay frames to an MP4 file (``mp4v``) as they come.

    ``render`` draws one frame from the image and its mask (or instance map); default
    :func:`render_overlay`.
    """

    def __init__(self, path: Path, fps: float, width: int, height: int,
                 render: Callable[[np.ndarray, np.ndarray], np.ndarray] = render_overlay) -> None:
        import cv2

        self.path = path
        self.size = (width, height)
        self._render = render
        self._writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, self.size)
        if not self._writer.isOpened():
            raise GeoMotionError(f"cannot open {path} for writing an MP4 video")

    def write(self, image: np.ndarray, mask: np.ndarray) -> None:
        """Append one RGB frame with its mask."""
        import cv2

        self._writer.write(cv2.cvtColor(self._render(image, mask), cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        self._writer.release()

    def verify(self, frames: int) -> None:
        """Raise if the closed file does not hold ``frames`` playable frames (e.g. the disk filled up).

        OpenCV's writer does not report failed writes, so the file is opened again and counted.
        """
        import cv2

        capture = cv2.VideoCapture(str(self.path))
        try:
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
        finally:
            capture.release()
        if frames and count != frames:
            raise GeoMotionError(f"{self.path} holds {count} of the {frames} frames written (is the disk full?)")

    def __enter__(self) -> "OverlayVideoWriter":
        return self

    def __exit__(self, *_) -> None:
        self.close()
