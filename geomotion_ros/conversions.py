# SPDX-License-Identifier: Apache-2.0
"""sensor_msgs/Image and CompressedImage <-> numpy, without cv_bridge.

**One rejection type.** ``image_to_rgb`` and ``compressed_to_rgb`` either return an ``[H, W, 3]``
uint8 RGB frame or raise :class:`geomotion_core.errors.InputError`, never anything else: every
conversion runs behind one guard that turns any other exception (``cv2.error``, ``MemoryError``,
a PIL error, ...) into an InputError naming the message. Their sizes are checked against a
:class:`SizeLimit` *before* anything is allocated; for compressed images the size is read from
the format's header without decoding. The node (and offline bag replay) skip, log and count the
messages these functions reject.

Reading is zero-copy where the layout allows it (``np.frombuffer`` on the message buffer, row
padding sliced away as a strided view); writing uses ``ndarray.tobytes()``, which is ~300x faster
than assigning an array to ``msg.data``. cv_bridge, when importable, only handles encodings this
module does not know (Bayer patterns, ...).
"""
from __future__ import annotations

import io
import re
import sys
import warnings
from dataclasses import dataclass
from functools import wraps
from typing import Callable, TypeVar

import cv2
import numpy as np
import PIL.Image
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from geomotion_core.errors import InputError


Converted = TypeVar("Converted")


@dataclass(frozen=True)
class SizeLimit:
    """The largest decoded image the node accepts (checked before any pixel is allocated)."""

    max_width: int = 4096
    max_height: int = 4096
    max_pixels: int = 64_000_000

    def check(self, width: int, height: int, what: str) -> None:
        """Raise InputError when a ``width`` x ``height`` image is empty or exceeds the limit."""
        if width <= 0 or height <= 0:
            raise InputError(f"empty {what} ({width}x{height})")
        if width > self.max_width or height > self.max_height or width * height > self.max_pixels:
            raise InputError(
                f"{what} of {width}x{height} exceeds the size limit ({self.max_width}x{self.max_height}, "
                f"{self.max_pixels / 1e6:g} MP; parameter input.max_width/max_height/max_megapixels)"
            )


DEFAULT_LIMIT = SizeLimit()


def guarded(convert: Callable[..., Converted]) -> Callable[..., Converted]:
    """Make ``convert`` raise only InputError: any other exception becomes one naming its cause."""

    @wraps(convert)
    def run(*args, **kwargs) -> Converted:
        try:
            return convert(*args, **kwargs)
        except InputError:
            raise
        except Exception as error:  # noqa: BLE001 -- the guard: one bad message must never escape as anything else
            summary = str(error).strip().splitlines()[-1] if str(error).strip() else ""
            raise InputError(f"cannot convert the message: {type(error).__name__}: {summary}") from error

    return run


@dataclass(frozen=True)
class PixelFormat:
    """How one encoding lays out a pixel: element type and channel count."""

    dtype: np.dtype
    channels: int


_U8, _U16, _F32 = np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32)

NAMED_FORMATS: dict[str, PixelFormat] = {
    "rgb8": PixelFormat(_U8, 3),
    "bgr8": PixelFormat(_U8, 3),
    "rgba8": PixelFormat(_U8, 4),
    "bgra8": PixelFormat(_U8, 4),
    "mono8": PixelFormat(_U8, 1),
    "mono16": PixelFormat(_U16, 1),
    "rgb16": PixelFormat(_U16, 3),
    "bgr16": PixelFormat(_U16, 3),
    "yuv422": PixelFormat(_U8, 2),  # ROS's yuv422 is UYVY
    "uyvy": PixelFormat(_U8, 2),
    "yuyv": PixelFormat(_U8, 2),
    "yuv422_yuy2": PixelFormat(_U8, 2),
}
_GENERIC = re.compile(r"^(8U|8S|16U|16S|32S|32F|64F)C([1-4])$")
_GENERIC_DTYPES = {"8U": "u1", "8S": "i1", "16U": "u2", "16S": "i2", "32S": "i4", "32F": "f4", "64F": "f8"}

_TO_RGB_CODES = {
    "bgr8": cv2.COLOR_BGR2RGB,
    "bgr16": cv2.COLOR_BGR2RGB,
    "rgba8": cv2.COLOR_RGBA2RGB,
    "bgra8": cv2.COLOR_BGRA2RGB,
    "yuv422": cv2.COLOR_YUV2RGB_UYVY,
    "uyvy": cv2.COLOR_YUV2RGB_UYVY,
    "yuyv": cv2.COLOR_YUV2RGB_YUYV,
    "yuv422_yuy2": cv2.COLOR_YUV2RGB_YUYV,
}
_LITTLE_ENDIAN_HOST = sys.byteorder == "little"


def pixel_format(encoding: str) -> PixelFormat:
    """The layout of ``encoding``: a named ROS encoding or a generic ``8UC3``-style one."""
    if encoding in NAMED_FORMATS:
        return NAMED_FORMATS[encoding]
    generic = _GENERIC.match(encoding)
    if generic is None:
        raise InputError(f"unsupported image encoding {encoding!r}")
    return PixelFormat(np.dtype(_GENERIC_DTYPES[generic.group(1)]), int(generic.group(2)))


def image_to_array(msg: Image) -> np.ndarray:
    """A view of the message's pixels: ``[H, W]`` for one channel, ``[H, W, C]`` otherwise.

    The view shares memory with ``msg.data`` and keeps the message's byte order (the dtype says
    which); row padding (``step > width * bytes_per_pixel``) is sliced away without copying.
    Raises InputError on an unknown encoding or a buffer that does not match ``step * height``.
    """
    fmt = pixel_format(msg.encoding)
    row_bytes = msg.width * fmt.channels * fmt.dtype.itemsize
    if msg.height == 0 or msg.width == 0:
        raise InputError(f"empty image ({msg.width}x{msg.height})")
    if msg.step < row_bytes:
        raise InputError(f"step {msg.step} is smaller than width x pixel size = {row_bytes} bytes")
    expected = msg.step * msg.height
    if len(msg.data) != expected:
        raise InputError(
            f"image data has {len(msg.data)} bytes, expected step x height = {msg.step} x {msg.height} = {expected}"
        )
    dtype = fmt.dtype.newbyteorder(">" if msg.is_bigendian else "<")
    rows = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)[:, :row_bytes]
    pixels = rows.view(dtype)
    if fmt.channels == 1:
        return pixels
    return pixels.reshape(msg.height, msg.width, fmt.channels)


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Scale integer data to 0..255 by its type's range and float data from [0, 1] (NaN reads as 0)."""
    if pixels.dtype == np.uint8:
        return pixels
    native = pixels.astype(pixels.dtype.newbyteorder("="), copy=False)
    if native.dtype.kind == "f":
        return (np.clip(np.nan_to_num(native), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    info = np.iinfo(native.dtype)
    scaled = (native.astype(np.float32) - info.min) * (255.0 / (info.max - info.min))
    return (scaled + 0.5).astype(np.uint8)


@guarded
def image_to_rgb(msg: Image, limit: SizeLimit = DEFAULT_LIMIT) -> np.ndarray:
    """The image as ``[H, W, 3]`` uint8 RGB (what the backends take), converting as needed.

    rgb8 input is returned as a zero-copy view when its rows are unpadded; everything else is
    converted with OpenCV. 16-bit and integer data are scaled by their type's range, float data
    is read as intensities in [0, 1]. Unknown encodings go to cv_bridge when it is importable.
    Raises InputError (only) for a message that cannot be used, including one larger than ``limit``.
    """
    limit.check(msg.width, msg.height, "image")
    if msg.encoding not in NAMED_FORMATS and not _GENERIC.match(msg.encoding):
        return _cv_bridge_rgb(msg)
    pixels = image_to_array(msg)
    if msg.encoding in ("yuv422", "uyvy", "yuyv", "yuv422_yuy2"):
        if msg.width % 2:
            raise InputError(f"{msg.encoding} needs an even width (two pixels share their chroma), got {msg.width}")
        return cv2.cvtColor(np.ascontiguousarray(pixels), _TO_RGB_CODES[msg.encoding])
    pixels = _to_uint8(pixels)
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if channels == 1:
        return cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_GRAY2RGB)
    if msg.encoding in _TO_RGB_CODES:
        return cv2.cvtColor(np.ascontiguousarray(pixels), _TO_RGB_CODES[msg.encoding])
    if channels == 3:
        return pixels
    if channels == 4:
        return np.ascontiguousarray(pixels[..., :3])
    raise InputError(f"cannot read a 2-channel {msg.encoding!r} image as colour")


def _cv_bridge_rgb(msg: Image) -> np.ndarray:
    """Convert an encoding this module does not know with cv_bridge, if it is installed."""
    try:
        from cv_bridge import CvBridge
    except ImportError:
        raise InputError(f"unsupported image encoding {msg.encoding!r} (and cv_bridge is not installed)") from None
    try:
        return CvBridge().imgmsg_to_cv2(msg, desired_encoding="rgb8")
    except Exception as error:  # cv_bridge raises its own CvBridgeError and cv2.error types
        raise InputError(f"cv_bridge cannot convert encoding {msg.encoding!r}: {error}") from None


def compressed_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` of an encoded image read from its header only (nothing is decoded).

    Raises InputError when the bytes are empty or not an image format PIL can identify.
    """
    if not data:
        raise InputError("empty compressed image (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)
            with PIL.Image.open(io.BytesIO(data)) as image:  # lazy: reads the header only
                return image.size
    except PIL.Image.DecompressionBombError as error:
        raise InputError(f"compressed image too large to open: {error}") from None
    except (PIL.UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise InputError(f"unrecognised compressed image ({len(data)} bytes): {error}") from None


def _check_complete(data: bytes) -> None:
    """Reject a JPEG or PNG whose end marker is missing (a truncated transfer decodes half grey)."""
    if data[:2] == b"\xff\xd8" and not data.rstrip(b"\0").endswith(b"\xff\xd9"):
        raise InputError(f"truncated JPEG ({len(data)} bytes, no end-of-image marker)")
    if data[:8] == b"\x89PNG\r\n\x1a\n" and b"IEND" not in data[-16:]:
        raise InputError(f"truncated PNG ({len(data)} bytes, no IEND chunk)")


@guarded
def compressed_to_rgb(msg: CompressedImage, limit: SizeLimit = DEFAULT_LIMIT) -> np.ndarray:
    """Decode a CompressedImage (JPEG, PNG, ...) to ``[H, W, 3]`` uint8 RGB.

    The decoded size is read from the header and checked against ``limit`` before decoding; a
    truncated JPEG/PNG is rejected. Raises InputError (only) for a message that cannot be used.
    """
    data = bytes(msg.data)
    width, height = compressed_size(data)
    limit.check(width, height, f"compressed image (format {msg.format!r})")
    _check_complete(data)
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"cannot decode compressed image (format {msg.format!r}, {len(data)} bytes)")
    if bgr.shape[:2] != (height, width):
        raise InputError(f"compressed image decoded to {bgr.shape[1]}x{bgr.shape[0]}, its header says {width}x{height}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def array_to_image(pixels: np.ndarray, encoding: str, header: Header | None = None) -> Image:
    """Build an Image from an array whose dtype and channel count match ``encoding``.

    Rows are written unpadded in the array's byte order (``is_bigendian`` says which).
    """
    fmt = pixel_format(encoding)
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if pixels.ndim not in (2, 3) or channels != fmt.channels or pixels.dtype.newbyteorder("=") != fmt.dtype:
        raise InputError(
            f"array of shape {pixels.shape} and dtype {pixels.dtype} does not fit encoding {encoding!r}"
        )
    order = pixels.dtype.byteorder
    big_endian = order == ">" or (order == "=" and not _LITTLE_ENDIAN_HOST)
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(pixels.shape[0]), int(pixels.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = int(big_endian and fmt.dtype.itemsize > 1)
    msg.step = msg.width * fmt.channels * fmt.dtype.itemsize
    msg.data = np.ascontiguousarray(pixels).tobytes()
    return msg
