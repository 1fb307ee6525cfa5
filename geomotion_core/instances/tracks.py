# SPDX-License-Identifier: Apache-2.0
"""Per-object track records of a whole run, written as ``tracks.json``."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from geomotion_core.instances.tracker import InstanceFrame
from geomotion_core.io.atomic import atomic_path

DECIMALS = 4


class TrackLog:
    """Collects every object of every frame into one record per id.

    Each record: ``id``, ``first_frame`` and ``last_frame`` (frame names), ``frames`` (how many
    frames it was seen in) and ``observations``: per frame its name, index, stamp, ``box``
    ``[x, y, width, height]``, ``area``, ``centroid`` ``[x, y]``, ``image_velocity`` and, when the
    backend gave 3D points, ``centroid_3d`` and ``velocity_3d`` (camera frame, the backend's scale).
    """

    def __init__(self) -> None:
        self._tracks: dict[int, list[dict]] = {}

    def add(self, frame: str, index: int, stamp: float, instances: InstanceFrame) -> None:
        """Record one frame's objects."""
        for item in instances.objects:
            observation = {"frame": frame, "index": index, "stamp": stamp, **asdict(item)}
            del observation["id"]
            self._tracks.setdefault(item.id, []).append({key: _rounded(value) for key, value in observation.items()})

    def records(self) -> list[dict]:
        """One record per id, in order of first appearance."""
        return [
            {"id": track_id, "first_frame": seen[0]["frame"], "last_frame": seen[-1]["frame"], "frames": len(seen),
             "observations": seen}
            for track_id, seen in self._tracks.items()
        ]

    def write(self, path: Path) -> None:
        """Write ``{"tracks": [...]}`` to ``path`` (atomically)."""
        with atomic_path(path) as partial:
            partial.write_text(json.dumps({"tracks": self.records()}) + "\n", encoding="utf-8")


def _rounded(value: object) -> object:
    """Floats (alone or in a tuple) to 4 decimals: pixels and the backend's units need no more."""
    if isinstance(value, tuple):
        return [_rounded(item) for item in value]
    return round(value, DECIMALS) if isinstance(value, float) else value
