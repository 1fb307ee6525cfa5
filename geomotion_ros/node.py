# SPDX-License-Identifier: Apache-2.0
"""``geomotion_node``: streaming motion segmentation as a ROS 2 lifecycle node.

configure  read parameters, build the backend and the streaming engine (missing weights fail
           here, with one logged line), create publishers, ``~/reset`` and /diagnostics
activate   subscribe ``image`` (or ``<image>/compressed``) and ``camera_info``, log the resolved
           topics; start the worker
deactivate unsubscribe, stop the worker, publish what the engine still holds

The image callback converts the message (zero-copy for rgb8) and enqueues it; inference runs on
a worker thread, so DDS never waits on the network. With the default ``policy: newest`` the worker
always runs the window ending at the newest frame and publishes that frame's mask at once.
"""
from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry, Path
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.rcutils_logger import RcutilsLogger
from rclpy.lifecycle import LifecycleNode, LifecyclePublisher, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header, String
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from geomotion_core.backends import build_backend
from geomotion_core.errors import ConfigError, GeoMotionError
from geomotion_core.geometric.camera import intrinsics_from_fov
from geomotion_core.instances import InstanceTracker
from geomotion_core.options.table import OPTIONS_BY_NAME
from geomotion_core.streaming import StreamingSegmenter
from geomotion_core.types import FrameResult
from geomotion_ros import markers, messages
from geomotion_ros.conversions import compressed_to_rgb, image_to_rgb
from geomotion_ros.diagnostics import PipelineMonitor, pipeline_status
from geomotion_ros.pairing import camera_info_store, usable_intrinsics
from geomotion_ros.params import (
    COMBINED,
    LIVE_PARAMETERS,
    NODE_OPTIONS_BY_NAME,
    NodeSettings,
    check_combination,
    check_value,
    declare_parameters,
    live_field,
    read_settings,
)
from geomotion_ros.tracking import FrameTracker, TrackedFrame

NODE_NAME = "geomotion_node"
WORKER_POLL_S = 0.05
MAX_REJECTION_KINDS = 64  # distinct rejection reasons logged at once (repeats are throttled)
IMAGE_TYPE, COMPRESSED_TYPE = "sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage"


def describe_for_node(error: GeoMotionError) -> str:
    """The error, followed by the node parameters of the options it names."""
    parameters = [name for name in error.options if name in OPTIONS_BY_NAME and OPTIONS_BY_NAME[name].node_field]
    return f"{error} (parameters: {', '.join(parameters)})" if parameters else str(error)


@dataclass
class Outputs:
    """The node's publishers (lifecycle publishers: silent while the node is inactive)."""

    mask: LifecyclePublisher
    mask_info: LifecyclePublisher
    probability: LifecyclePublisher | None
    overlay: LifecyclePublisher
    pose: LifecyclePublisher
    odometry: LifecyclePublisher
    trajectory: LifecyclePublisher
    trajectory_reset: LifecyclePublisher
    points: LifecyclePublisher | None
    instances: LifecyclePublisher | None  # motion_instances, with instances.enabled
    objects: LifecyclePublisher | None  # moving_objects, with instances.enabled


@dataclass(frozen=True)
class Restart:
    """Why a trajectory restarted (announced with the first pose of the new one)."""

    cause: str  # size_change, stamp_backwards, requested, deactivated, backend_error
    detail: str


def transform_broadcaster(node: LifecycleNode) -> Any | None:
    """A ``tf2_ros.TransformBroadcaster`` for ``node``, or None where tf2_ros is not importable."""
    try:
        from tf2_ros import TransformBroadcaster
    except ImportError:
        return None
    return TransformBroadcaster(node)


def backend_device(backend: object) -> str:
    """The device the backend really runs on (the network's torch device; the CPU otherwise)."""
    return str(getattr(backend, "device", "cpu"))


class GeoMotionNode(LifecycleNode):
    """Subscribes images, publishes motion masks, camera poses, odometry, trajectory and diagnostics."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        declare_parameters(self)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.settings: NodeSettings | None = None
        self.engine: StreamingSegmenter | None = None
        self.monitor = PipelineMonitor()
        self.camera_infos = camera_info_store()
        self._outputs: Outputs | None = None
        self._tf = None
        self._instances: InstanceTracker | None = None  # the instance stage, with instances.enabled
        self._instance_epoch: int | None = None  # the stream its ids belong to
        self._subscriptions_active: list = []
        self._input_topics: list[tuple[str, str]] = []  # (resolved name, type) of the subscriptions
        self._lock = threading.Lock()
        self.tracker = FrameTracker(image_slots=1)
        self._path = Path()
        self._path_poses: deque[PoseStamped] = deque()
        self._path_epoch = 0
        self._epoch = 0
        self._restarts: dict[int, Restart] = {}  # epoch -> why it began
        self._rejection_kinds: set[str] = set()
        self._last_input: tuple[float, tuple[int, int]] | None = None
        self._last_arrival: float | None = None
        self._activated_at = 0.0
        self._stream_open = False
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._input_group = MutuallyExclusiveCallbackGroup()
        self._service_group = MutuallyExclusiveCallbackGroup()
        self._active = False

    # ----------------------------------------------------------------------------- lifecycle

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            settings = read_settings(self)
            if settings.sam2_enabled:
                raise ConfigError(
                    "sam2.enabled: SAM2 refinement works on whole clips (`geomotion segment --sam2`), "
                    "not yet on a live stream; set sam2.enabled: false"
                )
            backend = build_backend(settings.backend_options())
            engine = StreamingSegmenter(backend, settings.streaming_config())
            self._warm_up(backend, settings)
        except GeoMotionError as error:
            self.get_logger().error(f"configure failed: {describe_for_node(error)}")
            return TransitionCallbackReturn.FAILURE
        self.settings, self.engine = settings, engine
        instance_config = settings.instance_config()
        self._instances = InstanceTracker(instance_config) if instance_config is not None else None
        self._instance_epoch = None
        self.tracker = FrameTracker(image_slots=engine.config.max_queue + 2 * settings.window_size)
        self._path_poses = deque(maxlen=settings.trajectory_length)
        self._create_outputs(settings)
        self._reset_service = self.create_service(
            Trigger, "~/reset", self._on_reset, callback_group=self._service_group
        )
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diagnostics_timer = self.create_timer(
            settings.diagnostics_period, self._publish_diagnostics, callback_group=self._service_group
        )
        self.get_logger().info(
            f"configured: backend {settings.backend} on {backend_device(backend)}, window {settings.window_size}/"
            f"{settings.window_stride}, look-ahead {settings.window_lookahead}, policy {settings.policy}"
        )
        return TransitionCallbackReturn.SUCCESS

    def _warm_up(self, backend: object, settings: NodeSettings) -> None:
        """Prepare every window length the stream will use (exported engines, CUDA graphs) now,
        so that the first frames are not the ones that pay for it."""
        warmup = getattr(backend, "warmup", None)
        if warmup is None:
            return
        if settings.keep_aspect:
            self.get_logger().info("no warm-up: with inference.keep_aspect the network's size follows the first frame")
            return
        seconds = warmup(range(2, settings.window_size + 1))
        self.get_logger().info(
            f"warmed up window lengths {min(seconds)}-{max(seconds)} in {sum(seconds.values()):.1f} s"
        )

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._subscribe(self.settings)
        self._stop.clear()
        self._worker = threading.Thread(target=self._work, name="geomotion_inference", daemon=True)
        self._worker.start()
        self._activated_at = time.monotonic()
        self._active = True
        outputs = self._outputs
        self.get_logger().info(
            "listening on " + ", ".join(f"{topic} ({kind})" for topic, kind in self._input_topics)
            + f"; publishing {outputs.mask.topic_name}, {outputs.odometry.topic_name}, {outputs.pose.topic_name}"
        )
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_input()
        try:
            self._publish_results(self.engine.flush())
        except Exception as error:  # the held frames are lost, the node stays usable
            self.monitor.inference_failed()
            self.get_logger().error(f"deactivate: the frames held by the engine are lost: {type(error).__name__}: {error}")
        self._restart_stream(Restart("deactivated", "the node was deactivated"))
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_input()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _stop_input(self) -> None:
        """Unsubscribe and stop the worker (the engine keeps what it holds)."""
        self._active = False
        for subscription in self._subscriptions_active:
            self.destroy_subscription(subscription)
        self._subscriptions_active = []
        self._stop_worker()

    def _release(self) -> None:
        """Drop the engine, publishers, service and timer (back to unconfigured)."""
        if self._outputs is None:
            return
        for publisher in vars(self._outputs).values():
            if publisher is not None:
                self.destroy_lifecycle_publisher(publisher)
        self.destroy_service(self._reset_service)
        self.destroy_timer(self._diagnostics_timer)
        self.destroy_publisher(self._diagnostics)
        self._outputs, self.engine, self._tf = None, None, None
        self._restart_stream(None)
        self.camera_infos.clear()

    # ----------------------------------------------------------------------------- wiring

    def _create_outputs(self, settings: NodeSettings) -> None:
        qos = settings.output_qos()
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        create = self.create_lifecycle_publisher
        self._outputs = Outputs(
            mask=create(Image, "motion_mask/image", qos),
            mask_info=create(CameraInfo, "motion_mask/camera_info", qos),
            probability=create(Image, "motion_probability", qos) if settings.publish_probability else None,
            overlay=create(Image, "overlay", qos),
            pose=create(PoseStamped, "camera_pose", qos),
            odometry=create(Odometry, "odometry", qos),
            trajectory=create(Path, "trajectory", qos),
            trajectory_reset=create(String, "trajectory_reset", latched),
            points=create(PointCloud2, "points", qos) if settings.publish_points else None,
            instances=create(Image, "motion_instances", qos) if settings.instances_enabled else None,
            objects=create(MarkerArray, "moving_objects", qos) if settings.instances_enabled else None,
        )
        if settings.publish_tf:
            self._tf = transform_broadcaster(self)
            if self._tf is None:
                self.get_logger().warning("publish.tf: tf2_ros is not importable, so no TF is broadcast "
                                          "(odometry and camera_pose carry the same poses)")

    def _subscribe(self, settings: NodeSettings) -> None:
        """Subscribe the image (``<resolved image topic>/compressed`` when compressed) and camera_info."""
        qos = settings.input_qos()
        events = SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos)
        if settings.compressed:  # image_transport's naming: the transport's suffix on the resolved base topic
            topic = self.resolve_topic_name("image") + "/compressed"
            image = self.create_subscription(CompressedImage, topic, self._on_compressed, qos,
                                             callback_group=self._input_group, event_callbacks=events)
        else:
            image = self.create_subscription(Image, "image", self._on_image, qos,
                                             callback_group=self._input_group, event_callbacks=events)
        info = self.create_subscription(CameraInfo, "camera_info", self._on_camera_info, qos,
                                        callback_group=self._input_group)
        self._subscriptions_active = [image, info]
        self._input_topics = [(image.topic_name, COMPRESSED_TYPE if settings.compressed else IMAGE_TYPE),
                              (info.topic_name, "sensor_msgs/msg/CameraInfo")]

    def _on_incompatible_qos(self, event) -> None:
        self.get_logger().error(
            f"an image publisher has incompatible QoS (policy {event.last_policy_kind}); "
            "set input.qos.reliability: best_effort to accept every publisher",
            throttle_duration_sec=10.0,
        )

    def _on_set_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        """Refuse bad values and combinations; while configured, refuse what applies only at configure."""
        ours = [parameter for parameter in parameters if parameter.name in NODE_OPTIONS_BY_NAME]
        for parameter in ours:
            problem = check_value(parameter.name, parameter.value)
            if problem:
                return SetParametersResult(successful=False, reason=problem)
        engine = self.engine
        if engine is not None:
            frozen = [parameter.name for parameter in ours if parameter.name not in LIVE_PARAMETERS]
            if frozen:
                return SetParametersResult(successful=False, reason=(
                    f"{', '.join(frozen)}: read at configure and the node is configured; deactivate, clean up and "
                    f"configure again to change it (live: {', '.join(sorted(LIVE_PARAMETERS))})"))
        if any(parameter.name in COMBINED for parameter in ours):
            values = {name: self.get_parameter(name).value for name in COMBINED}
            values.update((parameter.name, parameter.value) for parameter in ours if parameter.name in COMBINED)
            problem = check_combination(values)
            if problem:
                return SetParametersResult(successful=False, reason=problem)
        for parameter in ours:
            if parameter.name in LIVE_PARAMETERS and engine is not None:
                setattr(engine.config, live_field(parameter.name), parameter.value)  # read by the next window
        return SetParametersResult(successful=True)

    # ----------------------------------------------------------------------------- input

    def _on_image(self, msg: Image) -> None:
        limit = self.settings.size_limit()
        self._accept(msg.header, lambda: image_to_rgb(msg, limit))

    def _on_compressed(self, msg: CompressedImage) -> None:
        limit = self.settings.size_limit()
        self._accept(msg.header, lambda: compressed_to_rgb(msg, limit))

    def _on_camera_info(self, info: CameraInfo) -> None:
        """Store a CameraInfo; one with an unusable camera matrix is kept for republishing, not for intrinsics."""
        if usable_intrinsics(info) is None:
            self.monitor.camera_info_ignored()
            self.get_logger().warning(
                f"camera_info with an unusable camera matrix (non-finite or no focal length) k={list(info.k)}: "
                "intrinsics ignored, the backend uses its default field of view", throttle_duration_sec=10.0)
        self.camera_infos.add(info)

    def _accept(self, header: Header, convert: Callable[[], np.ndarray]) -> None:
        """Convert and enqueue one frame; a bad message is logged, counted and skipped, never raised."""
        arrival = time.monotonic()
        self.monitor.frame_received(arrival)
        try:
            self._submit(header, convert(), arrival)
        except GeoMotionError as error:
            self._reject(str(error))
        except Exception as error:  # noqa: BLE001 -- last resort: a callback that raises stops the executor
            self._reject(f"{type(error).__name__}: {error}")

    def _reject(self, reason: str) -> None:
        """Count a rejected message; log the first of each kind at once, repeats at most every 5 s."""
        self.monitor.frame_rejected()
        kind = re.sub(r"\d+", "#", reason)[:80]
        if kind not in self._rejection_kinds and len(self._rejection_kinds) < MAX_REJECTION_KINDS:
            self._rejection_kinds.add(kind)
            self.get_logger().error(f"image rejected: {reason}")
        else:
            self.get_logger().error(f"image rejected: {reason}", throttle_duration_sec=5.0)

    def _submit(self, header: Header, rgb: np.ndarray, arrival: float) -> None:
        stamp = header.stamp.sec + header.stamp.nanosec * 1e-9
        size = rgb.shape[:2]
        with self._lock:
            last = self._last_input
            if last is not None and size != last[1]:
                self._begin_trajectory(Restart("size_change", f"frame size {last[1][1]}x{last[1][0]} -> "
                                                              f"{size[1]}x{size[0]} at stamp {stamp:.6f}"))
            elif last is not None and stamp < last[0]:
                self._begin_trajectory(Restart("stamp_backwards", f"stamp went back {last[0]:.6f} -> {stamp:.6f}"))
            self._last_input = (stamp, size)
            self._last_arrival = arrival
            self._stream_open = True
            epoch = self._epoch
        index = self.tracker.add(TrackedFrame(header, rgb, arrival, epoch))
        intrinsics = self.camera_infos.intrinsics(header.stamp, size[1], size[0])
        try:
            accepted = self.engine.submit(rgb, stamp, intrinsics=intrinsics)
        except GeoMotionError:
            self.tracker.withdraw(index, counted=False)
            raise
        if not accepted:
            self.tracker.withdraw(index, counted=True)

    # ----------------------------------------------------------------------------- inference

    def _work(self) -> None:
        """Worker thread: run the engine on whatever is queued and publish what became final.

        An error drops the failing window or frame (the engine counts it and restarts its stream);
        the loop goes on with the next frames.
        """
        engine, end_after = self.engine, self.settings.end_after
        while not self._stop.is_set():
            try:
                if engine.wait_ready(WORKER_POLL_S):
                    self._publish_results(engine.process_pending())
                elif end_after and self._stream_open and time.monotonic() - self._last_arrival > end_after:
                    self._finish_after_gap()
            except Exception as error:
                if self._stop.is_set():
                    break  # shutting down: publishers may already be gone
                self.monitor.inference_failed()
                self.get_logger().error(f"inference failed: {type(error).__name__}: {error}",
                                        throttle_duration_sec=5.0)
                with self._lock:
                    self._begin_trajectory(Restart("backend_error", f"{type(error).__name__}: {error}"))

    def _finish_after_gap(self) -> None:
        """No frame came for a while: finalise what is waiting; the trajectory continues with the next frame."""
        self._stream_open = False
        self._publish_results(self.engine.finish_pending())

    def stop_inference(self) -> None:
        """Stop the worker thread (at exit, whatever the lifecycle state)."""
        self._stop_worker()

    def _stop_worker(self) -> None:
        self._stop.set()
        if self._worker is not None:
            self._worker.join()
            self._worker = None

    def _publish_results(self, results: list[FrameResult]) -> None:
        """Publish each result's messages, then the trajectory once (it costs ~15 us per pose)."""
        published = False
        for result in results:
            frame = self.tracker.take(result.index)
            if frame is None:
                self.get_logger().warning(f"result for an untracked frame (stamp {result.stamp:.6f}) skipped")
                continue
            self._publish(result, frame)
            published = True
        if published and self._outputs.trajectory.get_subscription_count() > 0:
            self._path.header = self._path_poses[-1].header
            self._path.poses = list(self._path_poses)
            self._outputs.trajectory.publish(self._path)

    def _publish(self, result: FrameResult, frame: TrackedFrame) -> None:
        outputs, settings, header = self._outputs, self.settings, frame.header
        mask = result.mask
        outputs.mask.publish(messages.mask_image(mask, header))
        info = self.camera_infos.lookup(header.stamp)
        if info is not None:
            outputs.mask_info.publish(messages.mask_camera_info(info, header))
        if outputs.probability is not None:
            outputs.probability.publish(messages.probability_image(result.probability, header))
        if frame.rgb is not None and outputs.overlay.get_subscription_count() > 0:
            outputs.overlay.publish(messages.overlay_image(frame.rgb, mask, header))
        odom, child = settings.odom_frame, settings.camera_frame or header.frame_id or f"{settings.odom_frame}_camera"
        pose = messages.odom_pose(result.pose)
        pose_msg = messages.pose_stamped(pose, header, odom)
        self._extend_trajectory(pose_msg, frame.epoch)
        outputs.pose.publish(pose_msg)
        outputs.odometry.publish(messages.odometry(pose, header, odom, child))
        if self._tf is not None:
            self._tf.sendTransform(messages.transform_stamped(pose, header, odom, child))
        if outputs.points is not None and result.points is not None:
            outputs.points.publish(messages.static_points(result.points, mask, settings.points_stride, header, odom))
        if self._instances is not None:
            self._publish_instances(result, frame)
        self.monitor.frame_published(frame.arrival, time.monotonic())

    def _publish_instances(self, result: FrameResult, frame: TrackedFrame) -> None:
        """Run the instance stage on this frame's mask; publish motion_instances and moving_objects."""
        if frame.rgb is None:
            self.get_logger().warning("instances: a frame's image was released before its mask came (input queue "
                                      "full), so its objects are not published", throttle_duration_sec=5.0)
            return
        restart = frame.epoch != self._instance_epoch  # a new stream: new ids, old markers deleted
        if restart:
            self._instances.reset()
            self._instance_epoch = frame.epoch
        header = frame.header
        found = self._instances.update(frame.rgb, result.mask > 0, stamp=header.stamp.sec + header.stamp.nanosec * 1e-9,
                                       points=result.points, pose=result.pose)
        self._outputs.instances.publish(markers.instance_image(found.ids, header))
        height, width = found.ids.shape
        intrinsics = self.camera_infos.intrinsics(header.stamp, width, height)
        if intrinsics is None:
            intrinsics = intrinsics_from_fov(width, height, self.settings.geometric_fov_degrees)
        self._outputs.objects.publish(markers.object_markers(found, header, intrinsics, restart))

    def _extend_trajectory(self, pose: PoseStamped, epoch: int) -> None:
        """Append to the bounded trajectory; the first pose of a restarted one is announced first."""
        if epoch != self._path_epoch:
            restart = self._restarts.pop(epoch, None)
            if restart is not None:
                self._announce(restart, pose)
            self._path_poses.clear()
            self._path_epoch = epoch
        self._path_poses.append(pose)

    def _announce(self, restart: Restart, pose: PoseStamped) -> None:
        """Log, count and publish a trajectory restart, so no consumer takes the jump for motion."""
        stamp = pose.header.stamp.sec + pose.header.stamp.nanosec * 1e-9
        self.monitor.trajectory_restarted(restart.cause)
        self.get_logger().warning(
            f"trajectory restarted at the identity from stamp {stamp:.6f} (cause: {restart.cause}: {restart.detail})")
        self._outputs.trajectory_reset.publish(String(data=f"cause={restart.cause} stamp={stamp:.9f} "
                                                           f"detail={restart.detail}"))

    # ----------------------------------------------------------------------------- services, diagnostics

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.engine.reset()
        self._restart_stream(Restart("requested", "~/reset service call"))
        response.success, response.message = True, "window, caches and trajectory cleared"
        self.get_logger().warning("reset by service call: the next frame starts a new trajectory")
        return response

    def _restart_stream(self, restart: Restart | None) -> None:
        """The next frame starts a new stream and trajectory (announced with ``restart`` when given)."""
        with self._lock:
            self._last_input = None
            self._stream_open = False
            if restart is None:
                self._epoch += 1
            else:
                self._begin_trajectory(restart)

    def _begin_trajectory(self, restart: Restart) -> None:
        """Frames submitted from now on belong to a new trajectory (call with ``self._lock`` held)."""
        self._epoch += 1
        self._restarts[self._epoch] = restart

    def _input_problem(self) -> str | None:
        """Why no image arrives, once none came for ``input.timeout`` seconds; None otherwise."""
        last = self._last_arrival if self._last_arrival is not None else self._activated_at
        silence = time.monotonic() - max(last, self._activated_at)
        if not self._active or not self._input_topics or silence < self.settings.input_timeout:
            return None
        topic, expected = self._input_topics[0]
        problem = f"no image for {silence:.1f} s on {topic} ({expected})"
        types = sorted({info.topic_type for info in self.get_publishers_info_by_topic(topic)})
        wrong = [kind for kind in types if kind != expected]
        if not types:
            problem += "; no publisher on it (check the remapping)"
        elif wrong:
            problem += f"; publishers send {', '.join(wrong)} on it, not {expected} (wrong topic type)"
        else:
            problem += "; a publisher exists but nothing arrives (QoS, or the DDS profile on the camera side)"
        self.get_logger().warning(problem, throttle_duration_sec=10.0)
        return problem

    def _publish_diagnostics(self) -> None:
        stats = self.engine.stats
        snapshot = self.monitor.snapshot(
            dropped=stats.dropped, queue_depth=stats.queue_depth, resets=sum(stats.resets.values())
        )
        settings = self.settings
        status = pipeline_status(
            f"{self.get_fully_qualified_name()}: pipeline",
            snapshot,
            device=backend_device(self.engine.backend),
            window=f"{settings.window_size} frames, stride {settings.window_stride}, look-ahead "
                   f"{settings.window_lookahead}, policy {settings.policy}",
            active=self._active,
            drops_expected=settings.policy != "every_frame",
            input_problem=self._input_problem(),
            inputs=", ".join(topic for topic, _ in self._input_topics),
            window_ms=1000.0 * stats.backend_s / stats.windows if stats.windows else float("nan"),
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics.publish(array)


class RosLogHandler(logging.Handler):
    """Forwards Python log records (the engine's, the backends') to a ROS logger."""

    def __init__(self, ros_logger: RcutilsLogger) -> None:
        super().__init__()
        self.ros_logger = ros_logger

    def emit(self, record: logging.LogRecord) -> None:
        message = self.format(record)
        if record.levelno >= logging.ERROR:
            self.ros_logger.error(message)
        elif record.levelno >= logging.WARNING:
            self.ros_logger.warning(message)
        elif record.levelno >= logging.INFO:
            self.ros_logger.info(message)
        else:
            self.ros_logger.debug(message)


def start(node: GeoMotionNode) -> bool:
    """Configure and activate ``node``; False (after one logged reason) when either fails."""
    if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        return False
    return node.trigger_activate() == TransitionCallbackReturn.SUCCESS


def main(args: list[str] | None = None) -> int:
    """Console script ``geomotion_node``: run the node on a single-threaded executor.

    Every callback is short (inference runs on the node's own worker thread), so one executor
    thread suffices; rclpy's MultiThreadedExecutor spends a large share of a CPU core (and of the
    GIL) rebuilding its wait set and handing each message to a thread pool, time the worker needs.
    """
    rclpy.init(args=args if args is not None else sys.argv)
    node = GeoMotionNode()
    core_logger = logging.getLogger("geomotion_core")
    handler = RosLogHandler(node.get_logger())
    core_logger.addHandler(handler)
    core_logger.setLevel(logging.INFO)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    status = 0
    try:
        if node.get_parameter("autostart").value and not start(node):
            node.get_logger().fatal("could not start; exiting (fix the parameters above and relaunch)")
            status = 1
        else:
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.stop_inference()
        executor.shutdown()
        core_logger.removeHandler(handler)
        node.destroy_node()
        rclpy.try_shutdown()
    return status
