"""Similarity fitting and pose chaining on exact and noisy synthetic trajectories."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from geomotion_core.streaming import PoseChain, Similarity, fit_similarity
from geomotion_core.streaming.trajectory import project_to_rotation


def random_similarity(rng: np.random.Generator) -> Similarity:
    return Similarity(
        scale=float(rng.uniform(0.1, 10.0)),
        rotation=Rotation.random(random_state=int(rng.integers(1 << 30))).as_matrix(),
        translation=rng.normal(0.0, 5.0, 3),
    )


def random_poses(rng: np.random.Generator, count: int, collinear: bool = False) -> np.ndarray:
    poses = np.tile(np.eye(4), (count, 1, 1))
    poses[:, :3, :3] = Rotation.random(count, random_state=int(rng.integers(1 << 30))).as_matrix()
    if collinear:
        poses[:, :3, 3] = np.linspace(0.0, 1.0, count)[:, None] * np.array([0.0, 0.0, 1.0])
    else:
        poses[:, :3, 3] = rng.normal(0.0, 1.0, (count, 3))
    return poses


@pytest.mark.parametrize("collinear", [False, True])
@pytest.mark.parametrize("count", [2, 3, 7])
def test_fit_similarity_recovers_a_known_similarity(count, collinear):
    rng = np.random.default_rng(count + 10 * collinear)
    truth = random_similarity(rng)
    source = random_poses(rng, count, collinear)
    fitted = fit_similarity(source, truth.apply_to_poses(source))
    assert fitted.scale == pytest.approx(truth.scale, rel=1e-9)
    np.testing.assert_allclose(fitted.rotation, truth.rotation, atol=1e-9)
    np.testing.assert_allclose(fitted.translation, truth.translation, atol=1e-8)


def test_fit_similarity_from_one_pose_keeps_the_fallback_scale():
    rng = np.random.default_rng(1)
    truth = random_similarity(rng)
    source = random_poses(rng, 1)
    fitted = fit_similarity(source, truth.apply_to_poses(source), fallback_scale=2.5)
    assert fitted.scale == 2.5
    np.testing.assert_allclose(fitted.rotation, truth.rotation, atol=1e-9)
    np.testing.assert_allclose(fitted.apply_to_poses(source), truth.apply_to_poses(source), atol=1e-9)


def test_fit_similarity_without_baseline_or_with_scale_off_uses_the_fallback():
    rng = np.random.default_rng(2)
    truth = random_similarity(rng)
    source = random_poses(rng, 4)
    still = source.copy()
    still[:, :3, 3] = still[0, :3, 3] + rng.normal(0.0, 1e-9, (4, 3))
    assert fit_similarity(still, truth.apply_to_poses(still), fallback_scale=0.7, min_baseline=1e-6).scale == 0.7
    assert fit_similarity(source, truth.apply_to_poses(source), fit_scale=False, fallback_scale=1.0).scale == 1.0


def test_project_to_rotation_returns_a_proper_rotation():
    rng = np.random.default_rng(3)
    matrices = np.stack([rng.normal(size=(3, 3)), -np.eye(3), np.diag([1.0, 1.0, -1.0]), 1.001 * np.eye(3)])
    rotations = project_to_rotation(matrices)
    for matrix, rotation in zip(matrices, rotations):
        np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(rotation) == pytest.approx(1.0)
        np.testing.assert_allclose(project_to_rotation(matrix), rotation, atol=1e-12)
    np.testing.assert_allclose(rotations[3], np.eye(3), atol=1e-12)  # a nearly orthonormal matrix moves a little


def test_similarity_moves_points_like_poses_move_camera_centres():
    rng = np.random.default_rng(4)
    similarity = random_similarity(rng)
    poses = random_poses(rng, 5)
    moved_centres = similarity.apply_to_poses(poses)[:, :3, 3]
    np.testing.assert_allclose(similarity.apply_to_points(poses[:, :3, 3]), moved_centres, atol=1e-9)
    points = rng.normal(size=(4, 6, 3)).astype(np.float32)
    assert similarity.apply_to_points(points).dtype == np.float32


def test_chain_of_noisy_windows_stays_close_to_the_truth():
    rng = np.random.default_rng(5)
    truth = np.tile(np.eye(4), (60, 1, 1))
    truth[:, :3, :3] = Rotation.from_rotvec(np.outer(np.arange(60), [0.0, 0.05, 0.0])).as_matrix()
    truth[:, :3, 3] = np.stack([np.sin(0.1 * np.arange(60)), np.zeros(60), 0.2 * np.arange(60)], axis=1)
    chain = PoseChain()
    chained: dict[int, np.ndarray] = {}
    size = 8
    for start in range(0, 60 - size + 1):
        ids = list(range(start, start + size))
        window = random_similarity(rng).apply_to_poses(truth[ids])
        window[:, :3, 3] += rng.normal(0.0, 1e-4 * np.abs(window[:, :3, 3]).max(), (size, 3))
        poses, _ = chain.add_window(ids, window)
        chained.setdefault(ids[-1], poses[-1])
        if start == 0:
            chained.update(zip(ids, poses))
    result = np.stack([chained[index] for index in range(60)])
    aligned = fit_similarity(result, truth)
    error = np.linalg.norm(aligned.apply_to_poses(result)[:, :3, 3] - truth[:, :3, 3], axis=1)
    extent = np.linalg.norm(truth[-1, :3, 3] - truth[0, :3, 3])
    assert error.max() < 0.01 * extent  # 60 frames of chaining drift less than 1 % of the path


def test_chain_reset_restarts_at_the_identity():
    rng = np.random.default_rng(6)
    chain = PoseChain()
    chain.add_window([0, 1, 2], random_poses(rng, 3))
    chain.reset()
    poses, similarity = chain.add_window([0, 1, 2], random_poses(rng, 3))
    np.testing.assert_allclose(poses[0], np.eye(4), atol=1e-12)
    assert similarity.scale == 1.0
