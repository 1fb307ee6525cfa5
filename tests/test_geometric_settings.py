"""Settings of the weight-free backend from Python, the command line and BackendOptions."""
from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from geomotion_core.backend import BackendOptions
from geomotion_core.backends import build_backend
from geomotion_core.cli import main
from geomotion_core.demo.clip import DemoClipConfig, render_clip, write_clip
from geomotion_core.errors import ConfigError
from geomotion_core.geometric import GeometricConfig


def test_settings_from_strings_take_each_field_type() -> None:
    config = GeometricConfig.from_settings({"flow_scale": "0.75", "temporal_radius": "1", "flow_preset": "fast",
                                            "grid_points": 400.0})
    assert (config.flow_scale, config.temporal_radius, config.flow_preset, config.grid_points) == (0.75, 1, "fast", 400)
    assert GeometricConfig.from_settings({}) == GeometricConfig()


@pytest.mark.parametrize("settings, message", [
    ({"flow_speed": "1"}, "unknown geometric setting(s) flow_speed"),
    ({"flow_scale": "fast"}, "flow_scale needs a value of type float"),
    ({"temporal_radius": "1.5"}, "temporal_radius needs a value of type int"),
    ({"flow_scale": "2"}, "flow_scale is out of range"),
    ({"parallax_angle": "90"}, "parallax_angle is out of range"),
    ({"parallax_support": "0"}, "parallax_support is out of range"),
    ({"parallax_residual": "-1"}, "parallax_residual must be a positive number"),
    ({"local_radius": "-1"}, "local_radius must be >= 0"),
    ({"border_flow_ratio": "-0.5"}, "border_flow_ratio must be >= 0"),
    ({"border_sectors": "maybe"}, "border_sectors needs a value of type bool"),
    ({"long_baseline": "0"}, "long_baseline is out of range"),
    ({"long_baseline_cap": "0"}, "long_baseline_cap must be a positive number"),
    ({"dominant_ratio": "2"}, "dominant_ratio is out of range"),
])
def test_bad_settings_are_refused_with_their_name(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        GeometricConfig.from_settings(settings)


def test_backend_options_reach_the_geometric_backend() -> None:
    settings = {"flow_scale": 0.25, "temporal_radius": 0}
    assert all(getattr(GeometricConfig(), name) != value for name, value in settings.items())  # none is a default
    backend = build_backend(BackendOptions(backend="geometric", geometric=settings))
    assert (backend.config.flow_scale, backend.config.temporal_radius) == (0.25, 0)


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> Path:
    """Five 854x480 frames of the demo clip (textured world, moving camera, two moving objects)."""
    frames_dir, _ = write_clip(render_clip(DemoClipConfig(frames=5, width=854, height=480)),
                               tmp_path_factory.mktemp("clip"))
    return frames_dir


@pytest.mark.parametrize("setting", ["flow_scale=0.25", "score_blur=0"])  # defaults 0.5 and 1.5
def test_segment_command_line_settings_change_the_work(tmp_path: Path, frames: Path, setting: str) -> None:
    common = ["--backend", "geometric", "--no-overlay", "--no-progress", "--streaming", "--window", "5"]
    default, changed = tmp_path / "default", tmp_path / "changed"
    assert main(["segment", str(frames), "-o", str(default), *common]) == 0
    assert main(["segment", str(frames), "-o", str(changed), *common, "--geometric", setting]) == 0
    maps = [sorted((folder / "probability").glob("*.png")) for folder in (default, changed)]
    assert [path.name for path in maps[0]] == [path.name for path in maps[1]] and len(maps[0]) == 5
    middle = [cv2.imread(str(paths[2]), cv2.IMREAD_GRAYSCALE) for paths in maps]
    assert middle[0].shape == middle[1].shape == (480, 854)
    assert (middle[0] != middle[1]).any()  # the setting really changed the computation


def test_segment_command_line_rejects_a_malformed_setting(tmp_path: Path, frames: Path, capsys) -> None:
    assert main(["segment", str(frames), "-o", str(tmp_path / "out"), "--backend", "geometric", "--geometric", "flow_scale"]) == 2
    assert "--geometric needs NAME=VALUE" in capsys.readouterr().err


def test_presets_set_the_flow_and_the_other_settings_apply_on_top() -> None:
    accurate = GeometricConfig.from_settings({"preset": "accurate", "lookahead": "1"})
    flow = (accurate.flow_patch_stride, accurate.flow_descent_iterations, accurate.flow_refinement_iterations)
    assert flow == (None, None, None)  # DIS medium's own: stride 3, 25 descent, 5 refinement iterations
    assert accurate.dis_config().create().getPatchStride() == 3
    assert accurate.lookahead == 1
    fast = GeometricConfig.from_settings({"preset": "fast"})
    assert fast == GeometricConfig() and (fast.flow_patch_stride, fast.flow_descent_iterations) == (4, 16)
    overridden = GeometricConfig.from_settings({"preset": "accurate", "flow_patch_stride": "4"})
    assert overridden.flow_patch_stride == 4
    with pytest.raises(ConfigError, match="unknown geometric preset 'quick'"):
        GeometricConfig.from_settings({"preset": "quick"})
