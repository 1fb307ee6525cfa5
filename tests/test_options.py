"""The option table: the one source of the CLI options, the node parameters and the dataclass
defaults; the one strict loader; old option spellings; the generated docs/options.md."""
from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import cv2
import pytest

from geomotion_core.backend import BackendOptions
from geomotion_core.cli import build_parser, main
from geomotion_core.cli.options import option_type
from geomotion_core.demo.clip import DemoClipConfig, render_clip
from geomotion_core.errors import ConfigError
from geomotion_core.geometric.config import PRESETS, GeometricConfig
from geomotion_core.options.docs import render, usage
from geomotion_core.options.loader import load
from geomotion_core.options.spec import Number, Option
from geomotion_core.options.table import (
    CHUNK_PROTOCOLS,
    EVAL_PROTOCOLS,
    GEOMETRIC_PRESETS,
    NODE_OPTIONS,
    OPTIONS,
    option,
    option_field,
)
from geomotion_core.streaming import StreamingConfig

DOCS = Path(__file__).resolve().parents[1] / "docs" / "options.md"
# (command, option) whose default differs from the table's on purpose (each command's --help says why)
COMMAND_DEFAULTS = {
    ("bag eval", "policy"): "every_frame",  # a replay scores every frame
    ("benchmark", "chunk.protocol"): "eval",  # as GeoMotion's eval.py
    ("benchmark", "mask.threshold"): None,  # the chunk protocol's threshold
    ("segment", "mask.threshold"): None,
    ("benchmark", "eval.protocol"): None,  # the benchmark's own protocol
    ("eval", "eval.protocol"): None,
    ("train", "model.config"): None,  # train: an option not given keeps the YAML's value
    ("train", "flow.method"): None,
    ("train", "flow.raft_weights"): None,
    ("train", "device"): None,
    ("train", "inference.size"): None,
    ("train", "train.precision"): None,
}


@pytest.fixture(scope="module")
def uses() -> dict[str, list[tuple[str, argparse.Action]]]:
    return usage(build_parser())


def _cli_default(entry: Option) -> object:
    return None if entry.default == "" else entry.default


def test_every_command_line_option_is_made_from_its_table_entry(uses):
    assert {"segment", "benchmark", "bag eval", "eval", "train", "export", "demo"} <= {
        command for found in uses.values() for command, _ in found}
    for name, found in uses.items():
        entry = option(name)
        for command, action in found:
            assert action.option_strings[0] == entry.flag, (command, name)
            assert (action.choices or ()) == (entry.choices or ()), (command, name)
            if entry.kind is not bool:
                assert action.type == option_type(entry), (command, name)
            expected = COMMAND_DEFAULTS.get((command, name), _cli_default(entry))
            assert action.default == expected, (command, name)


def test_the_command_line_and_the_node_share_defaults_types_and_ranges(uses):
    pytest.importorskip("rclpy", reason="needs the ROS 2 Python packages (PyPI wheels or a ROS install)")
    from geomotion_ros.params import NodeSettings, descriptor

    assert [field.name for field in dataclasses.fields(NodeSettings)] == [entry.node_field for entry in NODE_OPTIONS]
    shared = [entry for entry in NODE_OPTIONS if entry.flag]
    assert {"window.size", "window.stride", "mask.threshold", "queue.max_frames", "inference.size"} <= {
        entry.name for entry in shared}
    for entry in shared:
        described = descriptor(entry)
        assert described.name == entry.name and described.description == entry.help
        for command, action in uses[entry.name]:
            assert action.option is entry and action.type == option_type(entry) or entry.kind is bool
            if (command, entry.name) not in COMMAND_DEFAULTS:
                assert action.default == _cli_default(entry), (command, entry.name)
        if entry.range is not None:
            bounds = (described.floating_point_range or described.integer_range)[0]
            assert (bounds.from_value, bounds.to_value) == (entry.range.low, entry.range.high), entry.name
        if entry.choices:
            assert described.additional_constraints == "one of: " + ", ".join(entry.choices)


def test_library_defaults_equal_the_table():
    backend = BackendOptions()
    pairs = {"backend": backend.backend, "flow.method": backend.flow, "device": backend.device,
             "precision": backend.precision, "inference.size": backend.size,
             "inference.keep_aspect": backend.keep_aspect, "inference.engine": backend.engine,
             "model.allow_random_weights": backend.allow_random_weights}
    streaming = StreamingConfig()
    pairs |= {"window.size": streaming.window_size, "window.stride": streaming.stride,
              "window.lookahead": streaming.lookahead, "mask.threshold": streaming.threshold}
    geometric = GeometricConfig()
    pairs |= {f"geometric.{name}": getattr(geometric, name) for name in ("flow_scale", "refine_radius", "fov_degrees")}
    assert {name: option(name).default for name in pairs} == pairs
    from geomotion_core.pipeline.segment import SegmentOptions
    from geomotion_core.train.config import TrainConfig

    segment, train = SegmentOptions(), TrainConfig()
    assert (segment.window, segment.stride, segment.max_queue, segment.protocol, segment.chunk_size) == tuple(
        option(name).default for name in ("window.size", "window.stride", "queue.max_frames", "chunk.protocol",
                                          "chunk.size"))
    assert (train.data.image_size, train.data.flow, train.device, train.precision) == tuple(
        option(name).default for name in ("inference.size", "flow.method", "device", "train.precision"))
    assert GEOMETRIC_PRESETS == tuple(PRESETS) and "fast" == option("geometric.preset").default


def test_choice_lists_are_those_the_code_accepts():
    from geomotion_core.eval.protocols import PROTOCOLS as SCORING
    from geomotion_core.pipeline.official import DEFAULT_CHUNK_SIZE, PROTOCOLS

    assert CHUNK_PROTOCOLS == PROTOCOLS and option("chunk.size").default == DEFAULT_CHUNK_SIZE
    assert set(EVAL_PROTOCOLS) == set(SCORING)


def test_live_options_name_a_field_of_the_engine_config():
    pytest.importorskip("rclpy", reason="needs the ROS 2 Python packages (PyPI wheels or a ROS install)")
    from geomotion_ros.params import LIVE_PARAMETERS, live_field

    assert LIVE_PARAMETERS == {"mask.threshold"}
    assert {name: live_field(name) for name in LIVE_PARAMETERS} == {"mask.threshold": "threshold"}


def test_a_table_entry_refuses_a_default_it_does_not_accept():
    with pytest.raises(ValueError, match="default x.y must be an integer in"):
        Option("x.y", 0, "a number", range=Number(int, 1, 5))
    with pytest.raises(ValueError, match="must be one of a, b"):
        Option("x.y", "c", "a word", choices=("a", "b"))


def test_the_queue_follows_the_window_unless_set():
    assert StreamingConfig(window_size=20).max_queue == 40
    assert StreamingConfig(window_size=4).max_queue == 16
    StreamingConfig(window_size=20).validate()
    with pytest.raises(ConfigError, match=r"max_queue \(12\) must hold at least one window"):
        StreamingConfig(window_size=20, max_queue=12).validate()


# ------------------------------------------------------------------ the loader


@dataclasses.dataclass(frozen=True)
class Inner:
    ratio: float = 0.5
    sizes: tuple[int, ...] = (1, 2)
    rgb: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclasses.dataclass(frozen=True)
class Outer:
    name: str
    inner: Inner = dataclasses.field(default_factory=Inner)
    items: list[Inner] = dataclasses.field(default_factory=list)
    limit: int | None = None
    enabled: bool = False
    window: int = option_field("window.size")


def test_the_loader_converts_text_and_nests():
    loaded = load(Outer, {"name": "a", "inner": {"ratio": "0.25", "sizes": [3, "4"], "rgb": [1, 2, 3]},
                          "items": [{"ratio": 1}], "limit": "none", "enabled": "True", "window": "12"})
    assert loaded == Outer("a", Inner(0.25, (3, 4), (1.0, 2.0, 3.0)), [Inner(1.0)], None, True, 12)
    assert load(Outer, {"name": "b", "limit": 7.0}).limit == 7


@pytest.mark.parametrize("data, message", [
    ({"name": "a", "colour": 1}, r"unknown thing\(s\) colour; known: name, inner, items, limit, enabled, window"),
    ({"name": "a", "inner": {"depth": 1}}, r"unknown thing\(s\) depth in inner; known: ratio, sizes, rgb"),
    ({"name": 3}, "thing name needs a value of type str, got 3"),
    ({"name": "a", "limit": 1.5}, "thing limit needs a value of type int, got 1.5"),
    ({"name": "a", "enabled": "yes"}, "thing enabled needs a value of type bool"),
    ({"name": "a", "inner": {"ratio": "nan"}}, "thing inner.ratio must be a finite number"),
    ({"name": "a", "inner": {"ratio": float("inf")}}, "thing inner.ratio must be a finite number"),
    ({"name": "a", "inner": {"rgb": [1, 2]}}, r"thing inner.rgb must have 3 entries, got 2"),
    ({"name": "a", "items": {"ratio": 1}}, "thing items must be a list"),
    ({"name": "a", "inner": None}, "thing inner must not be empty"),
    ({"name": "a", "window": 100}, r"thing window: window.size must be an integer in \[2, 64\], got 100"),
    ({"name": "a", "window": True}, "thing window needs a value of type int, got True"),
    ({}, "missing 1 required positional argument: 'name'"),
    (["name"], "things must be a mapping, got list"),
])
def test_the_loader_refuses_with_the_setting_named(data, message):
    with pytest.raises(ConfigError, match=message):
        load(Outer, data, noun="thing")


def test_every_config_loads_through_the_loader():
    from geomotion_core.model.config import GeoMotionConfig
    from geomotion_core.train.config import TrainConfig

    with pytest.raises(ConfigError, match=r"unknown geometric setting\(s\) speed"):
        GeometricConfig.from_settings({"speed": 1})
    with pytest.raises(ConfigError, match=r"unknown model config key\(s\) depth"):
        GeoMotionConfig.from_dict({"depth": 1})
    with pytest.raises(ConfigError, match=r"setting optim.lr needs a value of type float, got 'fast'"):
        TrainConfig.from_dict({"data": {"train": [{"root": "x"}]}, "optim": {"lr": "fast"}})
    config = TrainConfig.from_dict({"data": {"train": [{"root": "x", "stride": "2"}]}, "optim": {"lr": "5e-5"}})
    assert (config.data.train[0].stride, config.optim.lr) == (2, 5e-5)


# ------------------------------------------------------------------ old spellings


@pytest.mark.parametrize("argv, old, new, dest, value", [
    (["segment", "{dir}", "-o", "{out}", "--protocol", "eval"], "--protocol", "--chunk-protocol", "chunk_protocol",
     "eval"),
    (["segment", "{dir}", "-o", "{out}", "--random-weights"], "--random-weights", "--allow-random-weights",
     "allow_random_weights", True),
    (["eval", "--gt", "{dir}", "--pred", "{dir}", "--protocol", "easi3r"], "--protocol", "--eval-protocol",
     "eval_protocol", "easi3r"),
    (["bag", "eval", "{dir}", "--protocol", "davis2016"], "--protocol", "--eval-protocol", "eval_protocol",
     "davis2016"),
    (["train", "--config", "{file}", "--image-size", "56"], "--image-size", "--size", "size", 56),
    (["export", "-o", "{out}", "--random-weights"], "--random-weights", "--allow-random-weights",
     "allow_random_weights", True),
])
def test_old_spellings_still_work_and_warn_once(argv, old, new, dest, value, tmp_path, capsys):
    (tmp_path / "train.yaml").write_text("{}\n")
    places = {"{dir}": str(tmp_path), "{out}": str(tmp_path / "out"), "{file}": str(tmp_path / "train.yaml")}
    args = build_parser().parse_args([places.get(item, item) for item in argv])
    assert getattr(args, dest) == value
    err = capsys.readouterr().err
    assert err.count(f"warning: {old} is deprecated; use {new}") == 1, err
    assert len(err.strip().splitlines()) == 1


def test_new_spellings_do_not_warn(tmp_path, capsys):
    common = ["benchmark", "--benchmark", "davis2016", "--data", str(tmp_path), "-o", str(tmp_path / "out")]
    args = build_parser().parse_args([*common, "--chunk-protocol", "official", "--eval-protocol", "davis"])
    assert (args.chunk_protocol, args.eval_protocol) == ("official", "davis")
    assert build_parser().parse_args([*common, "--protocol", "official"]).chunk_protocol == "official"
    assert capsys.readouterr().err.count("deprecated") == 1


def test_segment_streaming_with_a_long_window_runs(tmp_path):
    """`--window 20` used to fail: "max_queue (16) must hold at least one window"."""
    frames = tmp_path / "frames"
    frames.mkdir()
    for index, frame in enumerate(render_clip(DemoClipConfig(frames=22)).frames):
        cv2.imwrite(str(frames / f"{index:05d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    out = tmp_path / "out"
    code = main(["segment", str(frames), "-o", str(out), "--backend", "geometric", "--device", "cpu", "--streaming",
                 "--window", "20", "--no-overlay", "--no-progress"])
    assert code == 0
    assert len(list((out / "masks").glob("*.png"))) == 22


def test_an_engine_limit_given_on_the_command_line_is_checked(tmp_path, capsys):
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "00000.png"), render_clip(DemoClipConfig(frames=2)).frames[0])
    code = main(["segment", str(frames), "-o", str(tmp_path / "out"), "--backend", "geometric", "--streaming",
                 "--window", "20", "--max-queue", "12", "--no-progress"])
    assert code == 2
    assert "max_queue (12) must hold at least one window (20 frames)" in capsys.readouterr().err


def test_docs_options_md_is_generated_from_the_table():
    assert DOCS.read_text() == render(build_parser())
    for entry in OPTIONS:
        assert f"`{entry.name}`" in DOCS.read_text()


@pytest.mark.parametrize("name, value, message", [
    ("mask.threshold", 1.0, r"mask.threshold must be a number in \[0, 1\)"),  # open bound: not expressible in ROS
    ("device", "gpu", "device must match"),
    ("inference.size", 50, ""),  # not a multiple of 14: the descriptor's step refuses it
    ("window.size", 100, ""),
])
def test_the_node_refuses_what_the_command_line_refuses(ros_context, name, value, message):
    pytest.importorskip("rclpy", reason="needs the ROS 2 Python packages (PyPI wheels or a ROS install)")
    from rclpy.parameter import Parameter

    from geomotion_ros.node import GeoMotionNode

    entry = option(name)
    assert option_type(entry) is not None
    with pytest.raises(argparse.ArgumentTypeError):
        option_type(entry)(str(value))  # the command line refuses it too
    node = GeoMotionNode(context=ros_context)
    try:
        result = node.set_parameters([Parameter(name, value=value)])[0]
        assert not result.successful
        assert re.search(message, result.reason), result.reason
        assert node.get_parameter(name).value == entry.default
    finally:
        node.destroy_node()
