"""launch/geomotion.launch.py builds its LaunchDescription (only where ROS 2 `launch` is installed).

`launch` and `launch_ros` are not on PyPI, so in the venv this test is skipped (not coverage);
on a machine with ROS 2 from apt it runs under `colcon test` and `pytest`.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("launch_ros", reason="ROS 2 launch/launch_ros are not installable from PyPI (apt ROS only)")

from launch import LaunchContext, LaunchDescription  # noqa: E402
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable  # noqa: E402
from launch.utilities import normalize_to_list_of_substitutions, perform_substitutions  # noqa: E402
from launch_ros.actions import Node  # noqa: E402

LAUNCH_FILE = Path(__file__).resolve().parents[1] / "launch" / "geomotion.launch.py"


def load_description() -> LaunchDescription:
    spec = importlib.util.spec_from_file_location("geomotion_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_launch_description()


def text(value) -> str:
    """A plain string, or the text of literal substitutions."""
    if isinstance(value, str):
        return value
    return perform_substitutions(LaunchContext(), normalize_to_list_of_substitutions(value))


def test_launch_description_declares_arguments_profile_and_node():
    description = load_description()
    arguments = {a.name: a.default_value for a in description.entities if isinstance(a, DeclareLaunchArgument)}
    assert {"namespace", "params_file", "image_topic", "camera_info_topic", "use_sim_time", "use_shm_profile",
            "log_level"} <= arguments.keys()
    variables = {text(e.name) for e in description.entities if isinstance(e, SetEnvironmentVariable)}
    assert variables == {"FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE"}
    nodes = [e for e in description.entities if isinstance(e, Node)]
    assert len(nodes) == 1
    assert (text(nodes[0].node_package), text(nodes[0].node_executable)) == ("geomotion_ros", "geomotion_node")
