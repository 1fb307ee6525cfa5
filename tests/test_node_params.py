"""Node parameters: declared with descriptors, defaults equal config/geomotion.yaml, limits enforced."""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

pytest.importorskip("rclpy", reason="needs the ROS 2 Python packages (PyPI wheels or a ROS install)")

from rclpy.parameter import Parameter  # noqa: E402

from geomotion_core.backends import build_backend  # noqa: E402
from geomotion_core.errors import ConfigError  # noqa: E402
from geomotion_core.geometric import GeometricConfig  # noqa: E402
from geomotion_ros.node import GeoMotionNode  # noqa: E402
from geomotion_ros.params import NODE_OPTIONS, read_settings  # noqa: E402

pytestmark = pytest.mark.ros

CONFIG = Path(__file__).resolve().parents[1] / "config" / "geomotion.yaml"


def flatten(tree: dict, prefix: str = "") -> dict:
    """Nested YAML mappings as dotted parameter names."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def yaml_parameters() -> dict:
    return flatten(yaml.safe_load(CONFIG.read_text())["/**"]["ros__parameters"])


def test_yaml_lists_every_declared_parameter_with_its_default():
    declared = {spec.name: spec.default for spec in NODE_OPTIONS}
    assert yaml_parameters() == declared
    for name, value in yaml_parameters().items():  # same types, so a YAML override loads
        assert type(value) is type(declared[name]), name


def test_the_node_declares_every_parameter_with_the_tables_help_choices_and_range(ros_context):
    node = GeoMotionNode(context=ros_context)
    try:
        declared = dict(zip((spec.name for spec in NODE_OPTIONS), node.describe_parameters(
            [spec.name for spec in NODE_OPTIONS])))
    finally:
        node.destroy_node()
    for spec in NODE_OPTIONS:
        described = declared[spec.name]
        assert described.name == spec.name and described.description == spec.help != "", spec.name
        assert described.read_only is False
        if spec.choices:
            assert described.additional_constraints == "one of: " + ", ".join(spec.choices), spec.name
        bounds = list(described.floating_point_range) + list(described.integer_range)
        if spec.kind in (int, float):  # every number has its range
            assert spec.range is not None, spec.name
            assert [(b.from_value, b.to_value) for b in bounds] == [(spec.range.low, spec.range.high)], spec.name
        else:
            assert bounds == [], spec.name


def test_params_file_and_command_line_overrides_reach_the_settings(ros_domain):
    import rclpy

    context = rclpy.Context()
    rclpy.init(context=context, args=[
        "geomotion_node", "--ros-args", "--params-file", str(CONFIG),
        "-p", "window.size:=6", "-p", "policy:=every_frame", "-p", "geometric.flow_scale:=0.75",
        "-p", "geometric.preset:=accurate",
    ])
    node = GeoMotionNode(context=context)
    try:
        settings = read_settings(node)
        assert (settings.window_size, settings.policy, settings.window_stride) == (6, "every_frame", 1)
        assert settings.input_qos().reliability.name == "BEST_EFFORT"
        assert settings.output_qos().reliability.name == "RELIABLE"
        options = settings.backend_options()
        assert (options.backend, options.checkpoint, options.size) == ("geomotion", None, 518)
        geometric = build_backend(replace(options, backend="geometric"))
        assert (geometric.config.flow_scale, geometric.config.refine_radius) == (0.75, GeometricConfig().refine_radius)
        accurate = GeometricConfig.from_settings({"preset": "accurate"})
        assert geometric.config.flow_refinement_iterations == accurate.flow_refinement_iterations != GeometricConfig().flow_refinement_iterations
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def test_out_of_range_and_unknown_choices_are_rejected(ros_context):
    node = GeoMotionNode(context=ros_context)
    try:
        too_big = node.set_parameters([Parameter("window.size", value=100)])[0]
        assert not too_big.successful
        bad_choice = node.set_parameters([Parameter("backend", value="magic")])[0]
        assert not bad_choice.successful and "backend must be one of geomotion, geometric" in bad_choice.reason
        assert node.get_parameter("backend").value == "geomotion"
        assert node.set_parameters([Parameter("mask.threshold", value=0.7)])[0].successful
    finally:
        node.destroy_node()


def test_bad_choice_given_at_start_fails_reading_the_settings(ros_context):
    node = GeoMotionNode(context=ros_context, parameter_overrides=[Parameter("flow.method", value="farneback")])
    try:
        with pytest.raises(ConfigError, match="flow.method must be one of raft, dis"):
            read_settings(node)
    finally:
        node.destroy_node()


@pytest.mark.parametrize("changes, message", [
    ({"window.stride": 3, "window.size": 4, "policy": "latest"}, "align_scale needs consecutive windows to share"),
    ({"window.stride": 2}, "policy newest runs causal windows at stride 1"),
    ({"window.size": 2}, "lookahead|align_scale"),
    ({"queue.max_frames": 4}, "max_queue"),
])
def test_invalid_combinations_are_rejected_when_set(ros_context, changes, message):
    node = GeoMotionNode(context=ros_context)
    try:
        before = {name: node.get_parameter(name).value for name in changes}
        result = node.set_parameters_atomically([Parameter(name, value=value) for name, value in changes.items()])
        assert not result.successful
        assert re.search(message, result.reason), result.reason
        assert {name: node.get_parameter(name).value for name in changes} == before
    finally:
        node.destroy_node()


def test_a_valid_combination_set_in_order_is_accepted_before_configure(ros_context):
    node = GeoMotionNode(context=ros_context)
    try:
        assert node.set_parameters([Parameter("policy", value="latest")])[0].successful
        assert node.set_parameters([Parameter("window.stride", value=4)])[0].successful  # size 8: overlap 4
        assert not node.set_parameters([Parameter("window.size", value=5)])[0].successful  # overlap 1
        assert read_settings(node).window_stride == 4
    finally:
        node.destroy_node()


def test_newest_policy_bounds_the_geometric_backends_look_ahead(ros_context):
    node = GeoMotionNode(context=ros_context, parameter_overrides=[
        Parameter("backend", value="geometric"), Parameter("window.lookahead", value=1)])
    try:
        settings = read_settings(node)
        assert settings.policy == "newest"
        assert build_backend(settings.backend_options()).config.lookahead == 1
        assert replace(settings, policy="every_frame", window_stride=4).backend_options().geometric["lookahead"] is None
    finally:
        node.destroy_node()


def test_configure_warms_up_every_window_length_of_the_network(ros_context, reference_dir, monkeypatch):
    from rclpy.lifecycle import TransitionCallbackReturn

    from geomotion_core.pipeline.network_backend import NetworkBackend

    prepared: list[list[int]] = []
    warmup = NetworkBackend.warmup

    def recording_warmup(self, window_sizes, *args, **kwargs):
        prepared.append(list(window_sizes))
        return warmup(self, window_sizes, *args, **kwargs)

    monkeypatch.setattr(NetworkBackend, "warmup", recording_warmup)
    node = GeoMotionNode(context=ros_context, parameter_overrides=[
        Parameter("autostart", value=False), Parameter("backend", value="geomotion"),
        Parameter("model.config", value=str(reference_dir / "small" / "config.json")),
        Parameter("model.allow_random_weights", value=True), Parameter("inference.size", value=56),
        Parameter("flow.method", value="dis"), Parameter("device", value="cpu"), Parameter("window.size", value=4)])
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert prepared == [[2, 3, 4]]  # newest windows grow from 2 frames to the window size
    finally:
        node.destroy_node()
