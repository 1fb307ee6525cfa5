"""The `geomotion_node` console script in its own process: DDS between processes, exit codes."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="needs the ROS 2 Python packages (PyPI wheels or a ROS install)")

from benchmarks.data import read_frames  # noqa: E402
from ros_harness import Probe, SpinThread, stamped_image, wait_for  # noqa: E402

pytestmark = pytest.mark.ros

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "config" / "fastdds_shm.xml"
RUN_MAIN = "import sys; from geomotion_ros.node import main; sys.exit(main())"


def node_command(*parameters: str) -> list[str]:
    """The installed console script (or the same entry point through this interpreter)."""
    script = shutil.which("geomotion_node", path=str(Path(sys.executable).parent))
    entry = [script] if script else [sys.executable, "-c", RUN_MAIN]
    arguments = ["--ros-args", "--params-file", str(ROOT / "config" / "geomotion.yaml")]
    for parameter in parameters:
        arguments += ["-p", parameter]
    return entry + arguments


def node_environment() -> dict[str, str]:
    """This run's domain and loopback settings, plus the package's Fast DDS profile."""
    return {**os.environ, "FASTDDS_DEFAULT_PROFILES_FILE": str(PROFILE), "PYTHONUNBUFFERED": "1"}


@pytest.mark.slow
def test_node_process_serves_640x480_frames_through_dds(ros_context, davis_root, tmp_path):
    from rclpy.executors import SingleThreadedExecutor

    log = (tmp_path / "node.log").open("w+")
    process = subprocess.Popen(
        node_command("backend:=geometric", "flow.method:=dis", "device:=cpu", "policy:=every_frame",
                     "window.size:=4", "window.stride:=2", "stream.end_after:=0.5", "input.qos.reliability:=reliable",
                     "input.qos.depth:=50"),
        env=node_environment(), stdout=log, stderr=subprocess.STDOUT,
    )
    probe = Probe(ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(probe.node)
    try:
        with SpinThread(executor):
            assert wait_for(lambda: probe.camera_info.get_subscription_count() > 0, 30.0), "node never subscribed"
            frames = read_frames(davis_root, "blackswan", 8, size=(640, 480))
            sent = []
            for i, rgb in enumerate(frames):
                sent.append(stamped_image(rgb, 3000 + i, 500))
                probe.images.publish(sent[-1])
                time.sleep(0.05)
            assert wait_for(lambda: len(probe.get("masks")) >= len(sent) and len(probe.get("poses")) >= len(sent), 30.0)
            masks = probe.get("masks")
            stamps = sorted((m.header.stamp.sec, m.header.stamp.nanosec) for m in masks)
            assert stamps == [(3000 + i, 500) for i in range(8)]
            assert all((m.width, m.height, m.encoding) == (640, 480, "mono8") for m in masks)
            assert len({np.frombuffer(m.data, np.uint8).tobytes() for m in masks}) > 1
            assert len(probe.get("poses")) == len(sent)
    finally:
        process.terminate()
        process.wait(timeout=10)
        probe.node.destroy_node()
    log.seek(0)
    output = log.read()
    assert "configured: backend geometric" in output
    assert "XML" not in output and "Traceback" not in output


@pytest.mark.slow
def test_missing_weights_make_the_node_process_exit_non_zero(ros_domain, tmp_path):
    missing = tmp_path / "no_such_model.pth"
    done = subprocess.run(
        node_command("backend:=geomotion", f"model.checkpoint:={missing}", "device:=cpu"),
        env=node_environment(), capture_output=True, text=True, timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1
    assert f"configure failed: checkpoint not found: {missing}" in output
    assert "could not start; exiting" in output
    assert "Traceback" not in output
