# SPDX-License-Identifier: Apache-2.0
"""Start geomotion_node with the package's parameters and, for this node only, the Fast DDS profile.

    ros2 launch geomotion_ros geomotion.launch.py \
        image_topic:=/camera/color/image_raw camera_info_topic:=/camera/color/camera_info

Arguments: namespace, params_file, image_topic, camera_info_topic, use_sim_time, backend (empty:
the params file's), autostart, odom_frame, use_shm_profile, log_level. The shared-memory profile is
given to the started node only (``additional_env``), and never when the environment already names
a profile: the user's profile wins and other processes of a parent launch are left alone. The
camera's process needs the profile too (docs/ros.md shows how).
"""
import os

from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

PACKAGE = "geomotion_ros"
# Fast DDS 3 (Kilted and later) reads the first, Fast DDS 2 (Humble, Jazzy) the second.
PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
TRUE = ("true", "1", "yes", "on")


def profile_environment(use_profile: bool, profile: str, environment: dict[str, str]) -> dict[str, str]:
    """The variables to add to the node's environment: the profile, unless disabled or already set."""
    if not use_profile or any(environment.get(variable) for variable in PROFILE_VARIABLES):
        return {}
    return {variable: profile for variable in PROFILE_VARIABLES}


def node_parameters(context: LaunchContext) -> list:
    """The params file, then the launch arguments that override it."""
    value = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    overrides = {
        "use_sim_time": value("use_sim_time").lower() in TRUE,
        "autostart": value("autostart").lower() in TRUE,
    }
    if value("backend"):
        overrides["backend"] = value("backend")
    if value("odom_frame"):
        overrides["frames.odom"] = value("odom_frame")
    return [value("params_file"), overrides]


def start_node(context: LaunchContext) -> list[Node]:
    value = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    profile = PathJoinSubstitution([FindPackageShare(PACKAGE), "config", "fastdds_shm.xml"]).perform(context)
    environment = profile_environment(value("use_shm_profile").lower() in TRUE, profile, dict(os.environ))
    return [Node(
        package=PACKAGE,
        executable="geomotion_node",
        name="geomotion_node",
        namespace=value("namespace"),
        parameters=node_parameters(context),
        # the node subscribes <resolved image>/compressed itself (image_transport's naming)
        remappings=[("image", value("image_topic")), ("camera_info", value("camera_info_topic"))],
        arguments=["--ros-args", "--log-level", value("log_level")],
        additional_env=environment,
        output="screen",
        emulate_tty=True,
    )]


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare(PACKAGE)
    arguments = [
        DeclareLaunchArgument("namespace", default_value="geomotion",
                              description="namespace of the node and its topics (one per camera)"),
        DeclareLaunchArgument("params_file", default_value=PathJoinSubstitution([share, "config", "geomotion.yaml"]),
                              description="YAML parameters file (/**: ros__parameters:)"),
        DeclareLaunchArgument("image_topic", default_value="/camera/image_raw", description="input sensor_msgs/Image"),
        DeclareLaunchArgument("camera_info_topic", default_value="/camera/camera_info",
                              description="input sensor_msgs/CameraInfo"),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="true when replaying a bag with --clock"),
        DeclareLaunchArgument("backend", default_value="", description="geomotion | geometric; empty: params file"),
        DeclareLaunchArgument("autostart", default_value="true",
                              description="configure and activate at start (false: a lifecycle manager does)"),
        DeclareLaunchArgument("odom_frame", default_value="",
                              description="frames.odom (distinct per camera); empty: params file"),
        DeclareLaunchArgument("use_shm_profile", default_value="true",
                              description="give the node the Fast DDS shared-memory profile (unless one is set)"),
        DeclareLaunchArgument("log_level", default_value="info", description="node log level"),
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=start_node)])
