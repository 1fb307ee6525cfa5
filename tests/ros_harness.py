"""Helpers for the ROS tests: a spinning executor, a probe node, test messages and bounded waiting.

The isolated DDS domain and rclpy context fixtures are in ``conftest.py``.
"""
from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:
    from rclpy.context import Context
    from rclpy.executors import Executor
    from sensor_msgs.msg import CameraInfo, Image


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


class SpinThread:
    """Spins an executor on a background thread until stopped."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.thread = threading.Thread(target=executor.spin, daemon=True)

    def __enter__(self) -> "SpinThread":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self.thread.join(timeout=5.0)


class Probe:
    """A test node on the other side of DDS: publishes images, records every output of the node.

    Everything is reliable with deep queues, so no message is lost unless a test wants it; topics
    are relative to ``namespace`` (``image`` -> ``/<namespace>/image``).
    """

    OUTPUTS = {
        "masks": ("motion_mask/image", "Image"),
        "mask_infos": ("motion_mask/camera_info", "CameraInfo"),
        "probabilities": ("motion_probability", "Image"),
        "poses": ("camera_pose", "PoseStamped"),
        "odometries": ("odometry", "Odometry"),
        "trajectories": ("trajectory", "Path"),
        "resets": ("trajectory_reset", "String"),
        "diagnostics": ("/diagnostics", "DiagnosticArray"),
    }
    MATCHED = ("mask", "mask_info", "pose", "odometry", "trajectory", "trajectory_reset")  # node outputs we read

    def __init__(self, context: Context, overlay: bool = False, namespace: str = "",
                 compressed_topic: str = "image/compressed") -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseStamped
        from nav_msgs.msg import Odometry
        from nav_msgs.msg import Path as PathMsg
        from rclpy.qos import DurabilityPolicy, QoSProfile
        from sensor_msgs.msg import CameraInfo, CompressedImage, Image
        from std_msgs.msg import String

        types = {"Image": Image, "CameraInfo": CameraInfo, "PoseStamped": PoseStamped, "Path": PathMsg,
                 "DiagnosticArray": DiagnosticArray, "Odometry": Odometry, "String": String}
        self.node = rclpy.create_node("probe", namespace=namespace or None, context=context)
        self.lock = threading.Lock()
        self.received: dict[str, list] = {name: [] for name in self.OUTPUTS}
        self.received["overlays"] = []
        reliable = QoSProfile(depth=500)
        latched = QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        for name, (topic, type_name) in self.OUTPUTS.items():
            qos = latched if name == "resets" else reliable
            self.node.create_subscription(types[type_name], topic, self._recorder(name), qos)
        if overlay:
            self.node.create_subscription(Image, "overlay", self._recorder("overlays"), reliable)
        self.images = self.node.create_publisher(Image, "image", reliable)
        self.compressed = self.node.create_publisher(CompressedImage, compressed_topic, reliable)
        self.camera_info = self.node.create_publisher(CameraInfo, "camera_info", reliable)

    def _recorder(self, name: str) -> Callable[[object], None]:
        def record(msg: object) -> None:
            with self.lock:
                self.received[name].append(msg)
        return record

    def get(self, name: str) -> list:
        with self.lock:
            return list(self.received[name])

    def wait_connected(self, node=None, compressed: bool = False, timeout: float = 10.0) -> None:
        """Wait until the node's input subscriptions match our publishers and, given ``node``, until
        our subscriptions match its outputs, so that nothing published from now on is lost."""
        images = self.compressed if compressed else self.images
        assert wait_for(lambda: self.camera_info.get_subscription_count() > 0 and images.get_subscription_count() > 0,
                        timeout), "node never subscribed"
        if node is not None:
            publishers = [getattr(node._outputs, name) for name in self.MATCHED]
            assert wait_for(lambda: all(p.get_subscription_count() > 0 for p in publishers), timeout), \
                "the probe's subscriptions never matched the node's outputs"

    def latest_diagnostics(self, after: int = 0) -> dict[str, str]:
        """The newest /diagnostics key/values, waiting for a message beyond the first ``after``."""
        assert wait_for(lambda: len(self.get("diagnostics")) > after, 5.0), "no /diagnostics"
        return {pair.key: pair.value for pair in self.get("diagnostics")[-1].status[0].values}


def stamped_image(rgb: np.ndarray, seconds: int, nanoseconds: int, frame_id: str = "camera_optical") -> Image:
    """An rgb8 Image message of ``rgb`` with this stamp."""
    from geomotion_ros.conversions import array_to_image
    from std_msgs.msg import Header

    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = seconds, nanoseconds
    return array_to_image(rgb, "rgb8", header)


def camera_info_for(image: Image) -> CameraInfo:
    """A pinhole CameraInfo matching ``image`` (same header and size)."""
    from sensor_msgs.msg import CameraInfo

    focal = 0.8 * image.width
    info = CameraInfo(header=image.header, width=image.width, height=image.height, distortion_model="plumb_bob")
    info.k = [focal, 0.0, image.width / 2, 0.0, focal, image.height / 2, 0.0, 0.0, 1.0]
    info.p = [focal, 0.0, image.width / 2, 0.0, 0.0, focal, image.height / 2, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info
