"""The synthetic demo clip (exact ground truth) and `geomotion demo`."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from geomotion_core.cli import main
from geomotion_core.demo import DemoClipConfig, render_clip, write_clip
from geomotion_core.demo.clip import INSTANCE_TRUTH
from geomotion_core.demo.scoring import score_instances, score_masks
from geomotion_core.eval.masks import read_labels

CONFIG = DemoClipConfig(frames=6)


@pytest.fixture(scope="module")
def clip():
    return render_clip(CONFIG)


@pytest.fixture(scope="module")
def background():
    return render_clip(replace(CONFIG, objects=0))


def _interior(mask: np.ndarray, margin: int = 2) -> np.ndarray:
    """Pixels at least ``margin`` away from the mask's boundary, inside it."""
    return cv2.erode(mask.astype(np.uint8), np.ones((2 * margin + 1,) * 2, np.uint8)).astype(bool)


def test_clip_is_deterministic_and_has_moving_objects(clip) -> None:
    again = render_clip(CONFIG)
    np.testing.assert_array_equal(again.frames, clip.frames)
    assert clip.frames.shape == (6, CONFIG.height, CONFIG.width, 3) and clip.frames.dtype == np.uint8
    assert clip.masks.shape == (6, CONFIG.height, CONFIG.width)
    coverage = clip.masks.mean(axis=(1, 2))
    assert (coverage > 0.01).all() and (coverage < 0.3).all()


def test_ground_truth_marks_exactly_the_object_pixels(clip, background) -> None:
    for frame, mask, plain in zip(clip.frames, clip.masks, background.frames):
        difference = np.abs(frame.astype(int) - plain.astype(int)).max(axis=-1)
        assert (difference[_interior(~mask)] == 0).all()  # outside the objects: the scene alone
        assert (difference[_interior(mask)] > 0).mean() > 0.95  # inside: the objects cover it


def test_objects_move_relative_to_the_background(clip, background) -> None:
    """Warping frame t to t+1 with the camera's homography explains the background, not the objects."""
    for t in range(len(clip.frames) - 1):
        relative = clip.homographies[t + 1] @ np.linalg.inv(clip.homographies[t])
        size = (CONFIG.width, CONFIG.height)
        predicted = cv2.warpPerspective(background.frames[t], relative, size).astype(int)
        valid = cv2.warpPerspective(np.ones(background.frames[t].shape[:2], np.uint8), relative, size) > 0
        valid &= _interior(valid, 3) & ~clip.masks[t + 1]
        assert np.abs(predicted - background.frames[t + 1])[valid].mean() < 3
        # a static object would land on its next mask; these objects do not
        carried = cv2.warpPerspective(clip.masks[t].astype(np.uint8), relative, size) > 0
        overlap = (carried & clip.masks[t + 1]).sum() / (carried | clip.masks[t + 1]).sum()
        assert overlap < 0.9


def test_write_clip_round_trip(tmp_path: Path, clip) -> None:
    frames_dir, truth_dir = write_clip(clip, tmp_path)
    frame = cv2.cvtColor(cv2.imread(str(frames_dir / "00003.png")), cv2.COLOR_BGR2RGB)
    truth = cv2.imread(str(truth_dir / "00003.png"), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(frame, clip.frames[3])
    np.testing.assert_array_equal(truth > 0, clip.masks[3])
    assert set(np.unique(truth)) == {0, 255}
    np.testing.assert_array_equal(read_labels(tmp_path / INSTANCE_TRUTH / "00003.png"), clip.instances[3])


def test_instance_truth_splits_the_mask_into_the_objects(clip) -> None:
    np.testing.assert_array_equal(clip.instances > 0, clip.masks)
    assert set(np.unique(clip.instances)) == {0, 1, 2}
    for number in (1, 2):  # each object is one piece in every frame
        for objects in clip.instances:
            count, _ = cv2.connectedComponents((objects == number).astype(np.uint8))
            assert count == 2


def test_instance_scores_of_perfect_swapped_and_merged_ids(clip) -> None:
    perfect = score_instances(clip.instances, clip.instances)
    assert (perfect.j_mean, perfect.f_mean, perfect.objects, perfect.switches) == (1.0, 1.0, 2, 0)
    swapped = clip.instances.copy()
    swapped[3:] = np.choose(clip.instances[3:], [0, 2, 1]).astype(np.uint8)
    assert score_instances(swapped, clip.instances).switches == 2
    merged = score_instances(clip.masks.astype(np.uint8), clip.instances)  # one id for both objects
    assert merged.objects == 2 and merged.j_mean < 0.75


def test_scores_of_perfect_and_empty_predictions(clip) -> None:
    perfect = score_masks(clip.masks, clip.masks)
    assert (perfect.j_mean, perfect.f_mean, perfect.frames) == (1.0, 1.0, 6)
    empty = score_masks(np.zeros_like(clip.masks), clip.masks)
    assert empty.j_mean == 0.0 and empty.f_mean == 0.0


def test_demo_command_segments_and_scores_the_clip(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("GEOMOTION_HOME", str(tmp_path / "no_weights"))
    picture = tmp_path / "readme" / "demo_overlay.png"
    assert main(["demo", "-o", str(tmp_path / "out"), "--frames", "8", "--device", "cpu", "--no-progress",
                 "--picture", str(picture)]) == 0
    printed = capsys.readouterr().out
    assert "backend geometric" in printed
    masks = sorted((tmp_path / "out" / "segmentation" / "masks").glob("*.png"))
    assert len(masks) == 8
    predicted = np.stack([cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 0 for path in masks])
    expected = score_masks(predicted, render_clip(replace(CONFIG, frames=8)).masks)
    assert f"J {expected.j_mean:.3f}  F {expected.f_mean:.3f}" in printed
    assert expected.j_mean > 0.3  # the weight-free backend finds the moving objects
    instances = np.stack([read_labels(path) for path in sorted((tmp_path / "out" / "segmentation" / "instances").glob("*.png"))])
    objects = score_instances(instances, render_clip(replace(CONFIG, frames=8)).instances)
    assert (f"instance scores (2 objects, davis2017-multi): J {objects.j_mean:.3f}  F {objects.f_mean:.3f}  "
            f"J&F {objects.j_and_f:.3f}  id switches {objects.switches}") in printed
    assert objects.switches == 0 and objects.j_mean > 0.3
    image = cv2.imread(str(picture))
    assert image.shape == (CONFIG.height, 3 * CONFIG.width + 8, 3)
    assert (tmp_path / "out" / "demo_overlay.png").is_file()
