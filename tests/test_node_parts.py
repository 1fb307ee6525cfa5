"""The node's building blocks without DDS: frame tracking, CameraInfo pairing, messages, diagnostics."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="needs the ROS 2 Python packages (PyPI wheels or a ROS install)")

from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from geomotion_core.demo.clip import DemoClipConfig, render_clip  # noqa: E402
from geomotion_ros import messages  # noqa: E402
from geomotion_ros.diagnostics import PipelineMonitor, pipeline_status  # noqa: E402
from geomotion_ros.pairing import (  # noqa: E402
    CameraInfoCache,
    CameraInfoTable,
    camera_info_store,
    message_filters_available,
    usable_intrinsics,
)
from geomotion_ros.tracking import FrameTracker, TrackedFrame  # noqa: E402
from ros_harness import camera_info_for, stamped_image  # noqa: E402

pytestmark = pytest.mark.ros


def frame() -> np.ndarray:
    """One 214x120 RGB frame of the demo clip."""
    return render_clip(DemoClipConfig(frames=1, width=214, height=120)).frames[0]


def header_at(second: int, nanosecond: int = 0) -> Header:
    header = Header(frame_id="camera_optical")
    header.stamp.sec, header.stamp.nanosec = second, nanosecond
    return header


def test_tracker_returns_each_frame_once_and_forgets_the_skipped_ones():
    tracker = FrameTracker(image_slots=3)
    rgb = np.zeros((4, 4, 3), np.uint8)
    indices = [tracker.add(TrackedFrame(header_at(i), rgb, float(i), 0)) for i in range(6)]
    assert indices == list(range(6))
    assert tracker.images_held == 3  # only the newest frames keep their image
    frame = tracker.take(2)  # 0 and 1 were dropped by the engine
    assert frame.header.stamp.sec == 2 and frame.rgb is None
    assert len(tracker) == 3 and tracker.take(1) is None and tracker.take(2) is None
    assert tracker.take(5).rgb is rgb
    assert len(tracker) == 0


def test_tracker_withdraw_keeps_the_numbering_in_step_with_the_engine():
    tracker = FrameTracker(image_slots=2)
    frame = TrackedFrame(header_at(0), None, 0.0, 0)
    tracker.add(frame)
    refused = tracker.add(frame)
    tracker.withdraw(refused, counted=True)  # the engine numbered it and refused it
    invalid = tracker.add(frame)
    tracker.withdraw(invalid, counted=False)  # the engine raised before numbering it
    assert (refused, invalid) == (1, 2)
    assert tracker.add(frame) == 2


STORES = [
    pytest.param(CameraInfoTable, id="table"),
    pytest.param(CameraInfoCache, id="message_filters.Cache", marks=pytest.mark.skipif(
        not message_filters_available(), reason="message_filters is not importable (ROS 2 from apt only)")),
]


@pytest.mark.parametrize("store", STORES)
def test_camera_info_pairs_by_exact_stamp_then_falls_back_to_the_latest(store):
    rgb = frame()
    table = store(capacity=2)
    assert table.lookup(header_at(1).stamp) is None
    infos = [camera_info_for(stamped_image(rgb, second, 5)) for second in (1, 2, 3)]
    for info in infos:
        table.add(info)
    assert table.lookup(header_at(2, 5).stamp) is infos[1]
    assert table.lookup(header_at(1, 5).stamp) is infos[2]  # evicted: the latest instead
    k = table.intrinsics(header_at(3, 5).stamp, 214, 120)
    np.testing.assert_allclose(k, [[0.8 * 214, 0, 107], [0, 0.8 * 214, 60], [0, 0, 1]])
    assert table.intrinsics(header_at(3, 5).stamp, 640, 480) is None  # another size


def test_the_node_uses_message_filters_exactly_where_it_is_importable():
    expected = CameraInfoCache if message_filters_available() else CameraInfoTable
    assert type(camera_info_store()) is expected


@pytest.mark.parametrize("store", STORES)
def test_camera_info_with_non_finite_or_zero_focal_gives_no_intrinsics(store):
    rgb = frame()
    info = camera_info_for(stamped_image(rgb, 4, 0))
    assert usable_intrinsics(info) is not None
    for k in ([float("nan")] * 9, [0.0] * 9, [1e3, 0, 107, 0, float("inf"), 60, 0, 0, 1]):
        info.k = k
        assert usable_intrinsics(info) is None
        table = store()
        table.add(info)
        assert table.intrinsics(header_at(4).stamp, 214, 120) is None  # no "got shape (3, 3)" rejection
        assert table.lookup(header_at(4).stamp) is info  # still republished with the mask


def test_mask_camera_info_takes_the_mask_header():
    rgb = frame()
    info = camera_info_for(stamped_image(rgb, 7, 0))
    out = messages.mask_camera_info(info, header_at(9, 1))
    assert (out.header.stamp.sec, out.header.stamp.nanosec) == (9, 1)
    assert list(out.k) == list(info.k) and (out.width, out.height) == (214, 120)


def test_pose_message_carries_the_camera_to_world_transform():
    pose = np.eye(4)
    pose[:3, :3] = Rotation.from_euler("xyz", [0.1, -0.4, 0.25]).as_matrix()
    pose[:3, 3] = [1.5, -2.0, 0.25]
    msg = messages.pose_stamped(pose, header_at(4, 2), "geomotion_odom")
    assert msg.header.frame_id == "geomotion_odom" and msg.header.stamp.nanosec == 2
    q = msg.pose.orientation
    np.testing.assert_allclose(Rotation.from_quat([q.x, q.y, q.z, q.w]).as_matrix(), pose[:3, :3], atol=1e-12)
    assert (msg.pose.position.x, msg.pose.position.y, msg.pose.position.z) == (1.5, -2.0, 0.25)


def forward_motion(steps: int, step: float = 0.5) -> np.ndarray:
    """Camera-to-world optical poses of a camera driving forward (optical +z), yawing left slowly."""
    poses = np.repeat(np.eye(4)[None], steps, axis=0)
    for i in range(steps):
        # yaw left = rotation about the body z (up) axis = about optical -y
        poses[i, :3, :3] = Rotation.from_rotvec([0.0, -0.05 * i, 0.0]).as_matrix()
        poses[i, :3, 3] = [0.0, 0.0, step * i]
    return poses


def test_odometry_pose_follows_rep_103_axes():
    poses = np.stack([messages.odom_pose(pose) for pose in forward_motion(5)])
    np.testing.assert_allclose(poses[:, :3, 3], [[0.5 * i, 0, 0] for i in range(5)], atol=1e-12)  # forward is +x
    # the camera's optical axis (its z) points along odometry +x at the start; yaw left turns it to +y
    np.testing.assert_allclose(poses[0, :3, 2], [1, 0, 0], atol=1e-12)
    assert poses[4, 1, 2] > 0.15
    # the optical y axis (down) is odometry -z; the optical x axis (right) is odometry -y
    np.testing.assert_allclose(poses[0, :3, 1], [0, 0, -1], atol=1e-12)
    np.testing.assert_allclose(poses[0, :3, 0], [0, -1, 0], atol=1e-12)
    assert np.isclose(np.linalg.det(messages.OPTICAL_TO_BODY), 1.0)


def test_transform_and_odometry_messages_carry_the_same_pose():
    pose = messages.odom_pose(forward_motion(4)[3])
    header = header_at(12, 34)
    tf = messages.transform_stamped(pose, header, "geomotion_odom", "camera_optical")
    assert (tf.header.frame_id, tf.child_frame_id, tf.header.stamp.sec, tf.header.stamp.nanosec) == \
        ("geomotion_odom", "camera_optical", 12, 34)
    t, r = tf.transform.translation, tf.transform.rotation
    np.testing.assert_allclose([t.x, t.y, t.z], pose[:3, 3], atol=1e-12)
    np.testing.assert_allclose(Rotation.from_quat([r.x, r.y, r.z, r.w]).as_matrix(), pose[:3, :3], atol=1e-12)
    odometry = messages.odometry(pose, header, "geomotion_odom", "camera_optical")
    assert (odometry.header.frame_id, odometry.child_frame_id) == ("geomotion_odom", "camera_optical")
    p, q = odometry.pose.pose.position, odometry.pose.pose.orientation
    assert [p.x, p.y, p.z, q.x, q.y, q.z, q.w] == [t.x, t.y, t.z, r.x, r.y, r.z, r.w]
    covariance = np.asarray(odometry.pose.covariance).reshape(6, 6)
    assert np.all(np.diag(covariance)[:3] == messages.UNKNOWN_SCALE_VARIANCE)  # scale is arbitrary
    assert np.all(np.diag(covariance)[3:] < 1.0)


def test_static_points_leave_out_moving_and_invalid_pixels():
    points = np.arange(4 * 6 * 3, dtype=np.float32).reshape(4, 6, 3)
    points[0, 0] = np.nan
    mask = np.zeros((4, 6), np.uint8)
    mask[2:, :] = 255
    cloud = messages.static_points(points, mask, stride=2, header=header_at(1), frame_id="geomotion_odom")
    xyz = np.frombuffer(cloud.data, np.float32).reshape(-1, 3)
    optical = points[0:2:2, ::2].reshape(-1, 3)[1:]  # row 0 only (rows 2+ move), first point is NaN
    # REP 103 odometry axes: x = optical z (forward), y = -optical x (left), z = -optical y (up)
    np.testing.assert_array_equal(xyz, np.stack([optical[:, 2], -optical[:, 0], -optical[:, 1]], axis=1))
    assert (cloud.width, cloud.height, cloud.point_step, cloud.row_step) == (2, 1, 12, 24)
    assert [f.name for f in cloud.fields] == ["x", "y", "z"]


def test_overlay_is_bgr_with_the_input_header():
    rgb = frame()
    mask = np.zeros((120, 214), np.uint8)
    mask[40:80, 50:150] = 255
    out = messages.overlay_image(rgb, mask, header_at(3))
    bgr = np.frombuffer(out.data, np.uint8).reshape(120, 214, 3)
    assert out.encoding == "bgr8" and out.header.stamp.sec == 3
    np.testing.assert_array_equal(bgr[5, 5], rgb[5, 5, ::-1])  # outside the mask: untouched
    assert not np.array_equal(bgr[60, 100], rgb[60, 100, ::-1])  # inside: tinted


def test_monitor_rates_and_latency_percentiles():
    monitor = PipelineMonitor()
    for i in range(50):  # 10 Hz for 5 s, each published 100 ms (i even) or 300 ms (i odd) after arrival
        monitor.frame_received(100.0 + i * 0.1)
        monitor.frame_published(100.0 + i * 0.1, 100.0 + i * 0.1 + (0.1 if i % 2 == 0 else 0.3))
    monitor.frame_rejected()
    snapshot = monitor.snapshot(dropped=3, queue_depth=2, resets=1, now=105.0)
    assert snapshot.input_rate_hz == pytest.approx(10.0, abs=0.21)
    assert snapshot.processed_rate_hz == pytest.approx(10.0, abs=0.41)
    assert snapshot.latency_p50_ms == pytest.approx(200.0)
    assert snapshot.latency_p95_ms == pytest.approx(300.0)
    assert (snapshot.received, snapshot.processed, snapshot.rejected, snapshot.dropped) == (50, 50, 1, 3)
    status = pipeline_status("geomotion_node: pipeline", snapshot, "cpu", "8/4", active=True, drops_expected=True)
    values = {pair.key: pair.value for pair in status.values}
    assert status.level == DiagnosticStatus.WARN and "rejected" in status.message
    assert values["frames_dropped"] == "3" and values["queue_depth"] == "2" and values["device"] == "cpu"
    idle = monitor.snapshot(dropped=4, queue_depth=0, resets=0, now=200.0)
    assert idle.input_rate_hz == 0.0
    assert pipeline_status("n", idle, "cpu", "8/4", active=False, drops_expected=True).level == DiagnosticStatus.ERROR
    clean = PipelineMonitor().snapshot(dropped=4, queue_depth=0, resets=0, now=1.0)
    assert pipeline_status("n", clean, "cpu", "8/4", active=True, drops_expected=True).level == DiagnosticStatus.OK
    assert pipeline_status("n", clean, "cpu", "8/4", active=True, drops_expected=False).level == DiagnosticStatus.WARN
