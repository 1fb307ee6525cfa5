"""Pairs images with CameraInfo by exact stamp, in a small bounded, thread-safe table.

message_filters' exact-time synchronizer would hold back every image whose CameraInfo never
arrives; the node must keep segmenting without one. So the lookup returns the CameraInfo with the
image's stamp when it came, else the most recent one (intrinsics rarely change), else None.
"""
from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo

DEFAULT_CAPACITY = 64


def stamp_key(stamp: Time) -> tuple[int, int]:
    """Exact, hashable form of a ROS stamp."""
    return stamp.sec, stamp.nanosec


class CameraInfoTable:
    """The last ``capacity`` CameraInfo messages keyed by stamp."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._by_stamp: OrderedDict[tuple[int, int], CameraInfo] = OrderedDict()

    def add(self, info: CameraInfo) -> None:
        with self._lock:
            self._by_stamp[stamp_key(info.header.stamp)] = info
            self._by_stamp.move_to_end(stamp_key(info.header.stamp))
            while len(self._by_stamp) > self.capacity:
                self._by_stamp.popitem(last=False)

    def lookup(self, stamp: Time) -> CameraInfo | None:
        """The CameraInfo with exactly this stamp, else the most recent one, else None."""
        with self._lock:
            exact = self._by_stamp.get(stamp_key(stamp))
            if exact is not None:
                return exact
            return next(reversed(self._by_stamp.values()), None)

    def intrinsics(self, stamp: Time, width: int, height: int) -> np.ndarray | None:
        """The 3x3 camera matrix for an image of this size, when a matching CameraInfo is known."""
        info = self.lookup(stamp)
        if info is None or (info.width, info.height) != (width, height) or info.k[0] == 0.0:
            return None
        return np.asarray(info.k, dtype=np.float64).reshape(3, 3)

    def clear(self) -> None:
        with self._lock:
            self._by_stamp.clear()
