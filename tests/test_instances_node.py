"""geomotion_node's instance outputs over real DDS: ``motion_instances`` (mono16 ids with the input
header) and ``moving_objects`` (MarkerArray: box and id label per object, 3D centroid and velocity
with points, DELETE for objects that are gone).

The node and a probe in this process (the harness of test_node.py). The backend replays the demo
clip's exact masks (and, for 3D, known points), so every expected message is known.
"""
from __future__ import annotations

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 Python packages (PyPI wheels or a ROS install)")

from sensor_msgs.msg import Image  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from geomotion_core.demo import DemoClipConfig, render_clip  # noqa: E402
from geomotion_core.instances.identity import identity_scores  # noqa: E402
from geomotion_core.types import WindowPrediction  # noqa: E402
from geomotion_ros.conversions import image_to_array  # noqa: E402
from ros_harness import camera_info_for, wait_for  # noqa: E402
from test_node import launch, publish_stream, stamp_of  # noqa: E402,F401  (launch: the fixture)

pytestmark = pytest.mark.ros

FRAMES = 10
INSTANCES = {"instances.enabled": True, "window.size": 4, "window.stride": 2}
BACKGROUND_DEPTH, OBJECT_DEPTH = 5.0, 4.0


@pytest.fixture(scope="module")
def clip():
    return render_clip(DemoClipConfig(frames=FRAMES))


class ClipBackend:
    """The clip's exact masks as probabilities, an unmoving camera and (optionally) its points:
    the background on the plane z = 5, the objects on z = 4, in the camera's optical frame."""

    name = "clip"

    def __init__(self, masks: np.ndarray, visible: np.ndarray | None = None, points: bool = False) -> None:
        self.masks = masks if visible is None else masks & visible[:, None, None]
        self.points = points

    def predict_window(self, frames, frame_ids=None, intrinsics=None) -> WindowPrediction:
        masks = self.masks[list(frame_ids)]
        poses = np.repeat(np.eye(4)[None], len(frames), axis=0)
        world = None
        if self.points:
            height, width = masks.shape[1:]
            focal = 0.8 * width  # camera_info_for's camera
            rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
            depth = np.where(masks, OBJECT_DEPTH, BACKGROUND_DEPTH).astype(np.float32)
            world = np.stack([(cols - width / 2) / focal * depth, (rows - height / 2) / focal * depth, depth], axis=-1)
        return WindowPrediction(masks.astype(np.float32), poses, world)

    def reset(self) -> None:
        pass


class Outputs:
    """The probe's subscriptions to the two instance topics."""

    def __init__(self, probe, node) -> None:
        self.instances: list[Image] = []
        self.objects: list[MarkerArray] = []
        probe.node.create_subscription(Image, "motion_instances", self.instances.append, 100)
        probe.node.create_subscription(MarkerArray, "moving_objects", self.objects.append, 100)
        publishers = (node._outputs.instances, node._outputs.objects)
        assert wait_for(lambda: all(p.get_subscription_count() > 0 for p in publishers), 10.0)

    def wait(self, count: int) -> None:
        assert wait_for(lambda: len(self.instances) == count and len(self.objects) == count, 20.0), \
            f"{len(self.instances)} instance maps and {len(self.objects)} marker arrays of {count}"


def by_kind(markers: MarkerArray, namespace: str, action: int = Marker.ADD) -> dict[int, Marker]:
    return {m.id: m for m in markers.markers if m.ns == namespace and m.action == action}


def test_instances_and_markers_follow_each_object_with_its_id(launch, clip):
    node, probe = launch(**INSTANCES)
    node.engine.backend = ClipBackend(clip.masks)
    outputs = Outputs(probe, node)
    sent = publish_stream(probe, clip.frames)
    outputs.wait(FRAMES)
    maps = []
    for message, image, markers in zip(sent, outputs.instances, outputs.objects):
        assert (image.encoding, image.header.frame_id) == ("mono16", "camera_optical")
        assert stamp_of(image) == stamp_of(message)
        ids = image_to_array(image)
        maps.append(ids)
        shown = {int(value) for value in np.unique(ids)} - {0}
        assert shown == set(by_kind(markers, "box")) == set(by_kind(markers, "label"))
        intrinsics = np.array(camera_info_for(message).k).reshape(3, 3)
        for marker_id, box in by_kind(markers, "box").items():
            assert box.type == Marker.LINE_STRIP and box.header.frame_id == "camera_optical" and len(box.points) == 5
            ys, xs = np.nonzero(ids == marker_id)
            corner = intrinsics @ np.array([box.points[0].x, box.points[0].y, box.points[0].z])
            np.testing.assert_allclose(corner[:2] / corner[2], [xs.min(), ys.min()], atol=1e-6)  # at depth 1
            assert box.points[0].z == pytest.approx(1.0)
            assert by_kind(markers, "label")[marker_id].text == str(marker_id)
            assert by_kind(markers, "label")[marker_id].type == Marker.TEXT_VIEW_FACING
        assert set(by_kind(markers, "centroid", Marker.DELETE)) == set(by_kind(markers, "box"))  # no 3D points
    maps = np.stack(maps)
    np.testing.assert_array_equal(maps > 0, clip.masks)
    scores = identity_scores(maps, clip.instances)
    assert scores.switches == 0 and scores.matched == 2 * FRAMES
    assert outputs.objects[0].markers[0].action == Marker.DELETEALL  # a new stream clears old markers


def test_objects_that_leave_are_deleted(launch, clip):
    node, probe = launch(**INSTANCES)
    visible = np.arange(FRAMES) < 6  # the objects vanish after frame 5
    node.engine.backend = ClipBackend(clip.masks, visible)
    outputs = Outputs(probe, node)
    publish_stream(probe, clip.frames)
    outputs.wait(FRAMES)
    seen = set(by_kind(outputs.objects[5], "box"))
    assert len(seen) == 2
    for namespace in ("box", "label", "centroid", "velocity"):
        assert set(by_kind(outputs.objects[6], namespace, Marker.DELETE)) == seen
    assert not by_kind(outputs.objects[6], "box") and not image_to_array(outputs.instances[6]).any()


def test_points_give_each_object_a_3d_centroid_and_velocity(launch, clip):
    node, probe = launch(**INSTANCES)
    node.engine.backend = ClipBackend(clip.masks, points=True)
    outputs = Outputs(probe, node)
    sent = publish_stream(probe, clip.frames)
    outputs.wait(FRAMES)
    for index, (message, image, markers) in enumerate(zip(sent, outputs.instances, outputs.objects)):
        ids = image_to_array(image)
        intrinsics = np.array(camera_info_for(message).k).reshape(3, 3)
        spheres, arrows = by_kind(markers, "centroid"), by_kind(markers, "velocity")
        assert set(spheres) == set(by_kind(markers, "box"))
        for marker_id, sphere in spheres.items():
            centre = np.array([sphere.pose.position.x, sphere.pose.position.y, sphere.pose.position.z])
            assert centre[2] == pytest.approx(OBJECT_DEPTH, rel=1e-5)
            ys, xs = np.nonzero(ids == marker_id)
            seen_at = intrinsics @ centre
            np.testing.assert_allclose(seen_at[:2] / seen_at[2], [xs.mean(), ys.mean()], atol=1.0)  # ~ pixel centroid
            assert by_kind(markers, "box")[marker_id].points[0].z == pytest.approx(OBJECT_DEPTH, rel=1e-5)
            if index == 0:
                assert marker_id not in arrows  # one frame: no velocity yet
                continue
            previous = by_kind(outputs.objects[index - 1], "centroid")[marker_id].pose.position
            start, end = arrows[marker_id].points
            moved = np.array([end.x - start.x, end.y - start.y, end.z - start.z])
            seconds = (stamp_of(message)[0] - stamp_of(sent[index - 1])[0]) + \
                      (stamp_of(message)[1] - stamp_of(sent[index - 1])[1]) * 1e-9
            expected = (centre - [previous.x, previous.y, previous.z]) / seconds
            np.testing.assert_allclose(moved, expected, atol=1e-4)
            assert np.linalg.norm(moved) > 0.01  # the objects move
