"""launch/geomotion.launch.py builds its LaunchDescription (only where ROS 2 `launch` is installed).

`launch` and `launch_ros` are not on PyPI, so in the venv this test is skipped (not coverage);
on a machine with ROS 2 from apt it runs under `colcon test` and `pytest`.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("launch_ros", reason="ROS 2 launch/launch_ros are not installable from PyPI (apt ROS only)")

from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable  # noqa: E402

LAUNCH_FILE = Path(__file__).resolve().parents[1] / "launch" / "geomotion.launch.py"


def load_module():
    spec = importlib.util.spec_from_file_location("geomotion_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_launch_description_declares_arguments_and_sets_no_global_environment():
    description = load_module().generate_launch_description()
    arguments = {a.name: a.default_value for a in description.entities if isinstance(a, DeclareLaunchArgument)}
    assert {"namespace", "params_file", "image_topic", "camera_info_topic", "use_sim_time", "backend", "autostart",
            "odom_frame", "use_shm_profile", "log_level"} <= arguments.keys()
    assert not any(isinstance(e, SetEnvironmentVariable) for e in description.entities)  # never for a parent launch
    assert any(isinstance(e, OpaqueFunction) for e in description.entities)


def test_the_profile_goes_to_the_node_only_and_never_replaces_the_users():
    module = load_module()
    both = set(module.PROFILE_VARIABLES)
    assert set(module.profile_environment(True, "/p.xml", {})) == both
    assert module.profile_environment(True, "/p.xml", {"FASTRTPS_DEFAULT_PROFILES_FILE": "/mine.xml"}) == {}
    assert module.profile_environment(False, "/p.xml", {}) == {}

