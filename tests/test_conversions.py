"""Image <-> numpy conversion on a real DAVIS frame: every encoding, row padding, big-endian data."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("rclpy", reason="needs the ROS 2 Python packages (PyPI wheels or a ROS install)")

from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from geomotion_core.errors import InputError  # noqa: E402
from geomotion_ros.conversions import (  # noqa: E402
    array_to_image,
    compressed_to_rgb,
    image_to_array,
    image_to_rgb,
)
from ros_harness import davis_frames  # noqa: E402

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def rgb(davis_root) -> np.ndarray:
    """One real frame, 214x120 RGB (odd-free width so YUV 4:2:2 pairs fit)."""
    return davis_frames(davis_root, "car-shadow", 1, (214, 120))[0]


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


@pytest.mark.parametrize("extension, tolerance", [(".png", 0.0), (".jpg", 3.0)])
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
    with pytest.raises(InputError, match="cannot decode compressed image"):
        compressed_to_rgb(msg)
