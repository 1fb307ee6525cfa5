# SPDX-License-Identifier: Apache-2.0
"""Looks up the CameraInfo of an image by its stamp: ``message_filters.Cache`` or a bounded table.

An exact-time synchronizer would hold back every image whose CameraInfo never arrives; the node
must keep segmenting without one. So the lookup returns the CameraInfo with the image's stamp when
it came, else the most recent one (intrinsics rarely change), else None. Where ``message_filters``
is importable (ROS 2 from apt) :class:`CameraInfoCache` keeps the messages in a
``message_filters.Cache``; elsewhere (the PyPI wheels) :class:`CameraInfoTable` does the same in a
small dict. Both have one interface and give the same pairing.

A CameraInfo whose camera matrix is not finite or has no positive focal length gives no
intrinsics (the backend then uses its default field of view); :func:`usable_intrinsics` says so.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Protocol

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo

DEFAULT_CAPACITY = 64


def stamp_key(stamp: Time) -> tuple[int, int]:
    """Exact, hashable form of a ROS stamp."""
    return stamp.sec, stamp.nanosec


def usable_intrinsics(info: CameraInfo) -> np.ndarray | None:
    """The 3x3 camera matrix of ``info``, or None when it is unset, non-finite or has a focal <= 0."""
    k = np.asarray(info.k, dtype=np.float64).reshape(3, 3)
    if not np.all(np.isfinite(k)) or k[0, 0] <= 0.0 or k[1, 1] <= 0.0:
        return None
    return k


class CameraInfoLookup(Protocol):
    """What the node needs from a CameraInfo store (thread-safe)."""

    def add(self, info: CameraInfo) -> None: ...

    def lookup(self, stamp: Time) -> CameraInfo | None: ...

    def clear(self) -> None: ...


def intrinsics_for(lookup: CameraInfoLookup, stamp: Time, width: int, height: int) -> np.ndarray | None:
    """The 3x3 camera matrix for an image of this size and stamp, when a usable CameraInfo is known."""
    info = lookup.lookup(stamp)
    if info is None or (info.width, info.height) != (width, height):
        return None
    return usable_intrinsics(info)


class CameraInfoTable:
    """The last ``capacity`` CameraInfo messages keyed by stamp (the fallback without message_filters)."""

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
        return intrinsics_for(self, stamp, width, height)

    def clear(self) -> None:
        with self._lock:
            self._by_stamp.clear()


class CameraInfoCache:
    """The same lookup over a ``message_filters.Cache`` (requires message_filters).

    Messages reach the cache through a ``message_filters.SimpleFilter`` fed by :meth:`add`, so the
    node subscribes camera_info the same way for both stores.
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        from message_filters import Cache, SimpleFilter

        self.capacity = capacity
        self._lock = threading.Lock()
        self._input = SimpleFilter()
        self._cache = Cache(self._input, cache_size=capacity)

    def add(self, info: CameraInfo) -> None:
        with self._lock:
            self._input.signalMessage(info)

    def lookup(self, stamp: Time) -> CameraInfo | None:
        """The CameraInfo with exactly this stamp, else the most recent one, else None."""
        from rclpy.time import Time as RosTime

        at = RosTime.from_msg(stamp)
        with self._lock:
            exact = self._cache.getInterval(at, at)
            return exact[-1] if exact else self._cache.getLast()

    def intrinsics(self, stamp: Time, width: int, height: int) -> np.ndarray | None:
        return intrinsics_for(self, stamp, width, height)

    def clear(self) -> None:
        with self._lock:
            self._cache.cache_msgs.clear()
            self._cache.cache_times.clear()


def message_filters_available() -> bool:
    """Whether ``message_filters`` (ROS 2 from apt; not on PyPI) can be imported."""
    try:
        import message_filters  # noqa: F401
    except ImportError:
        return False
    return True


def camera_info_store(capacity: int = DEFAULT_CAPACITY) -> CameraInfoCache | CameraInfoTable:
    """A ``message_filters.Cache`` store where the package is importable, else the table."""
    return CameraInfoCache(capacity) if message_filters_available() else CameraInfoTable(capacity)
