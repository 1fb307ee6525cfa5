# SPDX-License-Identifier: Apache-2.0
"""Play a bag through the real node over DDS and record what it publishes.

The player publishes the bag's raw CDR messages and ``/clock`` (the node runs on sim time), the
node is the production ``GeoMotionNode`` with its own executor threads, and a recorder takes the
node's masks and poses as raw bytes into the output bag. Everything runs in one process on a
private rclpy context (in-process DDS has no large-message losses).

The replay ends by counting, never after a fixed wait: every frame sent must have reached the
node (or been refused by it), then deactivating the node finalises every frame it still holds,
and the recorder waits for one mask per processed frame. A wait gives up only when its count has
not moved for a stall limit derived from the bag's frame period and the node's window time;
frames that never arrived count as dropped.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable
from pathlib import Path

import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from geomotion_core.backend import BackendOptions
from geomotion_core.errors import GeoMotionError, InputError
from geomotion_core.streaming import StreamingConfig
from geomotion_ros.bag.outcome import FrameOutcome, ReplayOutcome
from geomotion_ros.bag.read import BagReader, header_stamp_ns
from geomotion_ros.bag.record import MASK_TOPIC, POSE_TOPIC, OutputBag
from geomotion_ros.bag.schema import COMPRESSED_IMAGE_TYPE, IMAGE_TYPE, POSE_TYPE
from geomotion_ros.conversions import image_to_array
from geomotion_ros.node import GeoMotionNode, start

LOGGER = logging.getLogger(__name__)
RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
IDLE_POLL_S = 0.01
MIN_STALL_S = 10.0  # the shortest time a count may stand still before a wait gives up
STALL_PERIODS = 20  # ... or this many frame periods of the bag (at the playback rate)
STALL_WINDOWS = 20  # ... or this many of the node's slowest window times
FIRST_WINDOW_STALL_S = 300.0  # before the first window is timed (a network's first pass on a CPU)


def node_parameters(options: BackendOptions, config: StreamingConfig, compressed: bool) -> list[Parameter]:
    """The node's parameters for a replay with these backend and engine settings."""
    values = {
        "use_sim_time": True,
        "autostart": False,
        "backend": options.backend,
        "model.checkpoint": options.checkpoint or "",
        "model.config": options.model_config or "",
        "model.allow_random_weights": options.allow_random_weights,
        "flow.method": options.flow,
        "flow.raft_weights": options.raft_weights or "",
        "device": options.device,
        "precision": options.precision,
        "inference.size": options.size,
        "inference.keep_aspect": options.keep_aspect,
        "window.size": config.window_size,
        "window.stride": config.stride,
        "window.lookahead": config.lookahead,
        "policy": config.policy,
        "mask.threshold": config.threshold,
        "queue.max_frames": config.max_queue,
        "stream.end_after": 0.0,
        "input.compressed": compressed,
        "input.qos.reliability": "reliable",
        "input.qos.depth": max(10, config.max_queue),
        "output.qos.depth": 100,
    }
    return [Parameter(name, value=value) for name, value in values.items()]


class _Recorder:
    """Collects the node's masks (with latency) and writes masks and poses to the output bag."""

    def __init__(self, published_at: dict[int, float], output: OutputBag | None) -> None:
        self.published_at = published_at
        self.output = output
        self.outcomes: list[FrameOutcome] = []
        self.lock = threading.Lock()

    def on_mask(self, raw: bytes) -> None:
        received = time.perf_counter()
        message = deserialize_message(raw, Image)
        stamp_ns = message.header.stamp.sec * 10**9 + message.header.stamp.nanosec
        mask = image_to_array(message) > 0
        with self.lock:
            latency = received - self.published_at.get(stamp_ns, received)
            self.outcomes.append(FrameOutcome(stamp_ns, mask, latency))
            if self.output:
                self.output.write_raw(MASK_TOPIC, IMAGE_TYPE, stamp_ns, raw)

    def on_pose(self, raw: bytes) -> None:
        message = deserialize_message(raw, PoseStamped)
        with self.lock:
            if self.output:
                stamp_ns = message.header.stamp.sec * 10**9 + message.header.stamp.nanosec
                self.output.write_raw(POSE_TOPIC, POSE_TYPE, stamp_ns, raw)


def _spin(executor: MultiThreadedExecutor, stop: threading.Event) -> None:
    """Spin until ``stop``, surviving a callback's exception: deactivating the node destroys its
    subscriptions while this thread waits on them, which can raise here; ``executor.spin`` would
    then end, and the masks the node publishes as it deactivates would never be recorded."""
    while not stop.is_set():
        try:
            executor.spin_once(timeout_sec=IDLE_POLL_S * 10)
        except Exception as error:  # noqa: BLE001 - logged; the replay must keep recording
            LOGGER.debug("executor: %s: %s", type(error).__name__, error)


def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(IDLE_POLL_S)
    return True


class StallLimit:
    """How long a replay count may stand still: derived from the bag's frame period (at the
    playback rate) and the slowest window the node has run so far."""

    def __init__(self, period_s: float, rate: float) -> None:
        self.period_s = period_s / rate if rate > 0 else period_s
        self.slowest_window_s: float | None = None

    def seconds(self, node: GeoMotionNode) -> float:
        window_s = node.engine.stats.last_window_s
        if window_s is not None:
            self.slowest_window_s = max(window_s, self.slowest_window_s or 0.0)
        if self.slowest_window_s is None:
            return FIRST_WINDOW_STALL_S
        return max(MIN_STALL_S, STALL_PERIODS * self.period_s, STALL_WINDOWS * self.slowest_window_s)


def wait_for_count(count: Callable[[], int], target: int, stall_s: Callable[[], float],
                   progress: Callable[[], int] | None = None) -> bool:
    """Wait until ``count() >= target``; False once ``progress()`` (default: ``count()``) has not
    changed for ``stall_s()`` seconds."""
    progress = progress or count
    last, moved = progress(), time.monotonic()
    while count() < target:
        now_progress = progress()
        if now_progress != last:
            last, moved = now_progress, time.monotonic()
        elif time.monotonic() - moved > stall_s():
            return False
        time.sleep(IDLE_POLL_S)
    return True


def replay_through_node(
    reader: BagReader,
    image_topic: str,
    options: BackendOptions,
    config: StreamingConfig,
    rate: float = 1.0,
    output: Path | None = None,
) -> ReplayOutcome:
    """Play ``image_topic`` (and its CameraInfo) through a GeoMotionNode; record its outputs.

    ``rate`` scales the recorded timing (``0`` = as fast as the node takes frames). With the
    ``every_frame`` policy the player also waits while the node's queue is full, so no frame is
    refused; with ``latest`` the node drops stale frames by policy, as on a robot.
    """
    image_connection = reader.image_connection(image_topic)
    compressed = image_connection.msgtype == COMPRESSED_IMAGE_TYPE
    info_connection = reader.camera_info_connection(image_topic)
    connections = [image_connection] + ([info_connection] if info_connection else [])
    context = rclpy.Context()
    rclpy.init(context=context)
    recorder_bag = OutputBag(output) if output else None
    replay = ReplayOutcome(reader.path, "dds", [])
    published_at: dict[int, float] = {}
    recorder = _Recorder(published_at, recorder_bag)
    try:
        node = GeoMotionNode(context=context, parameter_overrides=node_parameters(options, config, compressed))
        player = rclpy.create_node("geomotion_bag_player", context=context)
        clock = player.create_publisher(Clock, "/clock", RELIABLE)
        images = player.create_publisher(CompressedImage if compressed else Image,
                                         "image/compressed" if compressed else "image", RELIABLE)
        infos = player.create_publisher(CameraInfo, "camera_info", RELIABLE)
        recorded = [player.create_subscription(Image, "motion_mask/image", recorder.on_mask, RELIABLE, raw=True),
                    player.create_subscription(PoseStamped, "camera_pose", recorder.on_pose, RELIABLE, raw=True)]
        executor = MultiThreadedExecutor(num_threads=4, context=context)
        executor.add_node(node)
        executor.add_node(player)
        stop_spinning = threading.Event()
        spinner = threading.Thread(target=_spin, args=(executor, stop_spinning), daemon=True)
        spinner.start()
        try:
            if not start(node):
                raise GeoMotionError("the node failed to configure or activate (see the log above)")
            if not _wait_until(lambda: images.get_subscription_count() > 0, timeout=MIN_STALL_S):
                raise GeoMotionError("the node did not subscribe to the image topic")
            # masks published before the recorder is matched would be lost (volatile QoS)
            if not _wait_until(lambda: all(sub.get_publisher_count() > 0 for sub in recorded), timeout=MIN_STALL_S):
                raise GeoMotionError("the recorder did not match the node's mask and pose publishers")
            stall = StallLimit(reader.frame_period_s(image_connection), rate)
            started = time.perf_counter()
            unsendable = _play(reader, connections, image_connection, clock, images, infos, node, config, rate,
                               replay, published_at, stall)
            sent = len(replay.input_stamps)
            arrived = wait_for_count(lambda: node.monitor.received, sent, lambda: stall.seconds(node))
            lost = sent - node.monitor.received
            if not arrived:
                LOGGER.warning("%d of %d frames sent never reached the node; counted as dropped", lost, sent)
            node.trigger_deactivate()  # finalises every frame the engine still holds, and publishes it
            processed = node.engine.stats.processed
            if not wait_for_count(lambda: len(recorder.outcomes), processed, lambda: stall.seconds(node)):
                LOGGER.warning("%d of the %d masks published were not recorded", processed - len(recorder.outcomes),
                               processed)
            replay.wall_s = time.perf_counter() - started
            replay.dropped = node.engine.stats.dropped + node.monitor.rejected + max(lost, 0) + unsendable
        finally:
            stop_spinning.set()
            spinner.join(timeout=5.0)
            executor.shutdown(timeout_sec=2.0)
            node.stop_inference()
            node.destroy_node()
            player.destroy_node()
    except BaseException:
        if recorder_bag:
            recorder_bag.close(complete=False)
        raise
    else:
        if recorder_bag:
            recorder_bag.close()
    finally:
        rclpy.try_shutdown(context=context)
    replay.outcomes = recorder.outcomes
    return replay


def _play(reader, connections, image_connection, clock, images, infos, node, config, rate, replay,
          published_at, stall: StallLimit) -> int:
    """Publish the bag's messages; returns the number of image messages too short to carry a header
    (counted as rejected, as the node would reject them)."""
    first_log: int | None = None
    unsendable = 0
    started = time.perf_counter()
    for connection, log_time, raw in reader.raw_messages(connections):
        first_log = log_time if first_log is None else first_log
        if rate > 0:
            delay = started + (log_time - first_log) / 1e9 / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        seconds, nanoseconds = divmod(log_time, 10**9)
        clock_message = Clock()
        clock_message.clock.sec, clock_message.clock.nanosec = int(seconds), int(nanoseconds)
        clock.publish(clock_message)
        if connection is not image_connection:
            infos.publish(raw)
            continue
        if config.policy == "every_frame":
            room = lambda: int(_backlog(node, len(replay.input_stamps)) < config.max_queue - 1)  # noqa: E731
            if not wait_for_count(room, 1, lambda: stall.seconds(node), progress=lambda: _handled(node)):
                raise GeoMotionError(f"the node stopped taking frames ({len(replay.input_stamps)} sent, "
                                     f"{node.monitor.received} received, {node.engine.stats.processed} processed)")
        try:
            stamp_ns = header_stamp_ns(raw)
        except InputError as error:
            unsendable += 1
            LOGGER.warning("image message not sent: %s", error)
            continue
        replay.input_stamps.append(stamp_ns)
        published_at[stamp_ns] = time.perf_counter()
        images.publish(raw)
    return unsendable


def _handled(node: GeoMotionNode) -> int:
    """A count that grows while the node makes progress on the frames it was sent."""
    stats = node.engine.stats
    return node.monitor.received + stats.processed + stats.dropped


def _backlog(node: GeoMotionNode, published: int) -> int:
    """Frames published but not yet taken into a window: in DDS or the callback, or queued."""
    return published - node.monitor.received + node.engine.stats.queue_depth
