# SPDX-License-Identifier: Apache-2.0
"""3D centroids of objects from a backend's world points, in the camera frame.

World points and camera-to-world poses share one world frame whose scale is arbitrary (the
backends' poses are scale-ambiguous), so the centroids and velocities are too.
"""
from __future__ import annotations

import numpy as np

POINT_STRIDE = 2  # every 2nd pixel in both directions: the centroid of an object barely changes


def camera_centroids(labels: np.ndarray, points: np.ndarray, pose: np.ndarray, count: int) -> np.ndarray:
    """Mean camera-frame point ``[count + 1, 3]`` of each label 1..count (NaN when it has no finite point).

    Args:
        labels: ``[H, W]`` integer labels (0: background).
        points: ``[H, W, 3]`` world points.
        pose: ``[4, 4]`` camera-to-world transform of the frame.
        count: the largest label.
    """
    sampled = labels[::POINT_STRIDE, ::POINT_STRIDE]
    rows, cols = np.nonzero(sampled)
    world = points[rows * POINT_STRIDE, cols * POINT_STRIDE].astype(np.float64)
    keep = np.isfinite(world).all(axis=1)
    sampled, world = sampled[rows[keep], cols[keep]], world[keep]
    camera = (world - pose[:3, 3]) @ pose[:3, :3]  # R^T (p - t) for row vectors
    pixels = np.bincount(sampled, minlength=count + 1).astype(np.float64)
    sums = np.stack([np.bincount(sampled, weights=camera[:, axis], minlength=count + 1) for axis in range(3)], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / pixels[:, None]


def camera_velocity(previous_world: np.ndarray, current_world: np.ndarray, seconds: float,
                    pose: np.ndarray) -> np.ndarray:
    """Velocity of a centroid that moved between two world positions, in the current camera frame (per second)."""
    return pose[:3, :3].T @ ((current_world - previous_world) / seconds)


def to_world(camera_point: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """A camera-frame point in the world frame."""
    return pose[:3, :3] @ camera_point + pose[:3, 3]
