"""Start geomotion_node with the package's parameters and the Fast DDS large-image profile.

    ros2 launch geomotion_ros geomotion.launch.py \
        image_topic:=/camera/color/image_raw camera_info_topic:=/camera/color/camera_info

Arguments: namespace, params_file, image_topic, camera_info_topic, use_sim_time,
use_shm_profile (point FASTDDS_/FASTRTPS_DEFAULT_PROFILES_FILE at config/fastdds_shm.xml),
log_level. The node configures and activates itself (parameter ``autostart``).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

PACKAGE = "geomotion_ros"
# Fast DDS 3 (Kilted and later) reads the first, Fast DDS 2 (Humble, Jazzy) the second.
PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare(PACKAGE)
    image_topic = LaunchConfiguration("image_topic")
    arguments = [
        DeclareLaunchArgument("namespace", default_value="geomotion",
                              description="namespace of the node and its topics"),
        DeclareLaunchArgument("params_file", default_value=PathJoinSubstitution([share, "config", "geomotion.yaml"]),
                              description="YAML parameters file (/**: ros__parameters:)"),
        DeclareLaunchArgument("image_topic", default_value="/camera/image_raw", description="input sensor_msgs/Image"),
        DeclareLaunchArgument("camera_info_topic", default_value="/camera/camera_info",
                              description="input sensor_msgs/CameraInfo"),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="true when replaying a bag with --clock"),
        DeclareLaunchArgument("use_shm_profile", default_value="true",
                              description="load the Fast DDS shared-memory profile for large images"),
        DeclareLaunchArgument("log_level", default_value="info", description="node log level"),
    ]
    profile = PathJoinSubstitution([share, "config", "fastdds_shm.xml"])
    environment = [
        SetEnvironmentVariable(variable, profile, condition=IfCondition(LaunchConfiguration("use_shm_profile")))
        for variable in PROFILE_VARIABLES
    ]
    node = Node(
        package=PACKAGE,
        executable="geomotion_node",
        name="geomotion_node",
        namespace=LaunchConfiguration("namespace"),
        parameters=[
            LaunchConfiguration("params_file"),
            {"use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)},
        ],
        remappings=[
            ("image", image_topic),
            ("image/compressed", [image_topic, "/compressed"]),
            ("camera_info", LaunchConfiguration("camera_info_topic")),
        ],
        arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
        output="screen",
        emulate_tty=True,
    )
    return LaunchDescription([*arguments, *environment, node])
