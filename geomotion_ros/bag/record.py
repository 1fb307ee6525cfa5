# SPDX-License-Identifier: Apache-2.0
"""Record a replay's outputs (masks, poses) into an output bag."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from scipy.spatial.transform import Rotation

from geomotion_ros.bag.make import image_message, stamp_header
from geomotion_ros.bag.schema import IMAGE_TYPE, POSE_TYPE, typestore

MASK_TOPIC = "/motion_mask/image"
POSE_TOPIC = "/camera_pose"


class OutputBag:
    """An mcap bag the node's outputs are written to: raw CDR from DDS, or built from results.

    The bag is written in a hidden staging folder beside ``path`` and moved to ``path`` by
    :meth:`close`, or to ``<path>.partial`` when the replay failed, so ``path`` only ever holds a
    complete recording.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._staging = self.path.parent / f".{self.path.name}.staging"
        shutil.rmtree(self._staging, ignore_errors=True)
        self._staging.mkdir(parents=True)
        self._writer = Writer(self._staging / self.path.name, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._connections: dict[str, object] = {}

    def __enter__(self) -> OutputBag:
        return self

    def __exit__(self, error_type, *_) -> None:
        self.close(complete=error_type is None)

    def close(self, complete: bool = True) -> Path:
        """Finish the bag's files and move them into place (``<path>.partial`` if not complete)."""
        try:
            self._writer.close()
        finally:
            target = self.path if complete else self.path.with_name(self.path.name + ".partial")
            if not complete:
                shutil.rmtree(target, ignore_errors=True)  # an earlier failed replay's
            (self._staging / self.path.name).rename(target)
            shutil.rmtree(self._staging, ignore_errors=True)
        return target

    def _connection(self, topic: str, msgtype: str):
        if topic not in self._connections:
            self._connections[topic] = self._writer.add_connection(topic, msgtype, typestore=typestore())
        return self._connections[topic]

    def write_raw(self, topic: str, msgtype: str, time_ns: int, raw: bytes) -> None:
        """A message as received (CDR bytes), at ``time_ns``."""
        self._writer.write(self._connection(topic, msgtype), time_ns, raw)

    def write_result(self, stamp_ns: int, frame_id: str, mask: np.ndarray, pose: np.ndarray) -> None:
        """A mono8 mask and a PoseStamped built from one frame's result."""
        store = typestore()
        header = stamp_header(stamp_ns, frame_id)
        self.write_raw(MASK_TOPIC, IMAGE_TYPE, stamp_ns,
                       store.serialize_cdr(image_message(mask, "mono8", header), IMAGE_TYPE))
        types = store.types
        qx, qy, qz, qw = Rotation.from_matrix(pose[:3, :3]).as_quat()
        x, y, z = pose[:3, 3]
        message = types[POSE_TYPE](
            header=stamp_header(stamp_ns, "geomotion_odom"),
            pose=types["geometry_msgs/msg/Pose"](
                position=types["geometry_msgs/msg/Point"](x=float(x), y=float(y), z=float(z)),
                orientation=types["geometry_msgs/msg/Quaternion"](x=float(qx), y=float(qy), z=float(qz), w=float(qw)),
            ),
        )
        self.write_raw(POSE_TOPIC, POSE_TYPE, stamp_ns, store.serialize_cdr(message, POSE_TYPE))
