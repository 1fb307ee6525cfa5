# SPDX-License-Identifier: Apache-2.0
"""Camera trajectories: TUM ``trajectory.txt`` and ``poses.json`` (4x4 camera-to-world)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np


def pose_to_tum(stamps: np.ndarray, poses: np.ndarray) -> np.ndarray:
    """TUM rows ``[timestamp tx ty tz qx qy qz qw]`` from ``poses [N, 4, 4]`` camera-to-world."""
    from scipy.spatial.transform import Rotation

    quaternions = Rotation.from_matrix(poses[:, :3, :3]).as_quat()  # scalar-last: x, y, z, w
    return np.concatenate([np.asarray(stamps, np.float64)[:, None], poses[:, :3, 3], quaternions], axis=1)


class TumTrajectoryWriter:
    """Appends TUM lines as poses arrive, so a crash keeps every pose written so far."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = open(path, "w", encoding="ascii")
        self._handle.write("# timestamp tx ty tz qx qy qz qw\n")

    def write(self, stamps: Sequence[float], poses: np.ndarray) -> None:
        """Append one line per pose."""
        np.savetxt(self._handle, pose_to_tum(np.asarray(stamps), poses), fmt="%.9f")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def read_tum(path: Path) -> np.ndarray:
    """Rows ``[timestamp tx ty tz qx qy qz qw]`` of a TUM file (comment lines skipped)."""
    return np.loadtxt(path, comments="#", ndmin=2)


def write_poses_json(path: Path, records: Sequence[dict]) -> None:
    """Write per-frame pose records (``frame``, ``stamp``, ``pose`` 4x4 list, ...) as JSON."""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"convention": "camera-to-world, OpenCV axes (x right, y down, z forward)", "frames": list(records)},
                  handle, indent=1)
