"""Output messages built from one frame's result: mask, probability, overlay, pose, points."""
from __future__ import annotations

import cv2
import numpy as np
from geometry_msgs.msg import PoseStamped
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Header

from geomotion_core.io.overlay import render_overlay
from geomotion_ros.conversions import array_to_image


def _xyz_fields() -> list[PointField]:
    """The x, y, z float32 fields of a cloud, new for each message (messages are mutable)."""
    return [PointField(name=axis, offset=4 * i, datatype=PointField.FLOAT32, count=1) for i, axis in enumerate("xyz")]


def mask_image(mask: np.ndarray, header: Header) -> Image:
    """mono8 mask (0 static, 255 moving) with the input image's header."""
    return array_to_image(mask, "mono8", header)


def probability_image(probability: np.ndarray, header: Header) -> Image:
    """32FC1 motion probability in [0, 1] with the input image's header."""
    return array_to_image(probability.astype(np.float32, copy=False), "32FC1", header)


def overlay_image(rgb: np.ndarray, mask: np.ndarray, header: Header) -> Image:
    """bgr8 input frame with the moving pixels tinted and outlined."""
    return array_to_image(cv2.cvtColor(render_overlay(rgb, mask), cv2.COLOR_RGB2BGR), "bgr8", header)


def mask_camera_info(info: CameraInfo, header: Header) -> CameraInfo:
    """The input camera's CameraInfo restamped with the mask's header (masks are at input size)."""
    out = CameraInfo()
    out.header = header
    for name in ("height", "width", "distortion_model", "d", "k", "r", "p", "binning_x", "binning_y", "roi"):
        setattr(out, name, getattr(info, name))
    return out


def pose_stamped(pose: np.ndarray, header: Header, frame_id: str) -> PoseStamped:
    """Camera-to-world 4x4 ``pose`` as a PoseStamped in ``frame_id`` at the frame's stamp."""
    msg = PoseStamped()
    msg.header.stamp = header.stamp
    msg.header.frame_id = frame_id
    x, y, z = (float(v) for v in pose[:3, 3])
    qx, qy, qz, qw = (float(v) for v in Rotation.from_matrix(pose[:3, :3]).as_quat())
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = x, y, z
    msg.pose.orientation.x, msg.pose.orientation.y = qx, qy
    msg.pose.orientation.z, msg.pose.orientation.w = qz, qw
    return msg


def static_points(points: np.ndarray, mask: np.ndarray, stride: int, header: Header, frame_id: str) -> PointCloud2:
    """PointCloud2 (x, y, z float32) of every ``stride``-th pixel's world point that is not moving.

    Non-finite points are left out; the cloud is unordered (height 1).
    """
    sampled = points[::stride, ::stride].reshape(-1, 3)
    keep = (mask[::stride, ::stride].reshape(-1) == 0) & np.isfinite(sampled).all(axis=1)
    xyz = np.ascontiguousarray(sampled[keep], dtype=np.float32)
    msg = PointCloud2()
    msg.header.stamp = header.stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = 1, len(xyz)
    msg.fields = _xyz_fields()
    msg.is_bigendian = False
    msg.point_step = 12
    msg.row_step = 12 * len(xyz)
    msg.is_dense = True
    msg.data = xyz.tobytes()
    return msg
