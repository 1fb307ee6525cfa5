# SPDX-License-Identifier: Apache-2.0
"""Read camera images and ground-truth masks from any rosbag2 (sqlite3 or mcap)."""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from rosbags.interfaces import Connection
from rosbags.rosbag2 import Reader

from geomotion_core.errors import InputError
from geomotion_ros.bag.schema import CAMERA_INFO_TYPE, COMPRESSED_IMAGE_TYPE, IMAGE_TYPES, typestore
from geomotion_ros.conversions import compressed_to_rgb, image_to_array, image_to_rgb


@dataclass
class BagImage:
    """One image message: its header stamp (ns), frame_id, recorded time and raw CDR bytes."""

    stamp_ns: int
    frame_id: str
    log_time_ns: int
    raw: bytes
    message: object

    def rgb(self) -> np.ndarray:
        """Decoded ``[H, W, 3]`` uint8 RGB."""
        if self.message.__msgtype__ == COMPRESSED_IMAGE_TYPE:
            return compressed_to_rgb(self.message)
        return image_to_rgb(self.message)


def _stamp_ns(header) -> int:
    return int(header.stamp.sec) * 10**9 + int(header.stamp.nanosec)


def header_stamp_ns(raw: bytes) -> int:
    """The header stamp of a serialised Image / CompressedImage, read without decoding the pixels.

    Both messages start with std_msgs/Header, whose stamp (int32 sec, uint32 nanosec) follows the
    4-byte CDR encapsulation; its second byte says the byte order (1: little-endian).
    Raises InputError for a message too short to hold one.
    """
    if len(raw) < 12:
        raise InputError(f"message of {len(raw)} bytes has no header")
    order = "<" if raw[1] == 1 else ">"
    seconds, nanoseconds = struct.unpack_from(f"{order}iI", raw, 4)
    return seconds * 10**9 + nanoseconds


class BagReader:
    """A bag opened for reading; unreadable or truncated bags raise InputError."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"bag {self.path} does not exist")
        try:
            self._reader = Reader(self.path)
            self._reader.open()
        except Exception as error:  # rosbags raises several types for broken metadata/storage
            raise InputError(f"cannot open bag {self.path}: {error}") from None

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Close the storage files."""
        self._reader.close()

    def topics(self) -> dict[str, str]:
        """Topic name -> message type."""
        return {conn.topic: conn.msgtype for conn in self._reader.connections}

    def _image_topics(self) -> list[str]:
        return sorted(topic for topic, msgtype in self.topics().items() if msgtype in IMAGE_TYPES)

    def image_connection(self, topic: str | None = None, exclude: tuple[str, ...] = ()) -> Connection:
        """The connection of ``topic``, or of the bag's only image topic (``exclude`` aside)."""
        candidates = [t for t in self._image_topics() if t not in exclude]
        if topic is None:
            if len(candidates) != 1:
                found = ", ".join(candidates) or "none"
                raise InputError(f"bag {self.path}: choose the image topic with --image-topic (image topics: {found})")
            topic = candidates[0]
        return self._connection(topic, IMAGE_TYPES)

    def optional_connection(self, topic: str) -> Connection | None:
        """The image connection of ``topic`` if the bag has it."""
        return self._connection(topic, IMAGE_TYPES) if topic in self.topics() else None

    def _connection(self, topic: str, msgtypes: tuple[str, ...]) -> Connection:
        matches = [conn for conn in self._reader.connections if conn.topic == topic]
        if not matches:
            found = ", ".join(self._image_topics()) or "none"
            raise InputError(f"bag {self.path} has no topic {topic!r} (image topics: {found})")
        if matches[0].msgtype not in msgtypes:
            raise InputError(f"topic {topic!r} in {self.path} is {matches[0].msgtype}, expected {' or '.join(msgtypes)}")
        return matches[0]

    def camera_info_connection(self, image_topic: str) -> Connection | None:
        """The CameraInfo beside ``image_topic`` (``<namespace>/camera_info``), else the only one."""
        infos = sorted(topic for topic, msgtype in self.topics().items() if msgtype == CAMERA_INFO_TYPE)
        sibling = image_topic.rstrip("/").rsplit("/", 1)[0] + "/camera_info"
        chosen = sibling if sibling in infos else (infos[0] if len(infos) == 1 else None)
        return self._connection(chosen, (CAMERA_INFO_TYPE,)) if chosen else None

    def raw_messages(self, connections: list[Connection]) -> Iterator[tuple[Connection, int, bytes]]:
        """``(connection, recorded time ns, CDR bytes)`` of these connections, in recorded order."""
        try:
            yield from self._reader.messages(connections=connections)
        except Exception as error:  # a truncated database or chunk surfaces while iterating
            raise InputError(f"bag {self.path} is truncated or corrupt: {error}") from None

    def frame_period_s(self, connection: Connection) -> float:
        """The mean time between the messages of ``connection`` (0 for fewer than two, or one stamp)."""
        duration_ns = getattr(self._reader, "duration", 0) or 0
        return duration_ns / 1e9 / max(connection.msgcount - 1, 1)

    def images(self, connection: Connection,
               on_error: Callable[[InputError], None] | None = None) -> Iterator[BagImage]:
        """Every message of an image connection, in recorded order.

        A message that cannot be decoded raises InputError, or with ``on_error`` is passed to it
        and skipped.
        """
        store = typestore()
        for conn, log_time, raw in self.raw_messages([connection]):
            try:
                message = store.deserialize_cdr(raw, conn.msgtype)
            except Exception as error:  # a cut-off message body
                failure = InputError(f"bag {self.path}: a {conn.topic} message cannot be decoded: {error}")
                if on_error is None:
                    raise failure from None
                on_error(failure)
                continue
            yield BagImage(_stamp_ns(message.header), message.header.frame_id, log_time, bytes(raw), message)

    def masks_by_stamp(self, connection: Connection) -> dict[int, np.ndarray]:
        """Ground-truth masks (bool ``[H, W]``, foreground = value > 0) keyed by header stamp."""
        masks = {}
        for image in self.images(connection):
            pixels = image_to_array(image.message)
            masks[image.stamp_ns] = (pixels if pixels.ndim == 2 else pixels.max(axis=2)) > 0
        return masks
