# SPDX-License-Identifier: Apache-2.0
"""A small least-recently-used cache for per-frame and per-pair results of the backends."""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

Value = TypeVar("Value")


class LruCache(Generic[Value]):
    """Keeps at most ``capacity`` entries; reading or storing an entry makes it the most recent."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"cache capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._entries: OrderedDict[Hashable, Value] = OrderedDict()

    def get(self, key: Hashable) -> Value | None:
        """The value of ``key`` (now the most recent), or None when it is not cached."""
        if key not in self._entries:
            return None
        self._entries.move_to_end(key)
        return self._entries[key]

    def put(self, key: Hashable, value: Value) -> Value:
        """Store ``value`` under ``key``, evicting the least recently used entry when full; returns ``value``."""
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
        return value

    def fetch(self, key: Hashable, compute: Callable[[], Value]) -> Value:
        """The cached value of ``key``, computing and storing it on a miss."""
        if key in self._entries:
            return self.get(key)  # type: ignore[return-value]
        return self.put(key, compute())

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
