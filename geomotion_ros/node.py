"""``geomotion_node``: streaming motion segmentation as a ROS 2 lifecycle node.

configure  read parameters, build the backend and the streaming engine (missing weights fail
           here, with one logged line), create publishers, ``~/reset`` and /diagnostics
activate   subscribe ``image`` (or ``image/compressed``) and ``camera_info``; start the worker
deactivate unsubscribe, stop the worker, publish what the engine still holds

The image callback converts the message (zero-copy for rgb8) and enqueues it; inference runs on
a worker thread, so DDS never waits on the network and stale frames are dropped by policy.
"""
from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Path
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.rcutils_logger import RcutilsLogger
from rclpy.lifecycle import LifecycleNode, LifecyclePublisher, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from geomotion_core.backend import build_backend
from geomotion_core.errors import ConfigError, GeoMotionError
from geomotion_core.streaming import StreamingConfig, StreamingSegmenter
from geomotion_core.types import FrameResult
from geomotion_ros import messages
from geomotion_ros.conversions import compressed_to_rgb, image_to_rgb
from geomotion_ros.diagnostics import PipelineMonitor, pipeline_status
from geomotion_ros.pairing import CameraInfoTable
from geomotion_ros.params import NodeSettings, check_choice, declare_parameters, read_settings
from geomotion_ros.tracking import FrameTracker, TrackedFrame

NODE_NAME = "geomotion_node"
WORKER_POLL_S = 0.05


@dataclass
class Outputs:
    """The node's publishers (lifecycle publishers: silent while the node is inactive)."""

    mask: LifecyclePublisher
    mask_info: LifecyclePublisher
    probability: LifecyclePublisher | None
    overlay: LifecyclePublisher
    pose: LifecyclePublisher
    trajectory: LifecyclePublisher
    points: LifecyclePublisher | None


class GeoMotionNode(LifecycleNode):
    """Subscribes images, publishes motion masks, camera poses, trajectory and diagnostics."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        declare_parameters(self)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.settings: NodeSettings | None = None
        self.engine: StreamingSegmenter | None = None
        self.monitor = PipelineMonitor()
        self.camera_infos = CameraInfoTable()
        self._outputs: Outputs | None = None
        self._subscriptions_active: list = []
        self._lock = threading.Lock()
        self.tracker = FrameTracker(image_slots=1)
        self._path = Path()
        self._path_poses: deque[PoseStamped] = deque()
        self._path_epoch = 0
        self._epoch = 0
        self._last_input: tuple[float, tuple[int, int]] | None = None
        self._last_arrival = 0.0
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
            engine = StreamingSegmenter(backend, StreamingConfig(
                window_size=settings.window_size,
                stride=settings.window_stride,
                policy=settings.policy,
                threshold=settings.threshold,
                max_queue=settings.max_queue,
            ))
        except GeoMotionError as error:
            self.get_logger().error(f"configure failed: {error}")
            return TransitionCallbackReturn.FAILURE
        self.settings, self.engine = settings, engine
        self.tracker = FrameTracker(image_slots=settings.max_queue + 2 * settings.window_size)
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
            f"configured: backend {settings.backend}, window {settings.window_size}/{settings.window_stride}, "
            f"policy {settings.policy}, device {settings.device}"
        )
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._subscribe(self.settings)
        self._stop.clear()
        self._worker = threading.Thread(target=self._work, name="geomotion_inference", daemon=True)
        self._worker.start()
        self._active = True
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_input()
        self._publish_results(self.engine.flush())
        self._restart_stream()
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
        self._outputs, self.engine = None, None
        self._restart_stream()
        self.camera_infos.clear()

    # ----------------------------------------------------------------------------- wiring

    def _create_outputs(self, settings: NodeSettings) -> None:
        qos = settings.output_qos()
        create = self.create_lifecycle_publisher
        self._outputs = Outputs(
            mask=create(Image, "motion_mask/image", qos),
            mask_info=create(CameraInfo, "motion_mask/camera_info", qos),
            probability=create(Image, "motion_probability", qos) if settings.publish_probability else None,
            overlay=create(Image, "overlay", qos),
            pose=create(PoseStamped, "camera_pose", qos),
            trajectory=create(Path, "trajectory", qos),
            points=create(PointCloud2, "points", qos) if settings.publish_points else None,
        )

    def _subscribe(self, settings: NodeSettings) -> None:
        qos = settings.input_qos()
        events = SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos)
        if settings.compressed:
            image = self.create_subscription(CompressedImage, "image/compressed", self._on_compressed, qos,
                                             callback_group=self._input_group, event_callbacks=events)
        else:
            image = self.create_subscription(Image, "image", self._on_image, qos,
                                             callback_group=self._input_group, event_callbacks=events)
        info = self.create_subscription(CameraInfo, "camera_info", self.camera_infos.add, qos,
                                        callback_group=self._input_group)
        self._subscriptions_active = [image, info]

    def _on_incompatible_qos(self, event) -> None:
        self.get_logger().error(
            f"an image publisher has incompatible QoS (policy {event.last_policy_kind}); "
            "set input.qos.reliability: best_effort to accept every publisher",
            throttle_duration_sec=10.0,
        )

    def _on_set_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        for parameter in parameters:
            problem = check_choice(parameter.name, parameter.value)
            if problem:
                return SetParametersResult(successful=False, reason=problem)
        engine = self.engine
        for parameter in parameters:
            if parameter.name == "mask.threshold" and engine is not None:
                engine.config.threshold = float(parameter.value)  # read by the next window
        return SetParametersResult(successful=True)

    # ----------------------------------------------------------------------------- input

    def _on_image(self, msg: Image) -> None:
        self._accept(msg.header, lambda: image_to_rgb(msg))

    def _on_compressed(self, msg: CompressedImage) -> None:
        self._accept(msg.header, lambda: compressed_to_rgb(msg))

    def _accept(self, header: Header, convert) -> None:
        """Convert and enqueue one frame; a bad message is logged, counted and skipped."""
        arrival = time.monotonic()
        self.monitor.frame_received(arrival)
        try:
            rgb = convert()
        except GeoMotionError as error:
            self.monitor.frame_rejected()
            self.get_logger().error(f"image rejected: {error}", throttle_duration_sec=5.0)
            return
        stamp = header.stamp.sec + header.stamp.nanosec * 1e-9
        size = rgb.shape[:2]
        with self._lock:
            if self._last_input is not None and (size != self._last_input[1] or stamp < self._last_input[0]):
                self._epoch += 1  # the engine restarts its window and trajectory (and logs why)
            self._last_input = (stamp, size)
            self._last_arrival = arrival
            self._stream_open = True
            epoch = self._epoch
        index = self.tracker.add(TrackedFrame(header, rgb, arrival, epoch))
        intrinsics = self.camera_infos.intrinsics(header.stamp, size[1], size[0])
        try:
            accepted = self.engine.submit(rgb, stamp, intrinsics=intrinsics)
        except GeoMotionError as error:
            self.tracker.withdraw(index, counted=False)
            self.monitor.frame_rejected()
            self.get_logger().error(f"image rejected: {error}", throttle_duration_sec=5.0)
            return
        if not accepted:
            self.tracker.withdraw(index, counted=True)

    # ----------------------------------------------------------------------------- inference

    def _work(self) -> None:
        """Worker thread: run the engine on whatever is queued and publish what became final."""
        engine, end_after = self.engine, self.settings.end_after
        while not self._stop.is_set():
            try:
                if engine.wait_ready(WORKER_POLL_S):
                    self._publish_results(engine.process_pending())
                elif end_after and self._stream_open and time.monotonic() - self._last_arrival > end_after:
                    self._end_stream()
            except Exception as error:  # a failing window must not stop the node; the engine restarts
                if self._stop.is_set():
                    break  # shutting down: publishers may already be gone
                self.monitor.inference_failed()
                self.get_logger().error(f"inference failed: {type(error).__name__}: {error}",
                                        throttle_duration_sec=5.0)

    def _end_stream(self) -> None:
        """No frame came for a while: finalise what is waiting; the next frame starts a new trajectory."""
        self._publish_results(self.engine.flush())
        self._restart_stream()

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
        pose = messages.pose_stamped(result.pose, header, settings.trajectory_frame)
        outputs.pose.publish(pose)
        self._extend_trajectory(pose, frame.epoch)
        if outputs.points is not None and result.points is not None:
            outputs.points.publish(
                messages.static_points(result.points, mask, settings.points_stride, header, settings.trajectory_frame)
            )
        self.monitor.frame_published(frame.arrival, time.monotonic())

    def _extend_trajectory(self, pose: PoseStamped, epoch: int) -> None:
        """Append to the bounded trajectory; a new stream starts a new one."""
        if epoch != self._path_epoch:
            self._path_poses.clear()
            self._path_epoch = epoch
        self._path_poses.append(pose)

    # ----------------------------------------------------------------------------- services, diagnostics

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.engine.reset()
        self._restart_stream()
        response.success, response.message = True, "window, caches and trajectory cleared"
        self.get_logger().info("reset by service call")
        return response

    def _restart_stream(self) -> None:
        """The next frame starts a new stream: a new trajectory, no size or stamp to compare with.

        Tracked frames the engine discarded are forgotten as soon as a later result arrives.
        """
        with self._lock:
            self._last_input = None
            self._stream_open = False
            self._epoch += 1

    def _publish_diagnostics(self) -> None:
        stats = self.engine.stats
        snapshot = self.monitor.snapshot(
            dropped=stats.dropped, queue_depth=stats.queue_depth, resets=sum(stats.resets.values())
        )
        settings = self.settings
        status = pipeline_status(
            f"{self.get_fully_qualified_name()}: pipeline",
            snapshot,
            device=str(getattr(self.engine.backend, "device", settings.device)),
            window=f"{settings.window_size} frames, stride {settings.window_stride}, policy {settings.policy}",
            active=self._active,
            drops_expected=settings.policy == "latest",
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
