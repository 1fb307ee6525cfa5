"""Throughput of the streaming engine and its own overhead next to the backend's.

    .venv/bin/python -m benchmarks.bench_streaming                      # geometric backend, 640x480
    .venv/bin/python -m benchmarks.bench_streaming --live-rate 30       # + a 30 Hz camera, newest policy
    .venv/bin/python -m benchmarks.bench_streaming --live-rate 30 --live-policy latest --stride 4
    .venv/bin/python -m benchmarks.bench_streaming --backend geomotion --model-config CONFIG.json \
        --random-weights --size 140 --torch-threads 1

A DAVIS 2016 sequence (found as ``benchmarks.data`` says) is resized to the requested size and streamed through ``StreamingSegmenter``:

* offline (``every_frame``): frames/s over the whole sequence, time per frame in the backend and in
  the engine itself (admission copies, pose chaining, results);
* live (``--live-rate``): a producer thread submits frames at the camera rate while a worker runs
  the ``--live-policy`` (newest: stride 1, or latest); processed frames/s, drops,
  submission-to-result latency and the spacing of consecutive results.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import threading
import time

import numpy as np

from benchmarks.data import read_frames, require_davis
from benchmarks.random_weights import random_weights_home
from geomotion_core.backend import BACKENDS, FLOW_METHODS, PRECISIONS, BackendOptions, MotionBackend
from geomotion_core.backends import build_backend
from geomotion_core.streaming import StreamingConfig, StreamingSegmenter


def load_sequence(name: str, width: int, height: int, limit: int) -> list[np.ndarray]:
    """RGB frames of one DAVIS 2016 sequence (at most ``limit``), resized to ``width`` x ``height``."""
    frames = read_frames(require_davis(), name, size=(width, height))
    return list(frames[:limit])


def bench_offline(backend: MotionBackend, frames: list[np.ndarray], config: StreamingConfig) -> None:
    engine = StreamingSegmenter(backend, config)
    start, cpu_start = time.perf_counter(), time.process_time()
    results = list(engine.stream((frame, index / 30.0) for index, frame in enumerate(frames)))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    stats = engine.stats
    count = len(results)
    print(f"offline every_frame: {count} frames in {elapsed:.2f} s = {count / elapsed:.1f} frames/s "
          f"({stats.windows} windows)")
    # CPU time does not count the time other processes hold the cores: on dedicated cores the
    # wall time per frame is at most this.
    print(f"  CPU time {1e3 * cpu / count:.1f} ms per frame = {count / cpu:.1f} frames/s of CPU time")
    print(f"  per frame: backend {1e3 * stats.backend_s / count:.2f} ms, engine {1e3 * stats.engine_s / count:.3f} ms "
          f"({100 * stats.engine_s / (stats.backend_s + stats.engine_s):.2f} % of the work)")
    stages = {}
    for result in results:
        for stage, seconds in result.timings.items():
            stages[stage] = stages.get(stage, 0.0) + seconds
    backend_stages = {stage: seconds for stage, seconds in stages.items() if stage not in ("latency", "backend")}
    print("  backend stages per frame: " + ", ".join(
        f"{stage} {1e3 * seconds / count:.2f} ms" for stage, seconds in backend_stages.items()
    ))


def bench_live(backend: MotionBackend, frames: list[np.ndarray], config: StreamingConfig, rate: float, seconds: float) -> None:
    engine = StreamingSegmenter(backend, config)
    results = []
    finished: list[float] = []  # when each result was handed over
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            if engine.wait_ready(timeout=0.05):
                batch = engine.process_pending()
                results.extend(batch)
                finished.extend([time.perf_counter()] * len(batch))

    thread = threading.Thread(target=worker)
    thread.start()
    period = 1.0 / rate
    start = time.perf_counter()
    index = 0
    max_depth = 0
    while time.perf_counter() - start < seconds:
        engine.submit(frames[index % len(frames)], index * period)
        max_depth = max(max_depth, engine.stats.queue_depth)
        index += 1
        time.sleep(max(0.0, start + index * period - time.perf_counter()))
    stop.set()
    thread.join()
    elapsed = time.perf_counter() - start
    stats = engine.stats
    latency = np.array([result.timings["latency"] for result in results]) * 1e3
    print(f"live {config.policy} @ {rate:.0f} Hz for {elapsed:.1f} s: {stats.submitted} in, {stats.processed} processed "
          f"({stats.processed / elapsed:.1f} frames/s), {stats.dropped_stale} dropped by policy, "
          f"max queue {max_depth}/{config.max_queue}")
    gaps = np.diff(finished) * 1e3
    print(f"  submission-to-result latency p50 {np.percentile(latency, 50):.0f} ms, "
          f"p95 {np.percentile(latency, 95):.0f} ms; gap between results: median {np.median(gaps):.0f} ms, "
          f"max {gaps.max():.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequence", default="camel", help="DAVIS 2016 sequence (default: %(default)s)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--frames", type=int, default=90, help="frames to stream (default: %(default)s)")
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--centred", action="store_true", help="finalise frames mid-window (causal=False)")
    parser.add_argument("--backend", choices=BACKENDS, default="geometric")
    parser.add_argument("--flow", choices=FLOW_METHODS, default="dis")
    parser.add_argument("--model-config", help="JSON with a \"model\" object (geomotion backend)")
    parser.add_argument("--checkpoint", help="network weights (geomotion backend)")
    parser.add_argument("--random-weights", action="store_true",
                        help="geomotion without a checkpoint (and, with --flow raft, random RAFT weights)")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32", help="geomotion backend precision")
    parser.add_argument("--size", type=int, default=518, help="network input size (geomotion backend)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--torch-threads", type=int, default=0,
                        help="torch.set_num_threads for the network (0: torch's default; 1 helps on a busy CPU)")
    parser.add_argument("--live-rate", type=float, default=0.0, help="also simulate a camera at this rate (Hz)")
    parser.add_argument("--live-seconds", type=float, default=10.0)
    parser.add_argument("--live-policy", choices=("newest", "latest"), default="newest")
    args = parser.parse_args()

    if args.torch_threads > 0:
        import torch

        torch.set_num_threads(args.torch_threads)
    frames = load_sequence(args.sequence, args.width, args.height, args.frames)
    random_raft = args.random_weights and args.backend == "geomotion" and args.flow == "raft"
    with random_weights_home(("raft",)) if random_raft else contextlib.nullcontext():
        backend = build_backend(BackendOptions(
            backend=args.backend, checkpoint=args.checkpoint, model_config=args.model_config, flow=args.flow,
            device=args.device, precision=args.precision, size=args.size, allow_random_weights=args.random_weights,
        ))
    print(f"{args.backend} backend, {len(frames)} frames of {args.width}x{args.height} ({args.sequence}), "
          f"window {args.window}, stride {args.stride}, {'centred' if args.centred else 'causal'}, "
          f"{os.cpu_count()} CPUs")
    backend.predict_window(np.stack(frames[: args.window]))  # warm-up (lazy initialisation, allocations)
    backend.reset()
    config = StreamingConfig(window_size=args.window, stride=args.stride, causal=not args.centred)
    bench_offline(backend, frames, config)
    if args.live_rate > 0:
        backend.reset()
        stride = 1 if args.live_policy == "newest" else args.stride
        live = StreamingConfig(window_size=args.window, stride=stride, causal=not args.centred, policy=args.live_policy)
        bench_live(backend, frames, live, args.live_rate, args.live_seconds)


if __name__ == "__main__":
    main()
