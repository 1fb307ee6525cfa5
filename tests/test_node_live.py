"""geomotion_node as a robot runs it, over real DDS: the low-latency ``newest`` mode, continuity over
input gaps, REP 103 odometry, wiring (compressed remap, missing input, wrong type, live parameters),
two namespaced cameras and recovery from failing windows.

Like test_node.py: the node and a probe in this process, reliable QoS, publication only after
matching, waits on conditions. Backends are the real weight-free one, wrapped where a test needs to
control timing (a gate or a fixed delay) or to feed a known camera motion.
"""
from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 Python packages (PyPI wheels or a ROS install)")

from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402
from sensor_msgs.msg import CompressedImage  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from geomotion_core.types import WindowPrediction  # noqa: E402
from geomotion_ros.messages import OPTICAL_TO_BODY  # noqa: E402
from geomotion_ros.node import GeoMotionNode, start  # noqa: E402
from benchmarks.data import read_frames  # noqa: E402
from ros_harness import Probe, SpinThread, camera_info_for, stamped_image, wait_for  # noqa: E402
from test_node import BASE_PARAMETERS, SIZE, launch, stamp_of  # noqa: E402,F401  (launch: the fixture)

pytestmark = pytest.mark.ros

NEWEST = {"policy": "newest", "window.size": 4, "window.stride": 1, "queue.max_frames": 8}


@pytest.fixture(scope="module")
def frames(davis_root) -> np.ndarray:
    return read_frames(davis_root, "car-shadow", 24, size=SIZE)


class GatedBackend:
    """Wraps a backend; each window waits until the test opens the gate once."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.name = backend.name
        self.calls: list[list[int]] = []
        self.entered = threading.Semaphore(0)
        self.gate = threading.Semaphore(0)

    def predict_window(self, frames, frame_ids=None, intrinsics=None) -> WindowPrediction:
        self.calls.append(list(frame_ids))
        self.entered.release()
        assert self.gate.acquire(timeout=30.0), "the test never opened the gate"
        return self.backend.predict_window(frames, frame_ids=frame_ids, intrinsics=intrinsics)

    def reset(self) -> None:
        self.backend.reset()


class SlowBackend:
    """Wraps a backend; every window lasts until ``frames`` more camera frames reached the node.

    A backend exactly that many camera periods slow, whatever the load on the machine (a sleep
    would stretch with it), so the expected spacing of the masks is known.
    """

    def __init__(self, backend, node: GeoMotionNode, frames: int, camera_frames: int) -> None:
        self.backend, self.node, self.frames, self.name = backend, node, frames, backend.name
        self.last = camera_frames  # no wait beyond the frames the camera sends
        self.windows = 0

    def predict_window(self, frames, frame_ids=None, intrinsics=None) -> WindowPrediction:
        target = self.node.monitor.received + self.frames
        prediction = self.backend.predict_window(frames, frame_ids=frame_ids, intrinsics=intrinsics)
        wait_for(lambda: self.node.monitor.received >= target or self.node.monitor.received >= self.last, 10.0,
                 interval=0.002)
        self.windows += 1
        return prediction

    def reset(self) -> None:
        self.backend.reset()


class ForwardBackend:
    """The real backend's masks with a known camera motion: 0.1 per frame along the optical axis."""

    def __init__(self, backend) -> None:
        self.backend, self.name = backend, backend.name

    def predict_window(self, frames, frame_ids=None, intrinsics=None) -> WindowPrediction:
        prediction = self.backend.predict_window(frames, frame_ids=frame_ids, intrinsics=intrinsics)
        poses = np.repeat(np.eye(4)[None], len(frames), axis=0)
        poses[:, 2, 3] = 0.1 * np.asarray(frame_ids, dtype=float)  # window frame = the stream's optical frame
        return WindowPrediction(prediction.probability, poses, timings=prediction.timings)

    def reset(self) -> None:
        self.backend.reset()


def received(node: GeoMotionNode, count: int) -> None:
    assert wait_for(lambda: node.monitor.received >= count, 10.0), f"the node got {node.monitor.received}/{count}"


def feed(node: GeoMotionNode, probe: Probe, images: np.ndarray, first_second: int = 1000, **image_options) -> list:
    """Publish frames one at a time, each once the worker took the one before: with policy newest
    (which skips frames that wait while a newer one is queued) every frame is then processed."""
    sent, before = [], node.monitor.received
    for i, rgb in enumerate(images):
        sent.append(stamped_image(rgb, first_second + i, 0, **image_options))
        probe.images.publish(sent[-1])
        received(node, before + i + 1)
        assert wait_for(lambda: node.engine.stats.queue_depth == 0, 10.0)
    return sent


def test_each_mask_belongs_to_the_newest_frame_when_its_window_started(launch, frames):
    node, probe = launch(**NEWEST)
    gated = GatedBackend(node.engine.backend)
    node.engine.backend = gated
    sent = []

    def publish(first: int, count: int) -> None:
        for i in range(first, first + count):
            sent.append(stamped_image(frames[i], 1000 + i, 0))
            probe.images.publish(sent[-1])
        received(node, len(sent))

    publish(0, 2)
    expected_last = []
    for more in (3, 1, 4, 2):  # while a window runs, `more` frames arrive; the next window ends at the newest
        assert gated.entered.acquire(timeout=10.0)
        expected_last.append(len(sent) - 1)
        publish(len(sent), more)
        gated.gate.release()
    assert gated.entered.acquire(timeout=10.0)
    expected_last.append(len(sent) - 1)
    gated.gate.release()
    assert [call[-1] for call in gated.calls] == expected_last == [1, 4, 5, 9, 11]
    published = [0, *expected_last]  # the first window (2 frames) also finalises frame 0
    assert wait_for(lambda: len(probe.get("masks")) == len(published), 10.0)
    assert [stamp_of(m) for m in probe.get("masks")] == [stamp_of(sent[i]) for i in published]
    stats = node.engine.stats
    assert stats.dropped_stale == len(sent) - len(published) and stats.processed == len(published)


def test_masks_are_evenly_spaced_under_a_30_hz_camera_with_a_slow_backend(launch, frames):
    node, probe = launch(**NEWEST)
    period, count = 1.0 / 30.0, 100
    slow = SlowBackend(node.engine.backend, node, frames=8, camera_frames=count)  # 8 camera periods per window
    node.engine.backend = slow
    started = time.monotonic()
    for i in range(count):
        forth_and_back = i % (2 * len(frames) - 2)  # no cut back to the first frame
        frame = frames[min(forth_and_back, 2 * len(frames) - 2 - forth_and_back)]
        probe.images.publish(stamped_image(frame, 2000 + i, 0))
        time.sleep(max(0.0, started + (i + 1) * period - time.monotonic()))  # pacing: a 30 Hz camera
    received(node, count)
    assert wait_for(lambda: node.engine.stats.queue_depth == 0 and slow.windows == len(probe.get("masks")) - 1, 10.0)
    indices = [stamp_of(m)[0] - 2000 for m in probe.get("masks")]
    assert indices == sorted(indices) and len(indices) >= 8
    # the first window finalises frames 0 and 1 together; the last ones ran out of camera frames
    gaps = np.diff([index for index in indices[1:] if index + 1 + slow.frames <= count])
    median = float(np.median(gaps))
    assert 8 <= median <= 9, gaps  # one window's time between processed frames, no bursts
    assert np.all(gaps <= 1.5 * median) and np.all(gaps >= median / 1.5), gaps


def test_a_short_gap_keeps_the_trajectory_continuous(launch, frames):
    node, probe = launch(**{**NEWEST, "stream.end_after": 0.3})
    node.engine.backend = ForwardBackend(node.engine.backend)
    first = feed(node, probe, frames[:6], first_second=1000)
    assert wait_for(lambda: len(probe.get("odometries")) == 6, 10.0)
    time.sleep(1.5)  # the scenario: the camera pauses for 1.5 s (longer than stream.end_after)
    second = feed(node, probe, frames[6:12], first_second=1006)
    assert wait_for(lambda: len(probe.get("odometries")) == 12, 10.0)
    x = [o.pose.pose.position.x for o in probe.get("odometries")]
    np.testing.assert_allclose(x, 0.1 * np.arange(12), atol=1e-9)  # no jump back to 0 after the gap
    path = probe.get("trajectories")[-1]
    assert [stamp_of(p) for p in path.poses] == [stamp_of(m) for m in first + second]
    assert probe.get("resets") == [] and node.engine.stats.resets == {}


def test_odometry_axes_follow_rep_103_for_forward_motion(launch, frames):
    node, probe = launch(**NEWEST)
    node.engine.backend = ForwardBackend(node.engine.backend)
    feed(node, probe, frames[:8])
    assert wait_for(lambda: len(probe.get("odometries")) == 8, 10.0)
    for i, odometry in enumerate(probe.get("odometries")):
        p, q = odometry.pose.pose.position, odometry.pose.pose.orientation
        np.testing.assert_allclose([p.x, p.y, p.z], [0.1 * i, 0.0, 0.0], atol=1e-9)  # forward = +x, z up
        rotation = Rotation.from_quat([q.x, q.y, q.z, q.w]).as_matrix()
        np.testing.assert_allclose(rotation, OPTICAL_TO_BODY, atol=1e-9)  # optical frame: z along +x
        assert (odometry.header.frame_id, odometry.child_frame_id) == ("geomotion_odom", "camera_optical")
    pose = probe.get("poses")[-1].pose.position
    assert (pose.x, pose.y, pose.z) == pytest.approx((0.7, 0.0, 0.0))


def test_compressed_input_with_the_documented_remap_produces_masks(launch, frames):
    node, probe = launch(**{**NEWEST, "input.compressed": True},
                         node_options={"cli_args": ["--ros-args", "-r", "image:=/camera/image_raw"]},
                         probe_options={"compressed_topic": "/camera/image_raw/compressed"})
    assert node._input_topics[0] == ("/camera/image_raw/compressed", "sensor_msgs/msg/CompressedImage")
    for i, rgb in enumerate(frames[:5]):
        jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
        probe.compressed.publish(CompressedImage(header=stamped_image(rgb, 1000 + i, 0).header, format="jpeg",
                                                 data=jpeg))
        received(node, i + 1)
    assert wait_for(lambda: len(probe.get("masks")) >= 2, 10.0)
    assert all((m.width, m.height) == SIZE for m in probe.get("masks"))


def test_diagnostics_warn_when_no_image_arrives_naming_the_topic_and_a_wrong_type(launch):
    node, probe = launch(**{**NEWEST, "input.timeout": 0.3})

    def warning() -> str:
        status = probe.get("diagnostics")[-1].status[0] if probe.get("diagnostics") else None
        return status.message if status is not None and status.level == status.WARN else ""

    assert wait_for(lambda: "no image for" in warning(), 5.0)
    assert "on /image (sensor_msgs/msg/Image)" in warning()
    values = probe.latest_diagnostics()
    assert values["input_topics"] == "/image, /camera_info" and values["device"] == "cpu"
    other = rclpy.Context()  # another participant: one may not use two types on one topic
    rclpy.init(context=other)
    try:
        camera = rclpy.create_node("misconfigured_camera", context=other)
        camera.create_publisher(String, "/image", QoSProfile(depth=1))
        assert wait_for(lambda: "wrong topic type" in warning(), 5.0), warning()
        assert "std_msgs/msg/String" in warning()
        camera.destroy_node()
    finally:
        rclpy.try_shutdown(context=other)


def test_a_configure_time_parameter_set_while_active_is_rejected_with_its_reason(launch):
    node, probe = launch(**NEWEST)
    client = probe.node.create_client(SetParameters, "geomotion_node/set_parameters")
    assert client.wait_for_service(timeout_sec=5.0)
    request = SetParameters.Request(parameters=[Parameter("window.size", value=6).to_parameter_msg()])
    result = client.call(request, timeout_sec=5.0).results[0]
    assert not result.successful
    assert "window.size: read at configure and the node is configured" in result.reason
    assert node.get_parameter("window.size").value == 4
    live = SetParameters.Request(parameters=[Parameter("mask.threshold", value=0.8).to_parameter_msg()])
    assert client.call(live, timeout_sec=5.0).results[0].successful and node.engine.config.threshold == 0.8


def test_camera_info_with_nan_intrinsics_is_ignored_and_images_are_still_served(launch, frames):
    node, probe = launch(**NEWEST)
    for i, rgb in enumerate(frames[:5]):
        msg = stamped_image(rgb, 1000 + i, 0)
        info = camera_info_for(msg)
        info.k = [float("nan")] * 9
        probe.camera_info.publish(info)
        probe.images.publish(msg)
        received(node, i + 1)
        assert wait_for(lambda: node.engine.stats.queue_depth == 0, 10.0)
    assert wait_for(lambda: len(probe.get("masks")) == 5, 10.0)
    assert node.monitor.rejected == 0 and node.monitor.camera_infos_ignored == 5
    assert wait_for(lambda: probe.latest_diagnostics().get("camera_infos_ignored") == "5", 5.0)


def test_a_failing_window_is_counted_and_the_node_keeps_publishing_and_deactivates(launch, frames):
    node, probe = launch(**NEWEST)
    real = node.engine.backend
    calls = []

    class FailingOnce:
        name = real.name

        def predict_window(self, window, frame_ids=None, intrinsics=None):
            calls.append(list(frame_ids))
            if len(calls) == 3:
                raise MemoryError("cannot allocate 17.9 GiB")
            return real.predict_window(window, frame_ids=frame_ids, intrinsics=intrinsics)

        def reset(self):
            real.reset()

    node.engine.backend = FailingOnce()
    for i, rgb in enumerate(frames[:8]):
        probe.images.publish(stamped_image(rgb, 1000 + i, 0))
        received(node, i + 1)
        assert wait_for(lambda: node.engine.stats.queue_depth == 0 and len(calls) >= i, 10.0)
    assert wait_for(lambda: len(probe.get("masks")) == 8 - 1, 10.0)  # only the failed window's frame is lost
    assert node.monitor.errors == 1 and node.engine.stats.failed == 1
    assert wait_for(lambda: len(probe.get("resets")) == 1, 5.0)
    assert probe.get("resets")[0].data.startswith("cause=backend_error")
    assert node.trigger_deactivate().name == "SUCCESS"


def test_two_namespaced_cameras_publish_distinct_odometry_frames(ros_context, frames):
    nodes, probes = [], []
    executor = MultiThreadedExecutor(num_threads=4, context=ros_context)
    for name in ("front", "rear"):
        values = {**BASE_PARAMETERS, **NEWEST, "frames.odom": f"{name}_odom"}
        node = GeoMotionNode(context=ros_context, namespace=name,
                             parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
        probe = Probe(ros_context, namespace=name)
        executor.add_node(node)
        executor.add_node(probe.node)
        nodes.append(node)
        probes.append(probe)
    try:
        with SpinThread(executor):
            for node, probe in zip(nodes, probes):
                assert start(node)
                probe.wait_connected(node)
            for camera, (node, probe) in enumerate(zip(nodes, probes)):
                feed(node, probe, frames[camera * 4 : camera * 4 + 4], frame_id=f"cam{camera}_optical")
            for probe in probes:
                assert wait_for(lambda probe=probe: len(probe.get("odometries")) == 4, 10.0)
            frames_seen = [{(o.header.frame_id, o.child_frame_id) for o in probe.get("odometries")} for probe in probes]
            assert frames_seen == [{("front_odom", "cam0_optical")}, {("rear_odom", "cam1_optical")}]
            assert [n._input_topics[0][0] for n in nodes] == ["/front/image", "/rear/image"]
    finally:
        for node, probe in zip(nodes, probes):
            node.stop_inference()
            node.destroy_node()
            probe.node.destroy_node()
