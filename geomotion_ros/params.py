"""The node's parameters: one table of specs, declared with descriptors, read into a dataclass.

Defaults here equal ``config/geomotion.yaml`` (a test keeps them in sync). Ranges are enforced
by rclpy through the descriptors; string choices are checked by :func:`check_choice`, and
combinations (window size, stride, look-ahead, policy, queue) by :func:`check_combination`, both
when a value is set and at configure. Only ``mask.threshold`` applies while configured; the node
refuses the others then, with the reason (they take effect at the next configure).
"""
from __future__ import annotations

from dataclasses import dataclass

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from geomotion_core.backend import BACKENDS, ENGINES, FLOW_METHODS, PRECISIONS, BackendOptions
from geomotion_core.errors import ConfigError
from geomotion_core.geometric.config import DEFAULT_PRESET, PRESETS, GeometricConfig
from geomotion_core.streaming import POLICIES, StreamingConfig
from geomotion_ros.conversions import SizeLimit

ParameterValue = bool | int | float | str
RELIABILITIES = ("best_effort", "reliable")


@dataclass(frozen=True)
class ParameterSpec:
    """One declared parameter: its ROS name, the settings field it fills, default and limits."""

    name: str
    field: str
    default: ParameterValue
    description: str
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    step: float = 0

    def descriptor(self) -> ParameterDescriptor:
        """The ParameterDescriptor: description, choices as constraints text, numeric range."""
        descriptor = ParameterDescriptor(name=self.name, description=self.description)
        if self.choices:
            descriptor.additional_constraints = "one of: " + ", ".join(self.choices)
        if self.low is not None and isinstance(self.default, float):
            descriptor.floating_point_range = [
                FloatingPointRange(from_value=float(self.low), to_value=float(self.high), step=float(self.step))
            ]
        elif self.low is not None and isinstance(self.default, int) and not isinstance(self.default, bool):
            descriptor.integer_range = [
                IntegerRange(from_value=int(self.low), to_value=int(self.high), step=int(self.step))
            ]
        return descriptor


PARAMETERS: tuple[ParameterSpec, ...] = (
    ParameterSpec("autostart", "autostart", True,
                  "configure and activate on start; false leaves the transitions to a lifecycle manager"),
    ParameterSpec("backend", "backend", "geomotion",
                  "geomotion: the GeoMotion network; geometric: weight-free flow + ego-motion fit", BACKENDS),
    ParameterSpec("model.checkpoint", "checkpoint", "",
                  "GeoMotion checkpoint (best_model.pth, model.safetensors or ours); empty: look in the weights home"),
    ParameterSpec("model.config", "model_config", "",
                  "optional JSON file with non-official network sizes (its \"model\" object)"),
    ParameterSpec("model.allow_random_weights", "allow_random_weights", False,
                  "without a checkpoint, run the network with random weights (tests and smoke runs only)"),
    ParameterSpec("flow.method", "flow", "raft",
                  "optical flow: raft (torchvision RAFT-large) or dis (OpenCV, weight-free)", FLOW_METHODS),
    ParameterSpec("flow.raft_weights", "raft_weights", "", "RAFT-large weights file; empty: look in the weights home"),
    ParameterSpec("device", "device", "auto", "torch device: auto, cpu, cuda or cuda:N"),
    ParameterSpec("precision", "precision", "fp32", "inference precision on CUDA", PRECISIONS),
    ParameterSpec("window.size", "window_size", 8,
                  "frames per inference window (at least window.stride + 2, and window.lookahead + 2)",
                  low=2, high=32, step=1),
    ParameterSpec("window.stride", "window_stride", 1,
                  "new frames between consecutive windows; 1 with policy newest; at most window.size - 2",
                  low=1, high=30, step=1),
    ParameterSpec("window.lookahead", "window_lookahead", 0,
                  "later frames a frame waits for before its mask is final (0: the newest frame's own mask)",
                  low=0, high=2, step=1),
    ParameterSpec("policy", "policy", "newest",
                  "newest: one window per frame, ending at the newest frame (robot, low latency); latest: "
                  "stride blocks, stale frames dropped; every_frame: process every frame (bags)", POLICIES),
    ParameterSpec("inference.size", "inference_size", 518,
                  "network input size: square side, or long side with inference.keep_aspect (multiple of 14)",
                  low=14, high=1036, step=14),
    ParameterSpec("inference.keep_aspect", "keep_aspect", False,
                  "keep the image aspect ratio at inference instead of the official square"),
    ParameterSpec("inference.engine", "engine", "torch",
                  "network engine: torch, onnxruntime (fp32) or tensorrt (CUDA; engine built once and cached)",
                  ENGINES),
    ParameterSpec("queue.max_frames", "max_queue", 16,
                  "frames waiting for inference (at least window.size); beyond it frames are dropped and counted",
                  low=1, high=1024, step=1),
    ParameterSpec("mask.threshold", "threshold", 0.5, "motion probability above which a pixel is moving (live)",
                  low=0.0, high=0.999),
    ParameterSpec("stream.end_after", "end_after", 1.0,
                  "seconds without a frame after which the frames still waiting are finalised; the trajectory "
                  "continues with the next frame (0: never)", low=0.0, high=3600.0),
    ParameterSpec("sam2.enabled", "sam2_enabled", False,
                  "SAM2 refinement; clip-level only for now (geomotion segment --sam2): the node refuses true"),
    ParameterSpec("sam2.config", "sam2_config", "", "SAM2 model config name (e.g. configs/sam2.1/sam2.1_hiera_l.yaml)"),
    ParameterSpec("sam2.checkpoint", "sam2_checkpoint", "", "SAM2 checkpoint file"),
    ParameterSpec("geometric.preset", "geometric_preset", DEFAULT_PRESET,
                  "geometric backend: named settings (accurate: the defaults; fast: a cheaper DIS flow); the "
                  "geometric.* parameters below apply on top", tuple(PRESETS)),
    ParameterSpec("geometric.flow_scale", "geometric_flow_scale", GeometricConfig().flow_scale,
                  "geometric backend: frames are resized by this factor for flow, fit and scores (lower: faster, "
                  "coarser)", low=0.1, high=1.0),
    ParameterSpec("geometric.refine_radius", "geometric_refine_radius", GeometricConfig().refine_radius,
                  "geometric backend: window half size (pixels of an 854-wide frame) of the colour guided filter "
                  "snapping masks to image edges (0: off)", low=0.0, high=256.0),
    ParameterSpec("geometric.fov_degrees", "geometric_fov_degrees", GeometricConfig().fov_degrees,
                  "geometric backend: horizontal field of view for the camera motion when no camera_info arrives",
                  low=1.0, high=179.0),
    ParameterSpec("input.compressed", "compressed", False,
                  "subscribe <image>/compressed (CompressedImage, named after the resolved image topic as "
                  "image_transport does) instead of image"),
    ParameterSpec("input.max_width", "max_width", 4096, "wider images are rejected before decoding",
                  low=16, high=65536, step=1),
    ParameterSpec("input.max_height", "max_height", 4096, "taller images are rejected before decoding",
                  low=16, high=65536, step=1),
    ParameterSpec("input.max_megapixels", "max_megapixels", 64.0,
                  "images with more pixels (millions) are rejected before decoding", low=0.01, high=4096.0),
    ParameterSpec("input.timeout", "input_timeout", 3.0,
                  "seconds without an image (after activation) before /diagnostics warns, naming the input topics",
                  low=0.1, high=3600.0),
    ParameterSpec("input.qos.depth", "input_depth", 5, "queue depth of the image and camera_info subscriptions",
                  low=1, high=1000, step=1),
    ParameterSpec("input.qos.reliability", "input_reliability", "best_effort",
                  "input reliability; best_effort accepts every publisher", RELIABILITIES),
    ParameterSpec("output.qos.depth", "output_depth", 5, "queue depth of the output publishers", low=1, high=1000,
                  step=1),
    ParameterSpec("output.qos.reliability", "output_reliability", "reliable",
                  "output reliability; reliable serves both kinds of subscriber and ros2 bag record", RELIABILITIES),
    ParameterSpec("frames.odom", "odom_frame", "geomotion_odom",
                  "odometry frame (REP 103 axes) of camera_pose, odometry, trajectory, points and TF; a frame of "
                  "our own, never the robot's odom"),
    ParameterSpec("frames.camera", "camera_frame", "",
                  "child frame of odometry and TF; empty: the image's frame_id (its optical frame)"),
    ParameterSpec("trajectory.max_length", "trajectory_length", 2000, "poses kept in the trajectory Path",
                  low=1, high=1_000_000, step=1),
    ParameterSpec("publish.tf", "publish_tf", False,
                  "broadcast TF frames.odom -> camera frame (needs tf2_ros; only where that frame has no other parent)"),
    ParameterSpec("publish.probability", "publish_probability", False, "publish motion_probability (32FC1)"),
    ParameterSpec("publish.points", "publish_points", False,
                  "publish points (PointCloud2 of static points) when the backend predicts points"),
    ParameterSpec("points.stride", "points_stride", 4, "keep every Nth pixel in x and y for points", low=1, high=64,
                  step=1),
    ParameterSpec("diagnostics.period", "diagnostics_period", 1.0, "seconds between /diagnostics messages",
                  low=0.1, high=60.0),
)
DYNAMIC_PARAMETERS = frozenset({"mask.threshold"})


@dataclass(frozen=True)
class NodeSettings:
    """The parameters as read at configure time."""

    autostart: bool
    backend: str
    checkpoint: str
    model_config: str
    allow_random_weights: bool
    flow: str
    raft_weights: str
    device: str
    precision: str
    window_size: int
    window_stride: int
    window_lookahead: int
    policy: str
    inference_size: int
    keep_aspect: bool
    engine: str
    max_queue: int
    threshold: float
    end_after: float
    sam2_enabled: bool
    sam2_config: str
    sam2_checkpoint: str
    geometric_preset: str
    geometric_flow_scale: float
    geometric_refine_radius: float
    geometric_fov_degrees: float
    compressed: bool
    max_width: int
    max_height: int
    max_megapixels: float
    input_timeout: float
    input_depth: int
    input_reliability: str
    output_depth: int
    output_reliability: str
    odom_frame: str
    camera_frame: str
    trajectory_length: int
    publish_tf: bool
    publish_probability: bool
    publish_points: bool
    points_stride: int
    diagnostics_period: float

    def backend_options(self) -> BackendOptions:
        """The options ``build_backend`` takes."""
        return BackendOptions(
            backend=self.backend,
            checkpoint=self.checkpoint or None,
            model_config=self.model_config or None,
            flow=self.flow,
            raft_weights=self.raft_weights or None,
            device=self.device,
            precision=self.precision,
            size=self.inference_size,
            keep_aspect=self.keep_aspect,
            allow_random_weights=self.allow_random_weights,
            points=self.publish_points,
            engine=self.engine,
            geometric={
                "preset": self.geometric_preset,
                "flow_scale": self.geometric_flow_scale,
                "refine_radius": self.geometric_refine_radius,
                "fov_degrees": self.geometric_fov_degrees,
                # newest windows end at the frame they finalise (plus the look-ahead): the backend's
                # temporal support is bounded the same way, so no later frame can ever be used
                "lookahead": self.window_lookahead if self.policy == "newest" else None,
            },
        )

    def streaming_config(self) -> StreamingConfig:
        """The engine's configuration (not yet validated)."""
        return StreamingConfig(
            window_size=self.window_size,
            stride=self.window_stride,
            lookahead=self.window_lookahead,
            policy=self.policy,
            threshold=self.threshold,
            max_queue=self.max_queue,
        )

    def size_limit(self) -> SizeLimit:
        return SizeLimit(self.max_width, self.max_height, round(self.max_megapixels * 1e6))

    def input_qos(self) -> QoSProfile:
        return _qos(self.input_depth, self.input_reliability)

    def output_qos(self) -> QoSProfile:
        return _qos(self.output_depth, self.output_reliability)


def _qos(depth: int, reliability: str) -> QoSProfile:
    policy = ReliabilityPolicy.BEST_EFFORT if reliability == "best_effort" else ReliabilityPolicy.RELIABLE
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=policy)


SPECS_BY_NAME = {spec.name: spec for spec in PARAMETERS}


def check_choice(name: str, value: ParameterValue) -> str | None:
    """Why ``value`` is not allowed for parameter ``name``, or None when it is."""
    spec = SPECS_BY_NAME.get(name)
    if spec is None or not spec.choices or value in spec.choices:
        return None
    return f"{name} must be one of {', '.join(spec.choices)}, got {value!r}"


COMBINED = ("window.size", "window.stride", "window.lookahead", "policy", "queue.max_frames", "mask.threshold")


def check_combination(values: dict[str, ParameterValue]) -> str | None:
    """Why these window, policy and queue values do not work together, or None when they do.

    ``values`` maps the parameter names of ``COMBINED`` to their values.
    """
    config = StreamingConfig(
        window_size=int(values["window.size"]),
        stride=int(values["window.stride"]),
        lookahead=int(values["window.lookahead"]),
        policy=str(values["policy"]),
        max_queue=int(values["queue.max_frames"]),
        threshold=float(values["mask.threshold"]),
    )
    try:
        config.validate()
    except ConfigError as error:
        return (f"window.size {config.window_size}, window.stride {config.stride}, window.lookahead "
                f"{config.lookahead}, policy {config.policy}, queue.max_frames {config.max_queue}: {error}")
    return None


def declare_parameters(node: Node) -> None:
    """Declare every parameter with its default and descriptor (overrides from YAML/-p apply)."""
    node.declare_parameters("", [(spec.name, spec.default, spec.descriptor()) for spec in PARAMETERS])


def read_settings(node: Node) -> NodeSettings:
    """Read the declared parameters; raise ConfigError on a value outside its choices or a bad combination."""
    values = {}
    for spec in PARAMETERS:
        value = node.get_parameter(spec.name).value
        problem = check_choice(spec.name, value)
        if problem:
            raise ConfigError(problem)
        values[spec.field] = value
    problem = check_combination({name: node.get_parameter(name).value for name in COMBINED})
    if problem:
        raise ConfigError(problem)
    return NodeSettings(**values)
