# SPDX-License-Identifier: Apache-2.0
"""ament_python package `geomotion_ros`: installs `geomotion_core` and `geomotion_ros`."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "geomotion_ros"

CORE_REQUIRES = [
    "torch>=2.4",
    "torchvision>=0.19",
    "numpy>=1.24",
    "opencv-python-headless>=4.8",
    "pillow>=10",
    "safetensors>=0.4",
    "sam2>=1.1,<1.2",  # geomotion_core.refine.sam2_contract.SAM2_REQUIREMENT (tested)
    "tqdm>=4.66",
    "pyyaml>=6",
    "scipy>=1.11",
    "matplotlib>=3.8",
    "rosbags>=0.11.9",
    "tensorboard>=2.16",
]

# PyPI ROS 2 (Kilted) wheels, for machines without a ROS install. Never install these on a
# robot that has ROS from apt: they would shadow the system rclpy.
ROS_WHEELS = [
    "ros-rclpy==9.1.2",
    "ros-rmw-fastrtps-cpp==9.3.3",
    "ros-sensor-msgs==5.5.1",
    "ros-std-msgs==5.5.1",
    "ros-std-srvs==5.5.1",
    "ros-geometry-msgs==5.5.1",
    "ros-nav-msgs==5.5.1",
    "ros-diagnostic-msgs==5.5.1",
    "ros-visualization-msgs==5.5.1",
    "ros-lifecycle-msgs==2.3.0",
]

# ONNX export and the onnxruntime engine (`geomotion export`, engine onnxruntime). TensorRT
# (engine tensorrt) needs a CUDA GPU: install `tensorrt` yourself on such a machine.
EXPORT_REQUIRES = ["onnx>=1.17", "onnxscript>=0.5", "onnxruntime>=1.20"]

DEV_REQUIRES = ["pytest>=8", "pytest-timeout>=2.3", *EXPORT_REQUIRES]

# Sub-commands of the `geomotion` CLI: each module's `register(subparsers)` adds one parser.
COMMANDS = [
    "doctor = geomotion_core.cli.doctor:register",
    "segment = geomotion_core.cli.segment:register",
    "weights = geomotion_core.cli.weights:register",
    "eval = geomotion_core.cli.evaluate:register",
    "benchmark = geomotion_core.cli.benchmark:register",
    "train = geomotion_core.cli.train:register",
    "bag = geomotion_ros.bag.cli:register",
    "demo = geomotion_core.cli.demo:register",
    "export = geomotion_core.cli.export:register",
]

setup(
    name=PACKAGE,
    version="0.1.0",
    description="GeoMotion motion segmentation and camera motion for ROS 2",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["geomotion_core", "geomotion_core.*", "geomotion_ros", "geomotion_ros.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml") + glob("config/*.json")),
    ],
    install_requires=CORE_REQUIRES,
    extras_require={"ros": ROS_WHEELS, "export": EXPORT_REQUIRES, "dev": DEV_REQUIRES},
    zip_safe=True,
    entry_points={
        "console_scripts": [
            "geomotion = geomotion_core.cli:main",
            "geomotion_node = geomotion_ros.node:main",
        ],
        "geomotion.commands": COMMANDS,
    },
)
