# SPDX-License-Identifier: Apache-2.0
"""Read frames one at a time from a video file, a folder of images or a glob pattern.

Every reader streams: at most one decoded frame is held at a time, so memory does not grow with
the length of the input. Frames carry the name their outputs are written under (the file stem for
image inputs, the zero-padded index ``%05d`` for videos) and a timestamp in seconds: an image's
stamp is its position in the sorted file list over the frame rate, so a skipped file (empty,
truncated, undecodable or of another size; logged and counted) does not shift the later stamps.
"""
from __future__ import annotations

import glob
import logging
import math
import os
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from geomotion_core.errors import InputError

LOGGER = logging.getLogger(__name__)

JPEG_END = b"\xff\xd9"  # the end-of-image marker: a JPEG without it was cut short
PNG_END = b"IEND\xaeB`\x82"  # the IEND chunk and its CRC close every complete PNG
FFMPEG_QUIET = -8  # AV_LOG_QUIET
TAIL_BYTES = 64  # how much of a file's end is read to check it is complete
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
GLOB_CHARACTERS = frozenset("*?[")
DEFAULT_FPS = 30.0
MIN_FPS, MAX_FPS = 1e-3, 1000.0  # frame rates a stamp or a video can use (an MP4 cannot go faster)


@dataclass(frozen=True)
class Frame:
    """One decoded input frame."""

    index: int  # position in the stream, counting only frames that were read successfully
    name: str  # output file stem
    stamp: float  # seconds
    image: np.ndarray  # [H, W, 3] uint8 RGB


def natural_sort_key(path: Path) -> tuple:
    """Sort key that orders ``frame2`` before ``frame10``."""
    return tuple(int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name))


class FrameSource(ABC):
    """An iterable of frames with the stream's frame rate, frame size and (expected) length."""

    fps: float
    height: int
    width: int
    skipped: int  # frames that could not be decoded and were left out (logged)

    @abstractmethod
    def __iter__(self) -> Iterator[Frame]:
        """Decode the frames one at a time."""

    @abstractmethod
    def __len__(self) -> int:
        """The number of frames (a video container's count may be an estimate)."""


class ImageSequenceSource(FrameSource):
    """Image files in a given order; stems name the outputs, stamps are ``index / fps``."""

    def __init__(self, paths: Sequence[Path], fps: float) -> None:
        self.paths = list(paths)
        _check_unique_stems(self.paths)
        self.fps = fps
        self.skipped = 0
        first = next((image for image in map(_read_image, self.paths) if image is not None), None)
        if first is None:
            raise InputError(f"none of the {len(self.paths)} image files can be decoded "
                             f"(empty, truncated or corrupt), e.g. {self.paths[0]}")
        self.height, self.width = first.shape[:2]

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[Frame]:
        self.skipped = 0
        index = 0
        for position, path in enumerate(self.paths):
            image = _read_image(path)
            if image is None or image.shape[:2] != (self.height, self.width):
                reason = ("is empty, truncated or cannot be decoded" if image is None
                          else f"has size {image.shape[1]}x{image.shape[0]}")
                LOGGER.warning("skipping frame %s: it %s (stream is %dx%d)", path, reason, self.width, self.height)
                self.skipped += 1
                continue
            yield Frame(index=index, name=path.stem, stamp=position / self.fps, image=image)
            index += 1


class VideoSource(FrameSource):
    """A video file decoded with OpenCV; outputs are named ``%05d``, stamps are ``index / fps``."""

    def __init__(self, path: Path, fallback_fps: float) -> None:
        import cv2

        self.path = path
        self.skipped = 0
        # FFmpeg's own error lines ("moov atom not found") would precede the one-line InputError;
        # OPENCV_FFMPEG_LOGLEVEL set by the user still wins
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", str(FFMPEG_QUIET))
        capture = cv2.VideoCapture(str(path))
        try:
            ok, first = capture.read() if capture.isOpened() else (False, None)
            if not ok or first is None:
                raise InputError(f"cannot read any frame from video {path} (unreadable, corrupt or empty)")
            fps = capture.get(cv2.CAP_PROP_FPS)
            self.frame_count = max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 1)
        finally:
            capture.release()
        self.fps = fps if math.isfinite(fps) and MIN_FPS <= fps <= MAX_FPS else fallback_fps
        self.height, self.width = first.shape[:2]

    def __len__(self) -> int:
        return self.frame_count

    def __iter__(self) -> Iterator[Frame]:
        import cv2

        capture = cv2.VideoCapture(str(self.path))
        try:
            index = 0
            while True:
                ok, bgr = capture.read()
                if not ok:
                    break
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                yield Frame(index=index, name=f"{index:05d}", stamp=index / self.fps, image=rgb)
                index += 1
        finally:
            capture.release()


def open_frames(source: str | Path, fps: float | None = None) -> FrameSource:
    """Open a video file, a folder of images or a glob pattern of images.

    Args:
        source: the input path or pattern.
        fps: frame rate used for timestamps of image inputs, and of videos whose container has
            none; default 30.
    Raises:
        InputError: missing path, no images, or a video that yields no frame.
    """
    rate = float(fps) if fps else DEFAULT_FPS
    text = str(source)
    path = Path(text).expanduser()
    if path.is_dir():
        try:
            paths = _image_files(path.iterdir())
        except OSError as exc:
            raise InputError(f"cannot read folder {path}: {exc.strerror or exc}") from None
        if not paths:
            raise InputError(f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder {path}")
        return ImageSequenceSource(paths, rate)
    if path.is_file():
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return ImageSequenceSource([path], rate)
        return VideoSource(path, rate)
    if GLOB_CHARACTERS & set(text):
        paths = _image_files(Path(match) for match in glob.glob(str(path), recursive=True))
        if not paths:
            raise InputError(f"no image files match the pattern {text}")
        return ImageSequenceSource(paths, rate)
    raise InputError(f"input not found: {text}")


def _image_files(candidates) -> list[Path]:
    files = [p for p in candidates if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    return sorted(files, key=natural_sort_key)


def _check_unique_stems(paths: Sequence[Path]) -> None:
    seen: dict[str, Path] = {}
    for path in paths:
        if path.stem in seen:
            raise InputError(f"two input frames share the name {path.stem!r}: {seen[path.stem]} and {path}")
        seen[path.stem] = path


def _read_image(path: Path) -> np.ndarray | None:
    """The RGB image of a complete, decodable file; None otherwise (OpenCV would decode a cut
    JPEG as a partly grey image, so JPEG and PNG files must end with their closing marker)."""
    import cv2

    if not _is_complete(path):
        return None
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _is_complete(path: Path) -> bool:
    """False for an empty or unreadable file, and for a JPEG or PNG without its closing marker."""
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
            handle.seek(0, 2)
            handle.seek(max(handle.tell() - TAIL_BYTES, 0))
            tail = handle.read()
    except OSError as exc:
        LOGGER.warning("cannot read %s: %s", path, exc.strerror or exc)
        return False
    if head.startswith(b"\xff\xd8"):
        return JPEG_END in tail  # in the tail: some writers pad or append a few bytes after it
    if head.startswith(b"\x89PNG"):
        return PNG_END in tail
    return bool(head)
