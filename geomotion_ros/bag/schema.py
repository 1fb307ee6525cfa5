# SPDX-License-Identifier: Apache-2.0
"""Topic names, message types and the typestore used for the bags we write and read."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.store import Typestore

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE_TYPE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
POSE_TYPE = "geometry_msgs/msg/PoseStamped"
IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_IMAGE_TYPE)


@dataclass(frozen=True)
class BagTopics:
    """Topics of a benchmark bag written by `geomotion bag make`."""

    image: str = "/image"
    camera_info: str = "/camera_info"
    ground_truth: str = "/ground_truth/motion_mask"


@cache
def typestore() -> Typestore:
    """The ROS 2 message definitions used to (de)serialise bag messages."""
    return get_typestore(Stores.ROS2_KILTED)
