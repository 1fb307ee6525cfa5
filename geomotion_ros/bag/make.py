# SPDX-License-Identifier: Apache-2.0
"""Write a benchmark sequence as a rosbag2: images, camera_info and ground-truth masks."""
from __future__ import annotations

import logging
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer, WriterError

from geomotion_core.errors import GeoMotionError, InputError
from geomotion_core.io.frames import MAX_FPS, MIN_FPS
from geomotion_ros.bag.schema import CAMERA_INFO_TYPE, IMAGE_TYPE, BagTopics, typestore

LOGGER = logging.getLogger(__name__)
STORAGES = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}
DEFAULT_START_NS = 1_700_000_000 * 10**9  # a fixed epoch so bags are reproducible
MAX_STAMP_NS = (2**31 - 1) * 10**9  # builtin_interfaces/Time seconds are an int32


@dataclass
class BagSummary:
    """What was written."""

    path: Path
    frames: int
    ground_truth: int
    duration_s: float
    storage: str


def stamp_header(stamp_ns: int, frame_id: str) -> object:
    """A std_msgs/Header at ``stamp_ns`` nanoseconds."""
    types = typestore().types
    stamp = types["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)
    return types["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)


def image_message(pixels: np.ndarray, encoding: str, header: object) -> object:
    """A sensor_msgs/Image of an unpadded 8-bit ``[H, W]`` or ``[H, W, C]`` array."""
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    return typestore().types[IMAGE_TYPE](
        header=header, height=height, width=width, encoding=encoding, is_bigendian=0,
        step=width * channels, data=np.ascontiguousarray(pixels).reshape(-1),
    )


def _camera_info(height: int, width: int, header) -> object:
    """An uncalibrated CameraInfo (K all zeros, as ROS defines for an unknown calibration)."""
    types = typestore().types
    return types[CAMERA_INFO_TYPE](
        header=header, height=height, width=width, distortion_model="", d=np.zeros(0),
        k=np.zeros(9), r=np.eye(3).reshape(-1), p=np.zeros(12), binning_x=0, binning_y=0,
        roi=types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0,
                                                      do_rectify=False),
    )


def _read_frame(path: Path) -> np.ndarray:
    pixels = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if pixels is None:
        raise InputError(f"cannot read image {path}")
    return pixels


def _read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if labels is None:
        raise InputError(f"cannot read mask {path}")
    if labels.ndim == 3:
        labels = labels.max(axis=2)
    if labels.shape != shape:
        raise InputError(f"mask {path} is {labels.shape[1]}x{labels.shape[0]}, its frame {shape[1]}x{shape[0]}")
    return np.where(labels > 0, 255, 0).astype(np.uint8)


def write_sequence_bag(
    frames: Sequence[Path],
    output: Path,
    masks: Sequence[Path | None] | None = None,
    fps: float = 10.0,
    storage: str = "sqlite3",
    frame_id: str = "camera_optical_frame",
    topics: BagTopics = BagTopics(),
    start_ns: int = DEFAULT_START_NS,
) -> BagSummary:
    """Write ``frames`` (and the matching ground-truth ``masks``, None where unannotated).

    Images are bgr8; masks are mono8 0/255 with the same header as their image; stamps are
    ``start_ns + i / fps``. Raises InputError on an unreadable file or an existing ``output``.
    The bag is written under a temporary name beside ``output`` and renamed when complete, so a
    failed run leaves nothing at ``output``.
    """
    if storage not in STORAGES:
        raise InputError(f"storage must be one of {', '.join(STORAGES)}, got {storage!r}")
    if not MIN_FPS <= fps <= MAX_FPS:
        raise InputError(f"fps must be in [{MIN_FPS:g}, {MAX_FPS:g}], got {fps}")
    if not frames:
        raise InputError("no frames to write")
    if masks is not None and len(masks) != len(frames):
        raise InputError(f"{len(frames)} frames but {len(masks)} mask entries")
    if output.exists():
        raise InputError(f"{output} exists; choose another output path")
    period_ns = round(1e9 / fps)
    if start_ns + (len(frames) - 1) * period_ns > MAX_STAMP_NS:
        raise InputError(f"{len(frames)} frames at {fps:g} fps run past the largest ROS time stamp")
    staging = output.parent / f".{output.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
        written_masks = _write_bag(staging / output.name, frames, masks, period_ns, storage, frame_id, topics, start_ns)
        (staging / output.name).rename(output)
    except (OSError, sqlite3.Error, WriterError) as error:  # e.g. a full disk
        raise GeoMotionError(f"cannot write bag {output}: {error}") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    LOGGER.info("wrote %d frames (%d with ground truth) to %s", len(frames), written_masks, output)
    return BagSummary(output, len(frames), written_masks, (len(frames) - 1) * period_ns / 1e9, storage)


def _write_bag(output: Path, frames: Sequence[Path], masks: Sequence[Path | None] | None, period_ns: int,
               storage: str, frame_id: str, topics: BagTopics, start_ns: int) -> int:
    """Write the bag at ``output``; returns the number of ground-truth masks written."""
    store = typestore()
    written_masks = 0
    with Writer(output, version=9, storage_plugin=STORAGES[storage]) as writer:
        image_conn = writer.add_connection(topics.image, IMAGE_TYPE, typestore=store)
        info_conn = writer.add_connection(topics.camera_info, CAMERA_INFO_TYPE, typestore=store)
        mask_conn = writer.add_connection(topics.ground_truth, IMAGE_TYPE, typestore=store) if masks else None
        for index, frame_path in enumerate(frames):
            stamp_ns = start_ns + index * period_ns
            header = stamp_header(stamp_ns, frame_id)
            pixels = _read_frame(frame_path)
            writer.write(image_conn, stamp_ns, store.serialize_cdr(image_message(pixels, "bgr8", header), IMAGE_TYPE))
            info = _camera_info(*pixels.shape[:2], header)
            writer.write(info_conn, stamp_ns, store.serialize_cdr(info, CAMERA_INFO_TYPE))
            if mask_conn is not None and masks[index] is not None:
                mask = _read_mask(masks[index], pixels.shape[:2])
                writer.write(mask_conn, stamp_ns, store.serialize_cdr(image_message(mask, "mono8", header), IMAGE_TYPE))
                written_masks += 1
    return written_masks
