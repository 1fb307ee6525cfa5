"""Camera motion of the geometric backend on exact synthetic correspondences."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from geomotion_core.geometric.camera import (
    chain_pose,
    intrinsics_from_fov,
    relative_pose,
    rotation_from_homography,
)

WIDTH, HEIGHT = 640, 480
STATIC_MOTION, MIN_PARALLAX = 0.3, 0.5


@pytest.fixture(scope="module")
def camera() -> np.ndarray:
    return intrinsics_from_fov(WIDTH, HEIGHT, 60.0)


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    """300 points 4-12 m in front of camera a, spread over its view."""
    generator = np.random.default_rng(7)
    depth = generator.uniform(4.0, 12.0, 300)
    xy = generator.uniform(-0.5, 0.5, (300, 2)) * depth[:, None]
    return np.column_stack([xy, depth])


def rotation_about(axis: str, degrees: float) -> np.ndarray:
    vector = {"x": [1.0, 0, 0], "y": [0, 1.0, 0], "z": [0, 0, 1.0]}[axis]
    return cv2.Rodrigues(np.radians(degrees) * np.array(vector))[0]


def project(points: np.ndarray, camera: np.ndarray, rotation=np.eye(3), translation=np.zeros(3)) -> np.ndarray:
    moved = points @ rotation.T + translation
    pixels = moved @ camera.T
    return (pixels[:, :2] / pixels[:, 2:]).astype(np.float32)


def angle_degrees(rotation_a: np.ndarray, rotation_b: np.ndarray) -> float:
    return float(np.degrees(np.linalg.norm(cv2.Rodrigues(rotation_a.T @ rotation_b)[0])))


def test_intrinsics_follow_the_field_of_view(camera):
    assert camera[0, 0] == pytest.approx(320.0 / np.tan(np.radians(30.0)))
    assert camera[1, 1] == camera[0, 0] and tuple(camera[:2, 2]) == (320.0, 240.0)


def test_rotation_of_a_scaled_infinite_homography_is_exact(camera):
    rotation = rotation_about("y", 3.0) @ rotation_about("x", -1.5)
    homography = 3.7 * camera @ rotation @ np.linalg.inv(camera)
    assert angle_degrees(rotation_from_homography(homography, camera), rotation) < 1e-6


def test_translating_camera_gives_its_rotation_and_translation_direction(camera, scene):
    rotation, translation = rotation_about("y", 2.0), np.array([0.3, 0.0, 0.1])
    source, target = project(scene, camera), project(scene, camera, rotation, translation)
    homography, _ = cv2.findHomography(source, target)
    estimated_rotation, direction = relative_pose(source, target, homography, camera, STATIC_MOTION, MIN_PARALLAX)
    assert angle_degrees(estimated_rotation, rotation) < 0.2
    assert np.linalg.norm(direction) == pytest.approx(1.0)
    assert float(direction @ translation / np.linalg.norm(translation)) > 0.99


def test_pure_rotation_gives_zero_translation_and_the_rotation(camera, scene):
    rotation = rotation_about("y", -2.5)
    source, target = project(scene, camera), project(scene, camera, rotation)
    homography, _ = cv2.findHomography(source, target)
    estimated_rotation, translation = relative_pose(source, target, homography, camera, STATIC_MOTION, MIN_PARALLAX)
    assert angle_degrees(estimated_rotation, rotation) < 0.05
    assert np.array_equal(translation, np.zeros(3))


@pytest.mark.parametrize("count", [300, 5])
def test_static_camera_or_too_few_points_give_the_identity(camera, scene, count):
    source = project(scene[:count], camera)
    rotation, translation = relative_pose(source, source.copy(), np.eye(3), camera, STATIC_MOTION, MIN_PARALLAX)
    assert np.array_equal(rotation, np.eye(3)) and np.array_equal(translation, np.zeros(3))


def test_chaining_moves_the_camera_centre_against_the_relative_translation():
    rotation, translation = rotation_about("y", 10.0), np.array([0.0, 0.0, -1.0])
    pose = chain_pose(np.eye(4), rotation, translation)
    np.testing.assert_allclose(pose[:3, 3], -rotation.T @ translation, atol=1e-12)
    np.testing.assert_allclose(pose[:3, :3], rotation.T, atol=1e-12)
    twice = chain_pose(pose, rotation, translation)
    assert angle_degrees(twice[:3, :3], rotation_about("y", -20.0)) < 1e-9
