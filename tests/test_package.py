"""The package installs, imports with and without ROS, and its CLI answers."""
from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import zipfile
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from geomotion_core.cli import ENTRY_POINT_GROUP, build_parser

REPO = Path(__file__).resolve().parents[1]
ROS_MODULES = ("rclpy", "sensor_msgs", "geometry_msgs", "nav_msgs", "std_msgs", "diagnostic_msgs",
               "rosidl_runtime_py", "cv_bridge", "message_filters", "launch", "launch_ros")


def _run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_core_imports_without_ros():
    """Every geomotion_core module imports while any ROS import is made to fail."""
    result = _run_python(f"""
        import importlib, pkgutil, sys
        BLOCKED = {ROS_MODULES!r}
        class BlockRos:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"ROS import blocked: {{name}}")
                return None
        sys.meta_path.insert(0, BlockRos())
        import geomotion_core
        names = [m.name for m in pkgutil.walk_packages(geomotion_core.__path__, "geomotion_core.")
                 if not m.name.endswith("__main__")]
        for name in names:
            importlib.import_module(name)
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        assert not leaked, leaked
        print(len(names))
    """)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[-1]) > 5


def test_ros_package_imports_with_ros_wheels():
    """Every geomotion_ros module imports with the ROS 2 client library present."""
    pytest.importorskip("rclpy", reason="needs the PyPI ROS 2 wheels (pip install '.[ros]')")
    result = _run_python("""
        import importlib, pkgutil
        import geomotion_ros
        names = [m.name for m in pkgutil.walk_packages(geomotion_ros.__path__, "geomotion_ros.")]
        for name in names:
            importlib.import_module(name)
        import rclpy
        print(len(names))
    """)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[-1]) >= 1


def test_every_cli_command_is_installed_and_loads():
    """Each declared sub-command's module imports (none is listed as unavailable)."""
    declared = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert {"doctor", "segment", "weights", "eval", "benchmark", "train", "bag", "demo"} <= declared
    help_text = build_parser().format_help()
    assert "unavailable" not in help_text, help_text
    for name in declared:
        assert f"    {name} " in help_text


@pytest.mark.parametrize("command", ["doctor", "segment", "weights", "eval", "benchmark", "train",
                                     "bag", "demo"])
def test_cli_help(command):
    result = subprocess.run([sys.executable, "-m", "geomotion_core.cli", command, "--help"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"usage: geomotion {command}" in result.stdout


def test_doctor_reports_torch_ros_and_weight_paths(tmp_path):
    result = subprocess.run([sys.executable, "-m", "geomotion_core.cli", "doctor"], cwd=REPO,
                            capture_output=True, text=True, timeout=120,
                            env={**__import__("os").environ, "GEOMOTION_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    for word in ("torch", "devices", "sam2", "rclpy", "cv_bridge", "message_filters", "launch"):
        assert word in result.stdout
    assert str(tmp_path / "best_model.pth") in result.stdout
    (tmp_path / "best_model.pth").write_bytes(b"x")
    again = subprocess.run([sys.executable, "-m", "geomotion_core.cli", "doctor"], cwd=REPO,
                           capture_output=True, text=True, timeout=120,
                           env={**__import__("os").environ, "GEOMOTION_HOME": str(tmp_path)})
    assert f"found {tmp_path / 'best_model.pth'}" in again.stdout


def test_missing_argument_is_an_error_without_traceback():
    result = subprocess.run([sys.executable, "-m", "geomotion_core.cli", "segment"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def _copy_sources(destination: Path) -> None:
    for name in ("setup.py", "setup.cfg", "package.xml"):
        shutil.copy2(REPO / name, destination / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("resource", "launch", "config", "geomotion_core", "geomotion_ros"):
        shutil.copytree(REPO / name, destination / name, ignore=ignore)


@pytest.mark.slow
def test_wheel_installs_launch_and_config_into_the_package_share(tmp_path):
    """What pip and colcon install: launch/ and config/ under share/geomotion_ros, ament marker."""
    source = tmp_path / "src"
    source.mkdir()
    _copy_sources(source)
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                             "-q", "-w", str(tmp_path / "dist"), str(source)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    wheel = next((tmp_path / "dist").glob("geomotion_ros-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    data = "geomotion_ros-0.1.0.data/data/"
    assert f"{data}share/ament_index/resource_index/packages/geomotion_ros" in names
    assert f"{data}share/geomotion_ros/package.xml" in names
    assert f"{data}share/geomotion_ros/launch/geomotion.launch.py" in names
    assert f"{data}share/geomotion_ros/config/geomotion.yaml" in names
    assert any(n.startswith("geomotion_core/model/") for n in names)
    assert any(n.startswith("geomotion_ros/") for n in names)
