# SPDX-License-Identifier: Apache-2.0
"""The node's parameters: the node entries of the option table, declared with descriptors and read
into :class:`NodeSettings`.

Every entry with a ``node_field`` (:data:`geomotion_core.options.table.NODE_OPTIONS`) is a
parameter: its name, default, description, range and choices come from the table, and
``config/geomotion.yaml`` repeats the defaults (a test keeps them in sync). rclpy enforces the
numeric ranges through the descriptors; :func:`check_value` checks every value against its entry
(type, choices, open bounds, multiples, patterns) and :func:`check_combination` the window, policy
and queue values together, both when a value is set and at configure. Entries marked ``live``
apply while the node is configured; the node refuses the others then, with the reason (they take
effect at the next configure).
"""
from __future__ import annotations

import dataclasses

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from geomotion_core.backend import BackendOptions
from geomotion_core.errors import ConfigError
from geomotion_core.instances import InstanceConfig
from geomotion_core.instances.config import OPTION_FIELDS as INSTANCE_FIELDS
from geomotion_core.options.loader import load
from geomotion_core.options.spec import Option, OptionValue
from geomotion_core.options.table import NODE_OPTIONS, OPTIONS_BY_NAME
from geomotion_core.streaming import StreamingConfig
from geomotion_ros.conversions import SizeLimit

LIVE_PARAMETERS = frozenset(entry.name for entry in NODE_OPTIONS if entry.live)
NODE_OPTIONS_BY_NAME = {entry.name: entry for entry in NODE_OPTIONS}
COMBINED = ("window.size", "window.stride", "window.lookahead", "policy", "queue.max_frames", "mask.threshold")


def descriptor(entry: Option) -> ParameterDescriptor:
    """The ParameterDescriptor of a table entry: description, choices as constraints text, range."""
    result = ParameterDescriptor(name=entry.name, description=entry.help)
    if entry.choices:
        result.additional_constraints = "one of: " + ", ".join(entry.choices)
    elif entry.pattern:
        result.additional_constraints = f"matches {entry.pattern}"
    bounds = entry.range
    if bounds is not None and entry.kind is float:
        result.floating_point_range = [FloatingPointRange(from_value=float(bounds.low), to_value=float(bounds.high),
                                                          step=0.0)]
    elif bounds is not None and entry.kind is int:
        result.integer_range = [IntegerRange(from_value=int(bounds.low), to_value=int(bounds.high),
                                             step=int(bounds.multiple_of or 1))]
    return result


class SettingsViews:
    """What the node builds from its settings (the methods of :class:`NodeSettings`)."""

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
            points=self.publish_points or self.instances_enabled,  # objects' 3D centroids where the backend has points
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

    def instance_config(self) -> InstanceConfig | None:
        """The instance stage's settings; None when instances.enabled is false."""
        if not self.instances_enabled:
            return None
        return InstanceConfig(**{name: getattr(self, f"instances_{name}") for name in INSTANCE_FIELDS})

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


NodeSettings = dataclasses.make_dataclass(
    "NodeSettings",
    [(entry.node_field, entry.kind, dataclasses.field(metadata={"option": entry})) for entry in NODE_OPTIONS],
    bases=(SettingsViews,),
    frozen=True,
)
NodeSettings.__module__ = __name__
NodeSettings.__doc__ = "The parameters as read at configure time: one field per node entry of the option table."


def _qos(depth: int, reliability: str) -> QoSProfile:
    policy = ReliabilityPolicy.BEST_EFFORT if reliability == "best_effort" else ReliabilityPolicy.RELIABLE
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=policy)


def check_value(name: str, value: OptionValue) -> str | None:
    """Why ``value`` is not allowed for node parameter ``name``, or None when it is (or not ours)."""
    entry = NODE_OPTIONS_BY_NAME.get(name)
    return None if entry is None else entry.check(value)


def check_combination(values: dict[str, OptionValue]) -> str | None:
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
                f"{config.lookahead}, policy {config.policy}, queue.max_frames {values['queue.max_frames']}: {error}")
    return None


def declare_parameters(node: Node) -> None:
    """Declare every parameter with its default and descriptor (overrides from YAML/-p apply)."""
    node.declare_parameters("", [(entry.name, entry.default, descriptor(entry)) for entry in NODE_OPTIONS])


def read_settings(node: Node) -> NodeSettings:
    """Read the declared parameters (through the one loader, which checks each against its table
    entry); raise ConfigError on a refused value or a bad combination."""
    values = {entry.node_field: node.get_parameter(entry.name).value for entry in NODE_OPTIONS}
    settings = load(NodeSettings, values, noun="parameter")
    problem = check_combination({name: node.get_parameter(name).value for name in COMBINED})
    if problem:
        raise ConfigError(problem)
    return settings


def live_field(name: str) -> str | None:
    """The StreamingConfig field that live parameter ``name`` sets, or None."""
    entry = OPTIONS_BY_NAME[name]
    return next((item.name for item in dataclasses.fields(StreamingConfig) if item.metadata.get("option") is entry),
                None)
