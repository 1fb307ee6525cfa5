# SPDX-License-Identifier: Apache-2.0
"""Output messages built from one frame's result: mask, probability, overlay, poses, TF, points.

Poses leave the engine camera-to-world in OpenCV optical axes (x right, y down, z forward), the
world being the first camera's optical frame. The node publishes them in an odometry frame with
REP 103 axes (x forward, y left, z up): :func:`odom_pose` applies the fixed optical-to-body rotation
``OPTICAL_TO_BODY``, so a camera driving forward moves along +x of the odometry frame. The pose
is still that of the camera's *optical* frame (the image's frame_id), as TF expects for that frame.
"""
from __future__ import annotations

import cv2
import numpy as np
from geometry_msgs.msg import PoseStamped, TransformStamped
from nav_msgs.msg import Odometry
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Header

from geomotion_core.io.overlay import render_overlay
from geomotion_ros.conversions import array_to_image


# Rows: the body axes (x forward, y left, z up) in optical coordinates (x right, y down, z forward).
OPTICAL_TO_BODY = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
# The monocular scale is arbitrary (consistent along one trajectory, not metres): positions and
# velocities get this variance so that a filter fusing the odometry treats them as unobserved.
UNKNOWN_SCALE_VARIANCE = 1e6
ORIENTATION_VARIANCE = 1e-2  # nominal (rad^2): the orientation has no scale ambiguity


def odom_pose(pose: np.ndarray) -> np.ndarray:
    """A camera-to-world 4x4 pose in optical world axes as the camera pose in the REP 103 odometry frame."""
    moved = np.eye(4)
    moved[:3, :3] = OPTICAL_TO_BODY @ pose[:3, :3]
    moved[:3, 3] = OPTICAL_TO_BODY @ pose[:3, 3]
    return moved


def _set_pose(target, pose: np.ndarray) -> None:
    """Write position and orientation of a 4x4 transform into a geometry_msgs Pose."""
    target.position.x, target.position.y, target.position.z = (float(v) for v in pose[:3, 3])
    qx, qy, qz, qw = (float(v) for v in Rotation.from_matrix(pose[:3, :3]).as_quat())
    target.orientation.x, target.orientation.y, target.orientation.z, target.orientation.w = qx, qy, qz, qw


def transform_stamped(pose: np.ndarray, header: Header, parent: str, child: str) -> TransformStamped:
    """The TF transform ``parent -> child`` at the frame's stamp for a child-to-parent 4x4 ``pose``."""
    msg = TransformStamped()
    msg.header.stamp = header.stamp
    msg.header.frame_id, msg.child_frame_id = parent, child
    msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z = (
        float(v) for v in pose[:3, 3]
    )
    qx, qy, qz, qw = (float(v) for v in Rotation.from_matrix(pose[:3, :3]).as_quat())
    msg.transform.rotation.x, msg.transform.rotation.y = qx, qy
    msg.transform.rotation.z, msg.transform.rotation.w = qz, qw
    return msg


def odometry(pose: np.ndarray, header: Header, parent: str, child: str) -> Odometry:
    """nav_msgs/Odometry of the camera (``child``) in ``parent`` for a child-to-parent 4x4 ``pose``.

    Position and twist carry ``UNKNOWN_SCALE_VARIANCE`` (monocular: arbitrary scale); the twist is
    not estimated (zero).
    """
    msg = Odometry()
    msg.header.stamp = header.stamp
    msg.header.frame_id, msg.child_frame_id = parent, child
    _set_pose(msg.pose.pose, pose)
    covariance = np.diag([UNKNOWN_SCALE_VARIANCE] * 3 + [ORIENTATION_VARIANCE] * 3)
    msg.pose.covariance = covariance.reshape(-1).tolist()
    msg.twist.covariance = np.diag([UNKNOWN_SCALE_VARIANCE] * 6).reshape(-1).tolist()
    return msg


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
    _set_pose(msg.pose, pose)
    return msg


def static_points(points: np.ndarray, mask: np.ndarray, stride: int, header: Header, frame_id: str) -> PointCloud2:
    """PointCloud2 (x, y, z float32) of every ``stride``-th pixel's world point that is not moving.

    ``points`` are in the engine's optical world axes; the cloud is in the REP 103 odometry frame
    (the same rotation as :func:`odom_pose`). Non-finite points are left out; the cloud is unordered
    (height 1).
    """
    sampled = points[::stride, ::stride].reshape(-1, 3) @ OPTICAL_TO_BODY.T.astype(points.dtype)
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
