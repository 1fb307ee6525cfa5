"""Throughput and latency of geomotion_node through DDS, the way a robot runs it.

The node runs as its own process (the `geomotion_node` console script, Fast DDS shared-memory
profile, ``policy: latest``); this process plays a camera: it publishes real DAVIS frames resized to
``--width x --height`` at ``--rate`` Hz, stamped with the wall clock, and records the masks and the
node's /diagnostics. Latency is mask arrival minus the image stamp (one machine, one clock).

    .venv/bin/python benchmarks/bench_node.py                       # geometric backend, 640x480
    .venv/bin/python benchmarks/bench_node.py --seconds 20 --rate 15 -p window.size:=6
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DAVIS = ROOT.parent / "shared" / "data" / "DAVIS2016"
RUN_MAIN = "import sys; from geomotion_ros.node import main; sys.exit(main())"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--davis", type=Path, default=Path(os.environ.get("GEOMOTION_DAVIS", DEFAULT_DAVIS)),
                        help="DAVIS 2016 root (default: ../shared/data/DAVIS2016 or $GEOMOTION_DAVIS)")
    parser.add_argument("--sequence", default="car-shadow")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--rate", type=float, default=30.0, help="camera rate in Hz")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long the camera publishes")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds published before measuring")
    parser.add_argument("--backend", default="geometric")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE",
                        help="extra node parameter (repeatable)")
    return parser.parse_args()


def load_frames(root: Path, sequence: str, width: int, height: int) -> list[np.ndarray]:
    paths = sorted((root / "JPEGImages" / "480p" / sequence).glob("*.jpg"))
    if not paths:
        sys.exit(f"no frames under {root / 'JPEGImages' / '480p' / sequence} (pass --davis)")
    return [cv2.cvtColor(cv2.resize(cv2.imread(str(p)), (width, height), interpolation=cv2.INTER_AREA),
                         cv2.COLOR_BGR2RGB) for p in paths]


def start_node(args: argparse.Namespace, env: dict[str, str], log: IO[str]) -> subprocess.Popen:
    script = shutil.which("geomotion_node", path=str(Path(sys.executable).parent))
    entry = [script] if script else [sys.executable, "-c", RUN_MAIN]
    parameters = [f"backend:={args.backend}", "flow.method:=dis", "policy:=latest", "stream.end_after:=0.0",
                  "diagnostics.period:=0.5", *args.param]
    command = entry + ["--ros-args", "--params-file", str(ROOT / "config" / "geomotion.yaml")]
    for parameter in parameters:
        command += ["-p", parameter]
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def main() -> int:
    args = parse_args()
    env = {**os.environ, "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
           "ROS_DOMAIN_ID": os.environ.get("ROS_DOMAIN_ID", str(random.randint(101, 200))),
           "FASTDDS_DEFAULT_PROFILES_FILE": str(ROOT / "config" / "fastdds_shm.xml")}
    os.environ.update(env)  # this process's participant uses the same domain and profile

    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from geomotion_ros.conversions import array_to_image

    # Encoded once: the camera's per-frame cost is then only the stamp and the DDS publish.
    messages = [array_to_image(frame, "rgb8") for frame in load_frames(args.davis, args.sequence, args.width, args.height)]
    for msg in messages:
        msg.header.frame_id = "camera_optical"
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", prefix="geomotion_node_", delete=False)
    process = start_node(args, env, log)
    rclpy.init()
    camera = rclpy.create_node("bench_camera")
    arrivals: list[tuple[float, float]] = []  # (stamp, arrival) of each mask
    diagnostics: list[dict[str, str]] = []
    def on_mask(msg: Image) -> None:
        arrivals.append((msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9, time.time()))

    camera.create_subscription(Image, "motion_mask/image", on_mask, QoSProfile(depth=50))
    camera.create_subscription(
        DiagnosticArray, "/diagnostics",
        lambda m: diagnostics.append({kv.key: kv.value for kv in m.status[0].values}), QoSProfile(depth=10))
    publisher = camera.create_publisher(Image, "image", qos_profile_sensor_data)
    executor = SingleThreadedExecutor()
    executor.add_node(camera)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        deadline = time.monotonic() + 120.0
        while publisher.get_subscription_count() == 0:
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                sys.exit(f"the node did not come up:\n{log.read()}")
            time.sleep(0.1)
        period, sent, measured_from = 1.0 / args.rate, 0, None
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < args.warmup + args.seconds:
            if measured_from is None and elapsed >= args.warmup:
                measured_from = time.time()
            now = time.time()
            msg = messages[sent % len(messages)]
            msg.header.stamp.sec, msg.header.stamp.nanosec = int(now), int((now % 1.0) * 1e9)
            publisher.publish(msg)
            sent += 1
            time.sleep(max(0.0, start + sent * period - time.monotonic()))
        time.sleep(1.0)
    finally:
        executor.shutdown()
        process.terminate()
        process.wait(timeout=20)
        camera.destroy_node()
        rclpy.try_shutdown()

    window = [(stamp, arrival) for stamp, arrival in arrivals if stamp >= measured_from]
    latencies = np.array([arrival - stamp for stamp, arrival in window]) * 1000.0
    last = diagnostics[-1] if diagnostics else {}
    print(f"node: backend {args.backend}, {args.width}x{args.height} at {args.rate:g} Hz for {args.seconds:g} s "
          f"(+{args.warmup:g} s warm-up); node log: {log.name}")
    print(f"processed: {len(window)} frames = {len(window) / args.seconds:.2f} frames/s "
          f"({sent} published in total)")
    if latencies.size:
        p50, p95 = np.percentile(latencies, [50, 95])
        print(f"latency (stamp -> mask received): p50 {p50:.0f} ms, p95 {p95:.0f} ms, max {latencies.max():.0f} ms")
    print("node diagnostics: " + ", ".join(f"{k} {last.get(k, '?')}" for k in (
        "input_rate_hz", "processed_rate_hz", "latency_p50_ms", "latency_p95_ms", "frames_received",
        "frames_processed", "frames_dropped", "window")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
