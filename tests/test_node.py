"""geomotion_node over real DDS (loopback, its own domain) on real DAVIS frames, weight-free backend.

The node and a probe node run in this process on one MultiThreadedExecutor; messages go through
Fast DDS like between any two nodes. Every test publishes only once the node's subscriptions and
the probe's match, everything is reliable (nothing is lost unless a test wants it), and tests
wait on conditions, not on sleeps. The low-latency mode, continuity, poses, wiring and robustness
tests are in test_node_live.py.
"""
from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

pytest.importorskip("rclpy", reason="needs the ROS 2 Python packages (PyPI wheels or a ROS install)")

from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from geomotion_core.backends import build_backend  # noqa: E402
from geomotion_core.streaming import StreamingConfig, StreamingSegmenter  # noqa: E402
from geomotion_ros import node as node_module  # noqa: E402
from geomotion_ros.messages import odom_pose, pose_stamped  # noqa: E402
from geomotion_ros.node import GeoMotionNode, start  # noqa: E402
from geomotion_ros.params import read_settings  # noqa: E402
from benchmarks.data import read_frames  # noqa: E402
from test_conversions import png_bomb  # noqa: E402
from ros_harness import Probe, SpinThread, camera_info_for, stamped_image, wait_for  # noqa: E402

pytestmark = pytest.mark.ros

SIZE = (214, 120)  # DAVIS 854x480 downscaled 4x
BASE_PARAMETERS = {
    "backend": "geometric",
    "flow.method": "dis",
    "device": "cpu",
    "policy": "every_frame",
    "window.size": 4,
    "window.stride": 2,
    "queue.max_frames": 64,
    "stream.end_after": 0.3,
    "diagnostics.period": 0.2,
    "input.qos.reliability": "reliable",
    "input.qos.depth": 100,
}


@pytest.fixture(scope="module")
def frames(davis_root) -> np.ndarray:
    """Twelve consecutive car-shadow frames (a car drives past a moving camera)."""
    return read_frames(davis_root, "car-shadow", 12, size=SIZE)


@pytest.fixture()
def launch(ros_context):
    """Start a configured, active node with parameter overrides; returns ``(node, probe)``."""
    started = []

    def launch_node(overlay: bool = False, probe_options: dict | None = None, node_options: dict | None = None,
                    **overrides):
        values = {**BASE_PARAMETERS, **overrides}
        node = GeoMotionNode(
            context=ros_context, parameter_overrides=[Parameter(name, value=value) for name, value in values.items()],
            **(node_options or {}),
        )
        probe = Probe(ros_context, overlay=overlay, **(probe_options or {}))
        executor = MultiThreadedExecutor(num_threads=4, context=ros_context)
        executor.add_node(node)
        executor.add_node(probe.node)
        spinner = SpinThread(executor).__enter__()
        started.append((node, probe, spinner))
        assert start(node), "node failed to start"
        probe.wait_connected(node, compressed=values.get("input.compressed", False))
        return node, probe

    yield launch_node
    for node, probe, spinner in started:
        node.stop_inference()
        spinner.__exit__(None, None, None)
        node.destroy_node()
        probe.node.destroy_node()


def publish_stream(probe: Probe, frames: np.ndarray, first_second: int = 1000, with_camera_info: bool = True) -> list:
    """Publish ``frames`` with distinct stamps (ns part set too); returns the sent messages.

    Everything is reliable with deep queues, so back-to-back publishing loses nothing.
    """
    sent = []
    for i, rgb in enumerate(frames):
        msg = stamped_image(rgb, first_second + i, 1000 * i + 7)
        if with_camera_info:
            probe.camera_info.publish(camera_info_for(msg))
        probe.images.publish(msg)
        sent.append(msg)
    return sent


class GatedBackend:
    """Wraps the node's backend: windows wait at a gate until the test opens it, so the backend is
    busy for exactly as long as the test needs; ``entered`` is set once a window is inside."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.entered = threading.Event()
        self.gate = threading.Event()

    def __getattr__(self, name: str):
        return getattr(self.backend, name)

    def predict_window(self, *args, **kwargs):
        self.entered.set()
        assert self.gate.wait(30.0), "the test never opened the gate"
        return self.backend.predict_window(*args, **kwargs)


def stamp_of(msg) -> tuple[int, int]:
    return msg.header.stamp.sec, msg.header.stamp.nanosec


def pose_vector(msg) -> list[float]:
    """Position and orientation quaternion (x, y, z, qx, qy, qz, qw) of a PoseStamped."""
    p, q = msg.pose.position, msg.pose.orientation
    return [p.x, p.y, p.z, q.x, q.y, q.z, q.w]


def offline_results(frames: np.ndarray, node: GeoMotionNode, intrinsics: np.ndarray | None = None) -> list:
    """The engine's results for the same frames without ROS, with the node's own settings."""
    settings = read_settings(node)
    engine = StreamingSegmenter(build_backend(settings.backend_options()), StreamingConfig(
        window_size=settings.window_size, stride=settings.window_stride, policy="every_frame",
        threshold=settings.threshold, max_queue=settings.max_queue))
    return list(engine.stream(((rgb, 1000.0 + i) for i, rgb in enumerate(frames)), intrinsics))


def test_every_stamp_gets_one_mask_with_its_header_and_a_pose(launch, frames):
    node, probe = launch()
    sent = publish_stream(probe, frames)
    assert wait_for(lambda: len(probe.get("masks")) >= len(sent) and len(probe.get("poses")) >= len(sent), 20.0)
    assert wait_for(lambda: node.engine.stats.pending == 0 and node.engine.stats.queue_depth == 0, 5.0)
    masks, poses, infos = probe.get("masks"), probe.get("poses"), probe.get("mask_infos")
    assert sorted(stamp_of(m) for m in masks) == [stamp_of(m) for m in sent]
    for mask in masks:
        assert (mask.width, mask.height, mask.encoding, mask.step) == (*SIZE, "mono8", SIZE[0])
        assert mask.header.frame_id == "camera_optical"
        assert set(np.unique(np.frombuffer(mask.data, np.uint8))) <= {0, 255}
    assert [stamp_of(p) for p in poses] == [stamp_of(m) for m in sent]
    assert {p.header.frame_id for p in poses} == {"geomotion_odom"}
    assert wait_for(lambda: len(probe.get("odometries")) == len(sent), 5.0)
    assert [(o.header.frame_id, o.child_frame_id) for o in probe.get("odometries")] == \
        [("geomotion_odom", "camera_optical")] * len(sent)
    assert sorted(stamp_of(i) for i in infos) == [stamp_of(m) for m in sent]
    assert all((i.width, i.height) == SIZE and i.k[0] > 0 for i in infos)

    path = probe.get("trajectories")[-1]
    assert path.header.frame_id == "geomotion_odom"
    assert [(stamp_of(p), pose_vector(p)) for p in path.poses] == [(stamp_of(p), pose_vector(p)) for p in poses]
    # starts at the odometry origin, the optical frame turned into REP 103 axes (z forward -> x forward)
    start_pose = pose_vector(pose_stamped(odom_pose(np.eye(4)), poses[0].header, "o"))
    np.testing.assert_allclose(pose_vector(poses[0]), start_pose, atol=1e-12)

    # What came through DDS is exactly what the engine computes on the same frames offline.
    expected = offline_results(frames, node, intrinsics=np.array(camera_info_for(sent[0]).k).reshape(3, 3))
    by_stamp = {stamp_of(m)[0]: np.frombuffer(m.data, np.uint8).reshape(SIZE[1], SIZE[0]) for m in masks}
    for result, pose in zip(expected, poses):
        np.testing.assert_array_equal(by_stamp[round(result.stamp)], result.mask)
        np.testing.assert_allclose(pose_vector(pose), pose_vector(pose_stamped(odom_pose(result.pose), pose.header, "o")),
                                   atol=1e-9)
    assert any(result.mask.any() for result in expected)


def test_bad_images_are_rejected_with_a_logged_error_and_the_node_keeps_serving(launch, frames, capfd):
    node, probe = launch()
    good = publish_stream(probe, frames[:5], first_second=1000)
    bad_encoding = stamped_image(frames[5], 1005, 0)
    bad_encoding.encoding = "bayer_typo8"
    short = stamped_image(frames[6], 1006, 0)
    short.data = bytes(short.data[: len(short.data) - 100])
    odd_yuv = Image(header=stamped_image(frames[6], 1006, 1).header, height=10, width=161, encoding="yuv422", step=322)
    odd_yuv.data = bytes(322 * 10)  # killed the node with an uncaught cv2.error (issue 18)
    huge = Image(header=stamped_image(frames[6], 1006, 2).header, height=20000, width=20000, encoding="mono8",
                 step=20000)  # rejected from its header, before its (missing) data is looked at
    for msg in (bad_encoding, short, odd_yuv, huge):
        probe.images.publish(msg)
    assert wait_for(lambda: node.monitor.rejected == 4, 10.0)
    good += publish_stream(probe, frames[7:], first_second=1007)
    assert wait_for(lambda: len(probe.get("masks")) >= len(good), 20.0)
    assert sorted(stamp_of(m) for m in probe.get("masks")) == [stamp_of(m) for m in good]
    assert wait_for(lambda: probe.latest_diagnostics().get("frames_rejected") == "4", 3.0)
    errors = capfd.readouterr().err
    assert "image rejected: unsupported image encoding 'bayer_typo8'" in errors
    assert "yuv422 needs an even width" in errors and "20000x20000 exceeds the size limit" in errors


@pytest.mark.parametrize("change", ["size", "stamp_back"])
def test_size_change_or_stamp_jump_back_restarts_the_stream(launch, frames, change):
    node, probe = launch()
    first = publish_stream(probe, frames[:6], first_second=1000)
    if change == "size":
        second_frames = np.stack([cv2.resize(f, (160, 90), interpolation=cv2.INTER_AREA) for f in frames[6:]])
        second = publish_stream(probe, second_frames, first_second=1006)
    else:
        second = publish_stream(probe, frames[6:], first_second=500)
    sent = first + second
    assert wait_for(lambda: len(probe.get("masks")) >= len(sent), 20.0)
    masks = {stamp_of(m): m for m in probe.get("masks")}
    assert sorted(masks) == sorted(stamp_of(m) for m in sent)
    for msg in sent:
        assert (masks[stamp_of(msg)].width, masks[stamp_of(msg)].height) == (msg.width, msg.height)
    path = probe.get("trajectories")[-1]
    assert [stamp_of(p) for p in path.poses] == [stamp_of(m) for m in second]  # a new trajectory
    assert np.allclose([path.poses[0].pose.position.x, path.poses[0].pose.position.z], 0.0)
    reason = "size_change" if change == "size" else "stamp_backwards"
    assert node.engine.stats.resets.get(reason) == 1
    assert wait_for(lambda: probe.latest_diagnostics().get("stream_resets") == "1", 3.0)
    # announced once, with its cause and the new trajectory's first stamp, and counted
    assert wait_for(lambda: len(probe.get("resets")) == 1, 5.0)
    announcement = probe.get("resets")[0].data
    first = second[0].header.stamp
    assert announcement.startswith(f"cause={reason} stamp={first.sec + first.nanosec * 1e-9:.9f}")
    diagnostics = probe.latest_diagnostics(after=len(probe.get("diagnostics")))
    assert (diagnostics["trajectory_restarts"], diagnostics["last_restart_cause"]) == ("1", reason)


def test_burst_faster_than_inference_stays_bounded_and_drops_show(launch, davis_root):
    node, probe = launch(**{"policy": "latest", "queue.max_frames": 8, "stream.end_after": 0.0})
    burst = read_frames(davis_root, "libby", 8, size=(640, 480))
    gated = node.engine.backend = GatedBackend(node.engine.backend)  # busy until all 60 frames are in
    depths = []
    try:
        for i in range(60):
            probe.images.publish(stamped_image(burst[i % len(burst)], 2000 + i, 0))
            depths.append((node.engine.stats.queue_depth, node.tracker.images_held))
        assert wait_for(lambda: node.monitor.received == 60, 10.0)
        assert gated.entered.wait(10.0)
        depths.append((node.engine.stats.queue_depth, node.tracker.images_held))
    finally:
        gated.gate.set()
    assert wait_for(lambda: node.engine.stats.queue_depth < node.engine.config.window_size, 20.0)
    def settled() -> bool:  # every frame accounted for: published, dropped or still waiting
        stats = node.engine.stats
        waiting = stats.queue_depth + stats.pending
        return stats.processed + stats.dropped + waiting == 60 and len(probe.get("masks")) == stats.processed

    assert wait_for(settled, 10.0)
    assert max(depth for depth, _ in depths) <= 8
    assert max(images for _, images in depths) <= node.tracker.image_slots == 8 + 2 * 4
    stats = node.engine.stats
    assert stats.submitted == 60 and stats.dropped_stale > 0
    stamps = [stamp_of(m)[0] for m in probe.get("masks")]
    assert len(stamps) == stats.processed < 60
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    diagnostics = probe.latest_diagnostics(after=len(probe.get("diagnostics")))
    assert int(diagnostics["frames_dropped"]) == stats.dropped
    assert int(diagnostics["frames_received"]) == 60 and int(diagnostics["queue_depth"]) == stats.queue_depth


def test_reset_service_starts_a_new_trajectory(launch, frames):
    node, probe = launch()
    publish_stream(probe, frames[:6], first_second=1000)
    assert wait_for(lambda: len(probe.get("masks")) >= 6, 20.0)
    client = probe.node.create_client(Trigger, "geomotion_node/reset")
    assert client.wait_for_service(timeout_sec=5.0)
    response = client.call(Trigger.Request(), timeout_sec=5.0)
    assert response.success and "cleared" in response.message
    second = publish_stream(probe, frames[6:], first_second=1006)
    assert wait_for(lambda: len(probe.get("masks")) >= 12, 20.0)
    path = probe.get("trajectories")[-1]
    assert [stamp_of(p) for p in path.poses] == [stamp_of(m) for m in second]
    assert node.engine.stats.resets.get("requested") == 1
    assert wait_for(lambda: len(probe.get("resets")) == 1, 5.0)
    assert probe.get("resets")[0].data.startswith("cause=requested stamp=1006.")


def test_deactivate_publishes_held_frames_and_reactivation_starts_a_new_trajectory(launch, frames):
    node, probe = launch(**{"stream.end_after": 0.0})
    first = publish_stream(probe, frames[:5])  # stride 2: the fifth frame waits for a sixth
    assert wait_for(lambda: len(probe.get("masks")) >= 4, 20.0)
    assert len(probe.get("masks")) == 4
    node.trigger_deactivate()
    assert wait_for(lambda: len(probe.get("masks")) == 5, 5.0)
    assert wait_for(lambda: probe.images.get_subscription_count() == 0, 5.0)  # unsubscribed while inactive
    assert node.trigger_activate().name == "SUCCESS"
    probe.wait_connected(node)
    second = publish_stream(probe, frames[5:9], first_second=1005)
    assert wait_for(lambda: len(probe.get("masks")) == 9, 20.0)
    assert sorted(stamp_of(m) for m in probe.get("masks")) == [stamp_of(m) for m in first + second]
    assert [stamp_of(p) for p in probe.get("trajectories")[-1].poses] == [stamp_of(m) for m in second]


def test_compressed_input_probability_and_overlay(launch, frames):
    node, probe = launch(overlay=True, **{"input.compressed": True, "publish.probability": True})
    assert wait_for(lambda: node._outputs.overlay.get_subscription_count() > 0, 5.0)
    empty = CompressedImage(header=stamped_image(frames[0], 999, 0).header, format="jpeg")  # killed the node
    bomb = CompressedImage(header=stamped_image(frames[0], 999, 1).header, format="png",
                           data=png_bomb(20000, 20000))  # 389 KB that decode to 400 MB: wedged the node
    probe.compressed.publish(empty)
    probe.compressed.publish(bomb)
    assert wait_for(lambda: node.monitor.rejected == 2, 10.0)
    for i, rgb in enumerate(frames[:6]):
        header = stamped_image(rgb, 1000 + i, 0).header
        png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1]
        probe.compressed.publish(CompressedImage(header=header, format="png", data=png.tobytes()))
    assert wait_for(lambda: len(probe.get("overlays")) >= 6 and len(probe.get("probabilities")) >= 6, 20.0)
    masks = {stamp_of(m): np.frombuffer(m.data, np.uint8) for m in probe.get("masks")}
    for probability in probe.get("probabilities"):
        assert probability.encoding == "32FC1" and (probability.width, probability.height) == SIZE
        values = np.frombuffer(probability.data, np.float32)
        np.testing.assert_array_equal(values > 0.5, masks[stamp_of(probability)] == 255)
    for overlay in probe.get("overlays"):
        assert overlay.encoding == "bgr8" and (overlay.width, overlay.height) == SIZE and stamp_of(overlay) in masks


def test_overlay_is_not_computed_without_subscribers(launch, frames, monkeypatch):
    calls = []
    monkeypatch.setattr(node_module.messages, "overlay_image", lambda *args: calls.append(args))
    node, probe = launch()
    assert node._outputs.overlay.get_subscription_count() == 0
    publish_stream(probe, frames[:6])
    assert wait_for(lambda: len(probe.get("masks")) >= 6, 20.0)
    assert calls == []


def test_threshold_set_through_the_parameter_service_applies_to_the_next_masks(launch, frames):
    node, probe = launch(**{"publish.probability": True})
    publish_stream(probe, frames[:6], first_second=1000)
    assert wait_for(lambda: len(probe.get("masks")) >= 6 and len(probe.get("probabilities")) >= 6, 20.0)
    client = probe.node.create_client(SetParameters, "geomotion_node/set_parameters")
    assert client.wait_for_service(timeout_sec=5.0)
    request = SetParameters.Request(parameters=[Parameter("mask.threshold", value=0.9).to_parameter_msg()])
    response = client.call(request, timeout_sec=5.0)
    assert response is not None and response.results[0].successful
    publish_stream(probe, frames[6:], first_second=1006)
    assert wait_for(lambda: len(probe.get("masks")) >= 12 and len(probe.get("probabilities")) >= 12, 20.0)
    masks = {stamp_of(m): np.frombuffer(m.data, np.uint8) == 255 for m in probe.get("masks")}
    left_out = 0  # pixels the new threshold leaves out that the old one marked moving
    for probability in probe.get("probabilities"):
        values = np.frombuffer(probability.data, np.float32)
        threshold = 0.5 if stamp_of(probability)[0] < 1006 else 0.9
        np.testing.assert_array_equal(masks[stamp_of(probability)], values > threshold)
        left_out += int(np.count_nonzero((values > 0.5) & (values <= 0.9))) if threshold == 0.9 else 0
    assert left_out > 0


def test_missing_weights_fail_at_configure_with_one_clear_message(ros_context, tmp_path, capfd):
    missing = tmp_path / "best_model.pth"
    node = GeoMotionNode(context=ros_context, parameter_overrides=[
        Parameter("backend", value="geomotion"), Parameter("model.checkpoint", value=str(missing)),
        Parameter("device", value="cpu")])
    try:
        assert not start(node)
        errors = capfd.readouterr().err
        assert f"configure failed: checkpoint not found: {missing}" in errors
        assert "Traceback" not in errors
        assert node.engine is None
    finally:
        node.destroy_node()


@pytest.mark.slow
def test_network_backend_small_config_publishes_masks_poses_and_static_points(launch, frames, reference_dir):
    from sensor_msgs.msg import PointCloud2

    node, probe = launch(**{"backend": "geomotion", "model.config": str(reference_dir / "small" / "config.json"),
                            "model.allow_random_weights": True, "inference.size": 70, "publish.points": True})
    clouds = []
    probe.node.create_subscription(PointCloud2, "points", clouds.append, 50)
    sent = publish_stream(probe, frames[:6])
    assert wait_for(lambda: len(probe.get("masks")) >= 6 and len(clouds) >= 6, 30.0)
    assert sorted(stamp_of(m) for m in probe.get("masks")) == [stamp_of(m) for m in sent]
    assert all((m.width, m.height) == SIZE for m in probe.get("masks"))
    assert [stamp_of(p) for p in probe.get("poses")] == [stamp_of(m) for m in sent]
    for cloud in clouds:
        xyz = np.frombuffer(cloud.data, np.float32).reshape(-1, 3)
        assert cloud.header.frame_id == "geomotion_odom" and 0 < len(xyz) <= (120 // 4 + 1) * (214 // 4 + 1)
        assert np.isfinite(xyz).all()
