# SPDX-License-Identifier: Apache-2.0
"""The instance stage: objects from motion masks, ids that persist, crossings, 3D motion, outputs."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from geomotion_core.demo import DemoClipConfig, render_clip, render_crossing
from geomotion_core.errors import ConfigError, InputError
from geomotion_core.eval.masks import read_labels
from geomotion_core.instances import InstanceConfig, InstanceTracker
from geomotion_core.instances.identity import identity_scores
from geomotion_core.instances.segments import components, group_components
from geomotion_core.instances.tracks import TrackLog
from geomotion_core.io.palette import davis_palette, render_instances, write_indexed_png, write_instance_png

CLIP = DemoClipConfig(frames=24)


def track(frames: np.ndarray, masks: np.ndarray, config: InstanceConfig | None = None) -> np.ndarray:
    """The instance maps ``[N, H, W]`` of a clip."""
    tracker = InstanceTracker(config)
    return np.stack([tracker.update(frame, mask).ids for frame, mask in zip(frames, masks)])


def disk(mask: np.ndarray, centre: tuple[int, int], radius: int) -> np.ndarray:
    cv2.circle(mask, centre, radius, 1, thickness=-1)
    return mask


@pytest.fixture(scope="module")
def clip():
    return render_clip(CLIP)


def test_demo_clip_objects_keep_their_ids_and_every_moving_pixel(clip) -> None:
    ids = track(clip.frames, clip.masks)
    np.testing.assert_array_equal(ids > 0, clip.masks)  # the objects are the mask, split: no pixel lost
    scores = identity_scores(ids, clip.instances)
    assert scores.switches == 0
    assert scores.matched == scores.objects == 2 * CLIP.frames
    assert len(np.unique(ids)) == 3  # two ids and the background over the whole clip


@pytest.mark.parametrize(("seed", "speed", "offset"), [(7, 3.5, 0.0), (7, 3.5, 20.0), (1, 5.0, 0.0), (2, 2.5, 20.0),
                                                    (3, 3.5, 40.0)])
def test_crossing_objects_keep_their_ids(seed: int, speed: float, offset: float) -> None:
    """Two objects cross, the larger in front, under a panning, zooming, rolling camera: with offset
    0 the smaller one is hidden for a few frames, with 20 it is mostly covered, with 40 touched.
    Both come out on the other side with the ids they had."""
    crossing = render_crossing(replace(CLIP, seed=seed, object_speed=speed), offset)
    ids = track(crossing.frames, crossing.masks)
    scores = identity_scores(ids, crossing.instances)
    assert scores.switches == 0
    first, last = ids[0], ids[-1]
    for number in (1, 2):
        before = np.bincount(first[crossing.instances[0] == number]).argmax()
        after = np.bincount(last[crossing.instances[-1] == number]).argmax()
        assert before == after != 0
    np.testing.assert_array_equal(ids > 0, crossing.masks)


@pytest.mark.parametrize("seed", [1, 7])
def test_an_object_covered_longer_than_remembered_gets_a_new_id(seed: int) -> None:
    """Slow objects (2.5 pixels a frame) crossing head-on: the smaller one is covered, wholly or in
    part, for 19 of the 24 frames. Remembered for 10 frames (the default) it comes out with a new id,
    one switch; remembered for 30 it keeps its id."""
    crossing = render_crossing(replace(CLIP, seed=seed, object_speed=2.5), 0.0)
    short = identity_scores(track(crossing.frames, crossing.masks), crossing.instances)
    long = identity_scores(track(crossing.frames, crossing.masks, InstanceConfig(memory=30)), crossing.instances)
    assert (short.switches, long.switches) == (1, 0)


def test_crossing_with_a_switch_is_counted(clip) -> None:
    """The identity measure counts a swap of two ids as a switch of each object."""
    swapped = clip.instances.copy()
    swapped[12:] = np.choose(clip.instances[12:], [0, 2, 1]).astype(np.uint8)
    scores = identity_scores(swapped, clip.instances)
    assert (scores.switches, scores.matched) == (2, 2 * CLIP.frames)
    assert identity_scores(clip.instances, clip.instances).switches == 0


def test_real_masks_keep_their_binary_j(davis_root: Path) -> None:
    """libby (a dog running through vegetation, partly hidden): the weight-free backend's masks of
    16 frames at 427x240; the union of the instances scores the same J against the ground truth
    (within 0.005: only isolated specks below the minimum area are dropped)."""
    from benchmarks.data import read_frames, read_masks
    from geomotion_core.backend import BackendOptions
    from geomotion_core.backends import build_backend
    from geomotion_core.eval.metrics import batch_scores

    frames = read_frames(davis_root, "libby", 16, size=(427, 240))
    truth = np.stack([cv2.resize(mask.astype(np.uint8), (427, 240), interpolation=cv2.INTER_NEAREST) > 0
                      for mask in read_masks(davis_root, "libby", 16)])
    masks = build_backend(BackendOptions(backend="geometric")).predict_window(frames).probability > 0.5
    ids = track(frames, masks)
    assert not (ids > 0)[~masks].any()  # the instances never add a pixel
    binary_j, union_j = (float(np.mean(batch_scores(prediction, truth)[0])) for prediction in (masks, ids > 0))
    assert binary_j > 0.3 and union_j >= binary_j - 0.005


def test_parts_that_move_together_are_one_object_and_small_specks_are_dropped() -> None:
    mask = np.zeros((240, 320), np.uint8)
    disk(mask, (100, 120), 20)
    disk(mask, (140, 120), 15)  # 5 pixels from the first: a part of the same object when it moves alike
    disk(mask, (260, 60), 18)  # far away: another object
    disk(mask, (60, 220), 2)  # a speck far from everything
    labels, stats, centroids = components(mask)
    assert len(stats) == 5
    config = InstanceConfig()
    together = np.zeros((5, 2))
    for (x, y), motion in (((100, 120), [3, 1]), ((140, 120), [3.2, 1]), ((260, 60), [-4, 0])):
        together[labels[y, x]] = motion
    grouped = group_components(stats, centroids, config, labels.shape, together)
    assert grouped.count == 2
    segment_of = grouped.segment_of
    assert segment_of[labels[120, 100]] == segment_of[labels[120, 140]] != segment_of[labels[60, 260]]
    assert segment_of[labels[220, 60]] == 0  # too small and alone
    apart = together.copy()
    apart[labels[120, 140]] = [-3, 1]
    assert group_components(stats, centroids, config, labels.shape, apart).count == 3
    assert group_components(stats, centroids, config, labels.shape, None).count == 3  # motion unknown: no merging


def test_a_speck_next_to_an_object_joins_it() -> None:
    mask = disk(np.zeros((240, 320), np.uint8), (100, 120), 20)
    disk(mask, (128, 120), 2)
    labels, stats, centroids = components(mask)
    grouped = group_components(stats, centroids, InstanceConfig(), labels.shape, None)
    assert grouped.count == 1 and grouped.area[1] == mask.sum()


def test_ids_survive_a_short_disappearance_and_are_never_reused(clip) -> None:
    tracker = InstanceTracker(InstanceConfig(memory=3))
    empty = np.zeros_like(clip.masks[0])
    seen = [tracker.update(clip.frames[index], clip.masks[index]) for index in range(6)]
    original = {item.id for item in seen[-1].objects}
    gaps = [tracker.update(clip.frames[index], empty) for index in (6, 7)]
    assert gaps[0].vanished == sorted(original) and not gaps[0].objects
    back = tracker.update(clip.frames[8], clip.masks[8])
    assert {item.id for item in back.objects} == original  # remembered through the gap
    ended = [tracker.update(clip.frames[index], empty).ended for index in range(9, 14)]
    assert sorted(sum(ended, [])) == sorted(original)
    again = tracker.update(clip.frames[14], clip.masks[14])
    assert {item.id for item in again.objects}.isdisjoint(original)


def test_objects_report_box_area_centroid_and_motion(clip) -> None:
    tracker = InstanceTracker()
    for frame, mask in zip(clip.frames[:4], clip.masks[:4]):
        result = tracker.update(frame, mask)
    for item in result.objects:
        pixels = result.ids == item.id
        ys, xs = np.nonzero(pixels)
        assert item.area == pixels.sum()
        assert item.box == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
        np.testing.assert_allclose(item.centroid, (xs.mean(), ys.mean()), atol=1e-6)
        assert item.image_velocity is not None and item.centroid_3d is None


def test_three_d_centroid_and_velocity_in_the_camera_frame(clip) -> None:
    """Points of a plane 5 m ahead; the objects' points move 0.5 m/s along x in the world while the
    camera, turned 90 degrees about z, is static: in the camera frame they move along -y."""
    height, width = clip.masks.shape[1:]
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    camera_points = np.stack([(cols - width / 2) / 100, (rows - height / 2) / 100, np.full_like(rows, 5.0)], axis=-1)
    pose = np.eye(4)
    pose[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]
    pose[:3, 3] = [1.0, 2.0, 3.0]
    tracker = InstanceTracker()
    for index in range(3):
        world = camera_points @ pose[:3, :3].T + pose[:3, 3]
        world = world + np.where(clip.masks[index][..., None], np.array([0.5 * index, 0, 0], np.float32), 0)
        result = tracker.update(clip.frames[index], clip.masks[index], stamp=1.0 + index, points=world, pose=pose)
    for item in result.objects:
        inside = camera_points[::2, ::2][(result.ids == item.id)[::2, ::2]]
        expected = inside.mean(axis=0) + pose[:3, :3].T @ np.array([1.0, 0, 0])
        np.testing.assert_allclose(item.centroid_3d, expected, atol=0.05)
        np.testing.assert_allclose(item.velocity_3d, pose[:3, :3].T @ np.array([0.5, 0, 0]), atol=0.15)


def test_bad_input_and_settings_are_refused(clip) -> None:
    with pytest.raises(InputError, match="mask of its size"):
        InstanceTracker().update(clip.frames[0], clip.masks[0][:-1])
    with pytest.raises(ConfigError, match="min_area"):
        InstanceConfig(min_area=2.0)
    with pytest.raises(ConfigError, match="memory"):
        InstanceConfig(memory=-1)
    with pytest.raises(ConfigError, match="flow_scale"):
        InstanceConfig(flow_scale=0.0)
    with pytest.raises(ConfigError, match="motion_scale"):
        InstanceConfig(motion_scale=1.5)


def test_a_new_frame_size_starts_a_new_stream(clip) -> None:
    tracker = InstanceTracker()
    tracker.update(clip.frames[0], clip.masks[0])
    small = render_clip(replace(CLIP, frames=2, width=160, height=120))  # too small for DIS at motion_scale
    result = tracker.update(small.frames[0], small.masks[0])
    assert {item.id for item in result.objects} == {1, 2} and not result.vanished
    result = tracker.update(small.frames[1], small.masks[1])  # the flow runs at the smallest size DIS takes
    assert np.array_equal(result.ids > 0, small.masks[1] > 0)


def test_indexed_png_round_trip_with_the_davis_palette(tmp_path: Path, clip) -> None:
    path = tmp_path / "00000.png"
    write_indexed_png(path, clip.instances[0])
    np.testing.assert_array_equal(read_labels(path), clip.instances[0])
    from PIL import Image

    with Image.open(path) as image:
        assert image.mode == "P"
        palette = np.array(image.getpalette()[:9]).reshape(3, 3)
    np.testing.assert_array_equal(palette, davis_palette()[:3])
    np.testing.assert_array_equal(palette[1:], [[128, 0, 0], [0, 128, 0]])  # DAVIS object 1 red, 2 green
    with pytest.raises(InputError, match="up to 255"):
        write_indexed_png(path, np.full((4, 4), 300, np.uint16))
    wide = np.full((4, 4), 300, np.uint16)
    write_instance_png(tmp_path / "wide.png", wide)
    np.testing.assert_array_equal(read_labels(tmp_path / "wide.png"), wide)


def test_instance_overlay_colours_each_object(clip) -> None:
    picture = render_instances(clip.frames[0], clip.instances[0])
    assert picture.shape == clip.frames[0].shape
    np.testing.assert_array_equal(picture[clip.instances[0] == 0], clip.frames[0][clip.instances[0] == 0])
    for number, colour in ((1, [128, 0, 0]), (2, [0, 128, 0])):  # DAVIS object 1 red, 2 green
        inner = cv2.erode((clip.instances[0] == number).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        blend = 0.5 * clip.frames[0][inner] + 0.5 * np.array(colour)
        assert np.abs(picture[inner] - blend).max() <= 1


def test_track_log_records_each_object(tmp_path: Path, clip) -> None:
    tracker, log = InstanceTracker(), TrackLog()
    for index in range(5):
        log.add(f"{index:05d}", index, index / 10, tracker.update(clip.frames[index], clip.masks[index]))
    log.write(tmp_path / "tracks.json")
    records = json.loads((tmp_path / "tracks.json").read_text())["tracks"]
    assert [record["id"] for record in records] == [1, 2]
    for record in records:
        assert (record["first_frame"], record["last_frame"], record["frames"]) == ("00000", "00004", 5)
        first = record["observations"][0]
        assert set(first) == {"frame", "index", "stamp", "box", "area", "centroid", "image_velocity", "centroid_3d",
                              "velocity_3d"}
        assert len(first["box"]) == 4 and first["area"] > 0 and first["image_velocity"] is None
