"""Image <-> numpy conversion on a rendered frame: every encoding, row padding, big-endian data."""
from __future__ import annotations

import struct
import time
import zlib

import cv2
import numpy as np
import pytest

pytest.importorskip("rclpy", reason="needs the ROS 2 Python packages (PyPI wheels or a ROS install)")

from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from geomotion_core.demo.clip import DemoClipConfig, render_clip  # noqa: E402
from geomotion_core.errors import InputError  # noqa: E402
from geomotion_ros.conversions import (  # noqa: E402
    NAMED_FORMATS,
    SizeLimit,
    array_to_image,
    compressed_size,
    compressed_to_rgb,
    image_to_array,
    image_to_rgb,
)

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    """One frame of the demo clip (textured world and objects), 214x120 RGB (even width: YUV 4:2:2 pairs fit)."""
    return render_clip(DemoClipConfig(frames=1, width=214, height=120)).frames[0]


def encode(rgb: np.ndarray, encoding: str) -> np.ndarray:
    """The frame as the array a camera would send in ``encoding``."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return {
        "rgb8": rgb,
        "bgr8": cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
        "rgba8": cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA),
        "bgra8": cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA),
        "mono8": gray,
        "8UC1": gray,
        "8UC3": rgb,
        "mono16": gray.astype(np.uint16) * 257,
        "16UC1": gray.astype(np.uint16) * 257,
        "rgb16": rgb.astype(np.uint16) * 257,
        "bgr16": cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257,
        "32FC1": gray.astype(np.float32) / 255.0,
        "yuv422": cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_UYVY),
        "uyvy": cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_UYVY),
        "yuyv": cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_YUYV),
    }[encoding]


ENCODINGS = ["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "8UC1", "8UC3", "mono16", "16UC1", "rgb16", "bgr16",
             "32FC1", "yuv422", "uyvy", "yuyv"]
EXACT_COLOUR = ["rgb8", "bgr8", "rgba8", "bgra8", "8UC3", "rgb16", "bgr16"]
EXACT_GRAY = ["mono8", "8UC1", "mono16", "16UC1", "32FC1"]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_round_trip_every_encoding(rgb, encoding):
    pixels = encode(rgb, encoding)
    header = Header(frame_id="camera_optical")
    header.stamp.sec, header.stamp.nanosec = 1_700_000_000, 123_456_789
    msg = array_to_image(pixels, encoding, header)
    assert (msg.height, msg.width, msg.encoding) == (120, 214, encoding)
    assert msg.step * msg.height == len(msg.data)
    assert msg.header.frame_id == "camera_optical" and msg.header.stamp.nanosec == 123_456_789
    np.testing.assert_array_equal(image_to_array(msg), pixels)


@pytest.mark.parametrize("encoding", EXACT_COLOUR)
def test_colour_encodings_read_as_the_same_rgb(rgb, encoding):
    np.testing.assert_array_equal(image_to_rgb(array_to_image(encode(rgb, encoding), encoding)), rgb)


@pytest.mark.parametrize("encoding", EXACT_GRAY)
def test_gray_encodings_read_as_replicated_gray(rgb, encoding):
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    out = image_to_rgb(array_to_image(encode(rgb, encoding), encoding))
    assert out.dtype == np.uint8 and out.shape == (120, 214, 3)
    np.testing.assert_array_equal(out, np.repeat(gray[..., None], 3, axis=2))


@pytest.mark.parametrize("encoding", ["yuv422", "uyvy", "yuyv"])
def test_yuv422_decodes_close_to_the_source(rgb, encoding):
    out = image_to_rgb(array_to_image(encode(rgb, encoding), encoding))
    error = np.abs(out.astype(np.int16) - rgb.astype(np.int16))
    assert out.shape == rgb.shape
    assert error.mean() < 4.0  # chroma is subsampled 2:1 horizontally, luma is kept
    assert error.mean() < np.abs(out.astype(np.int16) - rgb[:, ::-1].astype(np.int16)).mean() / 4


def padded(msg: Image, extra: int) -> Image:
    """The same image with ``extra`` junk bytes at the end of every row."""
    rows = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)
    junk = np.full((msg.height, extra), 0xAB, np.uint8)
    out = Image(header=msg.header, height=msg.height, width=msg.width, encoding=msg.encoding,
                is_bigendian=msg.is_bigendian, step=msg.step + extra)
    out.data = np.hstack([rows, junk]).tobytes()
    return out


@pytest.mark.parametrize("encoding", ["rgb8", "mono16", "32FC1", "bgra8"])
def test_row_padding_is_sliced_away_without_copying(rgb, encoding):
    pixels = encode(rgb, encoding)
    msg = padded(array_to_image(pixels, encoding), extra=10)
    view = image_to_array(msg)
    np.testing.assert_array_equal(view, pixels)
    assert np.shares_memory(view, np.frombuffer(msg.data, np.uint8))


def test_padded_rgb8_reads_as_rgb(rgb):
    np.testing.assert_array_equal(image_to_rgb(padded(array_to_image(rgb, "rgb8"), extra=6)), rgb)


@pytest.mark.parametrize("encoding", ["mono16", "16UC1", "32FC1", "bgr16"])
def test_big_endian_data(rgb, encoding):
    native = encode(rgb, encoding)
    if native.dtype == np.uint16:
        native = native // 257 * 256 + 3  # distinct high and low bytes, so the order matters
    big = native.astype(native.dtype.newbyteorder(">"))
    msg = array_to_image(big, encoding)
    assert msg.is_bigendian == 1
    assert bytes(msg.data) == big.tobytes() != native.tobytes()
    np.testing.assert_array_equal(image_to_array(msg), native)
    np.testing.assert_array_equal(image_to_rgb(msg), image_to_rgb(array_to_image(native, encoding)))


def test_unknown_encoding_is_rejected(rgb):
    msg = array_to_image(rgb, "rgb8")
    msg.encoding = "bayer_rggb8_typo"
    with pytest.raises(InputError, match="unsupported image encoding 'bayer_rggb8_typo'"):
        image_to_rgb(msg)


def test_data_length_mismatch_is_rejected(rgb):
    msg = array_to_image(rgb, "rgb8")
    msg.data = bytes(msg.data[:-5])
    with pytest.raises(InputError, match="expected step x height"):
        image_to_rgb(msg)


def test_step_smaller_than_a_row_is_rejected(rgb):
    msg = array_to_image(rgb, "rgb8")
    msg.step = msg.width * 2
    msg.data = bytes(msg.step * msg.height)
    with pytest.raises(InputError, match="step"):
        image_to_array(msg)


def test_empty_image_is_rejected():
    with pytest.raises(InputError, match="empty image"):
        image_to_array(Image(encoding="rgb8"))


def test_array_that_does_not_fit_the_encoding_is_rejected(rgb):
    with pytest.raises(InputError, match="does not fit encoding 'mono8'"):
        array_to_image(rgb, "mono8")
    with pytest.raises(InputError, match="does not fit encoding 'mono16'"):
        array_to_image(rgb[..., 0], "mono16")


# JPEG (quality 95) loses about 4.5 grey levels on the textured frame; swapped channels would differ by about 35
@pytest.mark.parametrize("extension, tolerance", [(".png", 0.0), (".jpg", 8.0)])
def test_compressed_images_decode_to_rgb(rgb, extension, tolerance):
    ok, encoded = cv2.imencode(extension, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    msg = CompressedImage(format=extension[1:])
    msg.data = encoded.tobytes()
    out = compressed_to_rgb(msg)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert np.abs(out.astype(np.int16) - rgb.astype(np.int16)).mean() <= tolerance


def test_corrupt_compressed_image_is_rejected():
    msg = CompressedImage(format="jpeg")
    msg.data = b"\xff\xd8 not really a jpeg"
    with pytest.raises(InputError, match="unrecognised compressed image"):
        compressed_to_rgb(msg)


def png_bomb(width: int, height: int) -> bytes:
    """A valid grey PNG of ``width`` x ``height`` zeros: a few hundred KB that decode to ``width * height`` bytes."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    compressor, row = zlib.compressobj(9), b"\0" * (width + 1)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_odd_width_yuv422_is_rejected_not_raised_as_cv2_error():
    msg = Image(height=10, width=161, encoding="yuv422", step=322)
    msg.data = bytes(322 * 10)
    with pytest.raises(InputError, match="even width"):
        image_to_rgb(msg)


@pytest.mark.parametrize("data", [b"", b"\x00", b"\xff\xd8"])
def test_empty_or_tiny_compressed_data_is_rejected(data):
    with pytest.raises(InputError):
        compressed_to_rgb(CompressedImage(format="jpeg", data=data))


def test_png_bomb_is_rejected_from_its_header_without_decoding():
    bomb = png_bomb(20000, 20000)
    assert len(bomb) < 400_000
    started = time.perf_counter()
    with pytest.raises(InputError, match="too large|size limit"):
        compressed_to_rgb(CompressedImage(format="png", data=bomb))
    assert time.perf_counter() - started < 1.0  # a decode would allocate 400 MB and take seconds


def test_compressed_size_limit_is_checked_before_decoding(rgb):
    png = cv2.imencode(".png", np.zeros((300, 500, 3), np.uint8))[1].tobytes()
    assert compressed_size(png) == (500, 300)
    with pytest.raises(InputError, match="500x300 exceeds the size limit"):
        compressed_to_rgb(CompressedImage(format="png", data=png), SizeLimit(max_width=499))
    with pytest.raises(InputError, match="exceeds the size limit"):
        compressed_to_rgb(CompressedImage(format="png", data=png), SizeLimit(max_pixels=100_000))
    assert compressed_to_rgb(CompressedImage(format="png", data=png)).shape == (300, 500, 3)


def test_raw_size_limit_is_checked_before_reading_the_data(rgb):
    msg = Image(height=5000, width=5000, encoding="rgb8", step=15000)  # no data at all: never read
    with pytest.raises(InputError, match="5000x5000 exceeds the size limit"):
        image_to_rgb(msg)
    small = array_to_image(rgb, "rgb8")
    with pytest.raises(InputError, match="214x120 exceeds"):
        image_to_rgb(small, SizeLimit(max_height=100))


@pytest.mark.parametrize("extension", [".jpg", ".png"])
def test_truncated_compressed_image_is_rejected(rgb, extension):
    data = cv2.imencode(extension, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
    with pytest.raises(InputError, match="truncated|cannot"):
        compressed_to_rgb(CompressedImage(format=extension[1:], data=data[: len(data) * 2 // 3]))


FUZZ_ENCODINGS = [*NAMED_FORMATS, "8UC1", "8UC2", "8UC3", "8UC4", "16UC3", "16SC1", "32SC2", "32FC3", "64FC1",
                  "bayer_rggb8", "", "rgb9", "8UC5"]


def test_fuzzed_messages_convert_or_raise_input_error_only(rgb):
    """Random encodings, sizes, steps, data lengths and compressed bytes: every message is either
    converted to [H, W, 3] uint8 or rejected with InputError, never anything else (bounded in time)."""
    generator = np.random.default_rng(18)
    jpeg = cv2.imencode(".jpg", rgb)[1].tobytes()
    png = cv2.imencode(".png", rgb)[1].tobytes()
    converted = rejected = 0
    deadline = time.monotonic() + 10.0
    for trial in range(1500):
        if time.monotonic() > deadline:
            break
        if trial % 3 == 2:
            source = [jpeg, png, bytes(generator.integers(0, 256, 64, dtype=np.uint8))][int(generator.integers(0, 3))]
            cut = int(generator.integers(0, len(source) + 1))
            data = bytearray(source[:cut] if generator.random() < 0.5 else source)
            for _ in range(int(generator.integers(0, 4))):
                if data:
                    data[int(generator.integers(0, len(data)))] = int(generator.integers(0, 256))
            msg = CompressedImage(format=str(generator.choice(["jpeg", "png", "", "rgb8; jpeg compressed bgr8"])))
            msg.data = bytes(data)
            convert = lambda: compressed_to_rgb(msg)  # noqa: E731
        else:
            encoding = str(generator.choice(FUZZ_ENCODINGS))
            width, height = (int(v) for v in generator.integers(0, 40, 2))
            step = int(generator.integers(0, 4 * 8 * max(width, 1) + 8))
            length = step * height if generator.random() < 0.6 else int(generator.integers(0, 4000))
            msg = Image(height=height, width=width, encoding=encoding, step=step,
                        is_bigendian=int(generator.integers(0, 2)))
            msg.data = bytes(generator.integers(0, 256, length, dtype=np.uint8))
            convert = lambda: image_to_rgb(msg)  # noqa: E731
        try:
            out = convert()
        except InputError:
            rejected += 1
            continue
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
        converted += 1
    assert converted > 50 and rejected > 50, (converted, rejected)
