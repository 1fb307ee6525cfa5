"""Latency, rate and spacing of geomotion_node's masks through DDS, the way a robot runs it.

For each mode the node runs as its own process (the `geomotion_node` console script, Fast DDS
shared-memory profile); a separate camera process publishes real DAVIS frames (played forth and
back, no cut) resized to ``--width x --height`` at ``--rate`` Hz, stamped with the wall clock, and
this process records the masks and the node's /diagnostics. Latency is mask arrival minus the
image stamp (one machine, one clock). Printed per mode: a latency histogram, p50/p95, masks/s, the
spacing of consecutive masks (median gap, max/median, share within 1.5x of the median), the mean
backend time per window and the issue-13 targets (p50 <= window time + 50 ms, p95 <= 2 x p50,
every gap within 1.5x of the median), with the load average before and after.

    .venv/bin/python -m benchmarks.bench_node                                # newest + latest, 640x480, 30 Hz
    .venv/bin/python -m benchmarks.bench_node --modes newest --plot docs/images/node_latency.png
    .venv/bin/python -m benchmarks.bench_node --seconds 20 --rate 15 -p window.size:=6
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
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from benchmarks.data import REPOSITORY, davis_root, read_frames

RUN_MAIN = "import sys; from geomotion_ros.node import main; sys.exit(main())"
MODES = {  # node parameters of each mode
    "newest": ["policy:=newest", "window.size:=8", "window.stride:=1"],  # the node's default
    "latest": ["policy:=latest", "window.size:=8", "window.stride:=4"],  # the earlier default
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--davis", type=Path, default=davis_root(), help="DAVIS 2016 folder (default: %(default)s)")
    parser.add_argument("--sequence", default="car-shadow")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--rate", type=float, default=30.0, help="camera rate in Hz")
    parser.add_argument("--seconds", type=float, default=15.0, help="how long the camera publishes (measured)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds published before measuring")
    parser.add_argument("--backend", default="geometric")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--plot", type=Path, help="write the latency histograms to this PNG")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE",
                        help="extra node parameter (repeatable)")
    parser.add_argument("--camera-only", action="store_true", help=argparse.SUPPRESS)  # the camera process
    return parser.parse_args()


def load_frames(root: Path, sequence: str, width: int, height: int) -> list[np.ndarray]:
    """The sequence forth and back (no cut from the last frame to the first)."""
    frames = list(read_frames(root, sequence, size=(width, height)))
    return frames + frames[-2:0:-1]


def run_camera(args: argparse.Namespace) -> int:
    """The camera process: wait for a subscriber, then publish at ``--rate`` for warm-up + seconds."""
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from geomotion_ros.conversions import array_to_image

    # Encoded once: the camera's per-frame cost is then only the stamp and the DDS publish.
    messages = [array_to_image(f, "rgb8") for f in load_frames(args.davis, args.sequence, args.width, args.height)]
    for msg in messages:
        msg.header.frame_id = "camera_optical"
    rclpy.init()
    camera = rclpy.create_node("bench_camera")
    publisher = camera.create_publisher(Image, "image", qos_profile_sensor_data)
    deadline = time.monotonic() + 120.0
    while publisher.get_subscription_count() == 0:
        if time.monotonic() > deadline:
            return 1
        time.sleep(0.05)
    period, sent = 1.0 / args.rate, 0
    start = time.monotonic()
    while time.monotonic() - start < args.warmup + args.seconds:
        now = time.time()
        msg = messages[sent % len(messages)]
        msg.header.stamp.sec, msg.header.stamp.nanosec = int(now), int((now % 1.0) * 1e9)
        publisher.publish(msg)
        sent += 1
        time.sleep(max(0.0, start + sent * period - time.monotonic()))
    print(f"camera: {sent} frames published", flush=True)
    camera.destroy_node()
    rclpy.try_shutdown()
    return 0


def start_node(args: argparse.Namespace, mode: str, env: dict[str, str], log: IO[str]) -> subprocess.Popen:
    script = shutil.which("geomotion_node", path=str(Path(sys.executable).parent))
    entry = [script] if script else [sys.executable, "-c", RUN_MAIN]
    parameters = [f"backend:={args.backend}", "flow.method:=dis", "stream.end_after:=0.0", "diagnostics.period:=0.5",
                  *MODES[mode], *args.param]
    command = entry + ["--ros-args", "--params-file", str(REPOSITORY / "config" / "geomotion.yaml")]
    for parameter in parameters:
        command += ["-p", parameter]
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


@dataclass
class Run:
    """What one mode produced: (stamp, arrival) per mask in the measured span, the node's last diagnostics."""

    mode: str
    masks: list[tuple[float, float]]
    diagnostics: dict[str, str]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    log: str


def run_mode(args: argparse.Namespace, mode: str, env: dict[str, str]) -> Run:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile
    from sensor_msgs.msg import Image

    load_before = os.getloadavg()
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", prefix=f"geomotion_node_{mode}_", delete=False)
    process = start_node(args, mode, env, log)
    camera = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_node", "--camera-only", *sys.argv[1:]],
                              cwd=REPOSITORY, env=env)
    rclpy.init()
    recorder = rclpy.create_node("bench_recorder")
    arrivals: list[tuple[float, float]] = []
    diagnostics: list[dict[str, str]] = []

    def on_mask(msg: Image) -> None:
        arrivals.append((msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9, time.time()))

    recorder.create_subscription(Image, "motion_mask/image", on_mask, QoSProfile(depth=50))
    recorder.create_subscription(
        DiagnosticArray, "/diagnostics",
        lambda m: diagnostics.append({kv.key: kv.value for kv in m.status[0].values}), QoSProfile(depth=10))
    executor = SingleThreadedExecutor()
    executor.add_node(recorder)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        started = time.time()
        if camera.wait(timeout=args.warmup + args.seconds + 180.0) != 0:
            log.seek(0)
            sys.exit(f"the camera or the node did not come up:\n{log.read()}")
        time.sleep(1.0)  # masks in flight
    finally:
        executor.shutdown()
        process.terminate()
        process.wait(timeout=20)
        recorder.destroy_node()
        rclpy.try_shutdown()
    first_stamp = min((stamp for stamp, _ in arrivals), default=started)
    measured_from = first_stamp + args.warmup
    masks = [(stamp, arrival) for stamp, arrival in arrivals if stamp >= measured_from]
    return Run(mode, masks, diagnostics[-1] if diagnostics else {}, load_before, os.getloadavg(), log.name)


def histogram(latencies: np.ndarray, width: int = 40) -> list[str]:
    counts, edges = np.histogram(latencies, bins=12)
    scale = width / max(1, counts.max())
    return [f"  {edges[i]:6.0f}-{edges[i + 1]:6.0f} ms {counts[i]:5d} {'#' * round(counts[i] * scale)}"
            for i in range(len(counts))]


def report(args: argparse.Namespace, run: Run) -> dict[str, float]:
    latencies = np.array([arrival - stamp for stamp, arrival in run.masks]) * 1000.0
    arrivals = np.array([arrival for _, arrival in run.masks])
    gaps = np.diff(arrivals) * 1000.0
    window_ms = float(run.diagnostics.get("window_compute_ms", "nan"))
    print(f"\n== mode {run.mode}: backend {args.backend}, {args.width}x{args.height} at {args.rate:g} Hz, "
          f"{args.seconds:g} s measured; node log {run.log}")
    print(f"load average before {run.load_before[0]:.2f}, after {run.load_after[0]:.2f} "
          f"({os.cpu_count()} CPUs)")
    if latencies.size < 3:
        print("too few masks")
        return {}
    p50, p95 = np.percentile(latencies, [50, 95])
    median_gap = float(np.median(gaps))
    within = float(np.mean((gaps <= 1.5 * median_gap) & (gaps >= median_gap / 1.5)))
    print(f"masks: {latencies.size} = {latencies.size / args.seconds:.2f} masks/s")
    print(f"latency (stamp -> mask received): p50 {p50:.0f} ms, p95 {p95:.0f} ms, max {latencies.max():.0f} ms")
    print(*histogram(latencies), sep="\n")
    print(f"spacing: median gap {median_gap:.0f} ms, max {gaps.max():.0f} ms ({gaps.max() / median_gap:.2f}x median), "
          f"{100 * within:.0f} % of gaps within 1.5x of the median")
    print(f"backend time per window (node diagnostics): {window_ms:.0f} ms")
    targets = {
        "p50 <= window time + 50 ms": p50 <= window_ms + 50.0,
        "p95 <= 2 x p50": p95 <= 2.0 * p50,
        "every gap within 1.5x of the median": within == 1.0,
    }
    print("targets: " + ", ".join(f"{name}: {'met' if met else 'MISSED'}" for name, met in targets.items()))
    print("node diagnostics: " + ", ".join(f"{k} {run.diagnostics.get(k, '?')}" for k in (
        "input_rate_hz", "processed_rate_hz", "frames_received", "frames_processed", "frames_dropped", "window")))
    return {"p50": float(p50), "p95": float(p95)}


def plot(path: Path, runs: list[Run], args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 3.5))
    for run in runs:
        latencies = np.array([arrival - stamp for stamp, arrival in run.masks]) * 1000.0
        if latencies.size:
            axis.hist(latencies, bins=30, alpha=0.6, label=f"{run.mode} (p50 {np.median(latencies):.0f} ms)")
    axis.set_xlabel("latency: image stamp -> mask received (ms)")
    axis.set_ylabel("masks")
    axis.set_title(f"geomotion_node, {args.backend} backend, {args.width}x{args.height} at {args.rate:g} Hz")
    axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    print(f"\nhistogram written to {path}")


def main() -> int:
    args = parse_args()
    env = {**os.environ, "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
           "ROS_DOMAIN_ID": os.environ.get("ROS_DOMAIN_ID", str(random.randint(101, 200))),
           "FASTDDS_DEFAULT_PROFILES_FILE": str(REPOSITORY / "config" / "fastdds_shm.xml")}
    os.environ.update(env)  # every process of the benchmark uses the same domain and profile
    if args.camera_only:
        return run_camera(args)
    runs = [run_mode(args, mode, env) for mode in args.modes]
    for run in runs:
        report(args, run)
    if args.plot:
        plot(args.plot, runs, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
