# SPDX-License-Identifier: Apache-2.0
"""Camera motion from background correspondences: relative poses and their chaining.

Poses follow OpenCV's optical convention (x right, y down, z forward). A relative pose
``(R, t)`` maps a point from camera a to camera b: ``X_b = R X_a + t``. Monocular translation has
no scale: each step's translation is a unit direction (or zero when it is not observable), so a
chained trajectory has an arbitrary, per-step scale and only its shape of rotations and
directions is meaningful.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

MIN_POSE_POINTS = 8
MAX_POSE_POINTS = 400  # an even subsample of at most this many points feeds the pose solvers


def intrinsics_from_fov(width: int, height: int, fov_degrees: float) -> np.ndarray:
    """Pinhole ``[3, 3]`` camera matrix with square pixels, the principal point at the centre."""
    focal = 0.5 * width / math.tan(math.radians(fov_degrees) / 2.0)
    return np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])


def scale_intrinsics(intrinsics: np.ndarray, scale_x: float, scale_y: float) -> np.ndarray:
    """The camera matrix of the same camera after resizing its images by ``(scale_x, scale_y)``."""
    return np.diag([scale_x, scale_y, 1.0]) @ np.asarray(intrinsics, dtype=np.float64)


def nearest_rotation(matrix: np.ndarray) -> np.ndarray:
    """The rotation closest (Frobenius) to a 3x3 matrix, from its SVD."""
    u, _, vt = np.linalg.svd(matrix)
    rotation = u @ vt
    if np.linalg.det(rotation) < 0:
        rotation = u @ np.diag([1.0, 1.0, -1.0]) @ vt
    return rotation


def rotation_from_homography(homography: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """Rotation of the infinite homography ``H = K R K^-1`` (exact for a purely rotating camera)."""
    calibrated = np.linalg.inv(intrinsics) @ homography @ intrinsics
    return nearest_rotation(calibrated / np.cbrt(np.linalg.det(calibrated)))


def relative_pose(
    source: np.ndarray,
    target: np.ndarray,
    homography: np.ndarray,
    intrinsics: np.ndarray,
    static_motion: float,
    min_parallax: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Relative pose ``(R [3, 3], t [3])`` of camera b w.r.t. camera a from background points.

    * median motion below ``static_motion`` pixels: a static camera, ``(I, 0)``;
    * the points' median distance from the rotation-only prediction ``K R K^-1`` below
      ``min_parallax`` pixels: translation is not observable (pure rotation or a far scene), so
      ``(R from the homography, 0)``;
    * otherwise the essential matrix (MAGSAC) and ``cv2.recoverPose``: ``t`` is a unit direction.
    Every failure falls back to the homography's rotation with zero translation: never a NaN.
    """
    identity = (np.eye(3), np.zeros(3))
    if len(source) > MAX_POSE_POINTS:
        chosen = np.linspace(0, len(source) - 1, MAX_POSE_POINTS).round().astype(int)
        source, target = source[chosen], target[chosen]
    if len(source) < MIN_POSE_POINTS:
        return identity
    if float(np.median(np.linalg.norm(target - source, axis=1))) < static_motion:
        return identity
    rotation = rotation_from_homography(homography, intrinsics)
    rotation_only = cv2.perspectiveTransform(
        source.reshape(-1, 1, 2).astype(np.float64), intrinsics @ rotation @ np.linalg.inv(intrinsics)
    ).reshape(-1, 2)
    if float(np.median(np.linalg.norm(target - rotation_only, axis=1))) < min_parallax:
        return rotation, np.zeros(3)
    points_a, points_b = source.astype(np.float64), target.astype(np.float64)
    essential, inliers = cv2.findEssentialMat(points_a, points_b, intrinsics, cv2.USAC_MAGSAC, 0.999, 1.0)
    if essential is None or essential.shape != (3, 3) or inliers is None:
        return rotation, np.zeros(3)
    count, pose_rotation, translation, _ = cv2.recoverPose(essential, points_a, points_b, intrinsics, mask=inliers.copy())
    translation = translation.ravel()
    norm = float(np.linalg.norm(translation))
    if count < MIN_POSE_POINTS or not (np.all(np.isfinite(pose_rotation)) and math.isfinite(norm) and norm > 0):
        return rotation, np.zeros(3)
    return nearest_rotation(pose_rotation), translation / norm


def chain_pose(camera_to_world: np.ndarray, rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """Camera-to-world pose of camera b from camera a's and the relative pose ``X_b = R X_a + t``."""
    b_to_a = np.eye(4)
    b_to_a[:3, :3] = rotation.T
    b_to_a[:3, 3] = -rotation.T @ translation
    pose = camera_to_world @ b_to_a
    pose[:3, :3] = nearest_rotation(pose[:3, :3])
    return pose
