"""Accuracy and speed of the weight-free geometric backend on DAVIS-layout sequences.

For each sequence: J and F (official DAVIS definitions, every frame, 854x480) of the backend's
masks, and frames/s of the whole per-frame work (grayscale, two DIS flows, fits, scores, masks,
pose) at 854x480 and 640x480, next to the time of the two DIS flows alone, measured in the same run.

    .venv/bin/python -m benchmarks.bench_geometric [--split tune|validate|all|none] [--data PATH]
                                                   [--root PATH ...] [--sequences a,b]
                                                   [--set NAME=VALUE ...] [--speed-frames N] [--rounds K]

``--split`` picks the tune / validate sequences of the data folder (``benchmarks.data``; tune =
``DAVIS2016/ImageSets/dev.txt`` + ``DAVIS2016_extra/ImageSets/tune.txt``, validate =
``DAVIS2016_extra/ImageSets/validate.txt``); every ``--root`` adds all sequences of another
DAVIS-layout folder as its own group. ``--sequences`` keeps only the named ones. The table has one
row per sequence and the mean of every group. ``--set`` overrides any GeometricConfig field (e.g.
``--set preset=fast``); ``--split none`` times only, ``--speed-frames 0`` scores only.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.data import DAVIS, data_root, read_frames, read_masks
from geomotion_core.cli.segment import parse_settings
from geomotion_core.eval.datasets import ALL_FOLDERS, benchmark_sequences
from geomotion_core.eval.metrics import batch_scores
from geomotion_core.flow.dis import DISFlow
from geomotion_core.geometric import GeometricBackend, GeometricConfig

SEQUENCES = ("blackswan", "camel", "car-shadow", "libby")
SPLITS = {  # split -> (root below the data folder, sequence list inside it)
    "tune": (("DAVIS2016", "ImageSets/dev.txt"), ("DAVIS2016_extra", "ImageSets/tune.txt")),
    "validate": (("DAVIS2016_extra", "ImageSets/validate.txt"),),
}


def split_sequences(data: Path, split: str) -> list[tuple[str, Path, str]]:
    """``(group, root, sequence)`` of the ``split`` (tune, validate, all or none) of the data folder."""
    groups = {"all": ("tune", "validate"), "none": ()}.get(split, (split,))
    return [
        (group, data / root, name)
        for group in groups
        for root, listing in SPLITS[group]
        for name in (data / root / listing).read_text().split()
    ]


def root_sequences(root: Path) -> list[tuple[str, Path, str]]:
    """``(group, root, sequence)`` of every sequence of a DAVIS-layout folder (group: its name)."""
    sequences = benchmark_sequences("davis2016", root, sequence_list=ALL_FOLDERS).sequences
    return [(root.name, root, sequence.name) for sequence in sequences]


def read_sequence(root: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """RGB frames ``[N, H, W, 3]`` and boolean ground truth ``[N, H, W]`` of one sequence."""
    return read_frames(root, name), read_masks(root, name)


def run_backend(backend: GeometricBackend, frames: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Probabilities of every frame as one window (each frame scored against both neighbours, as in
    a centred stream), and the seconds per frame of the whole work: wall clock and CPU time (all
    threads; less disturbed by other load than the wall clock)."""
    backend.reset()
    started, cpu_started = time.perf_counter(), time.process_time()
    prediction = backend.predict_window(frames, frame_ids=range(len(frames)))
    count = len(frames)
    return prediction.probability, (time.perf_counter() - started) / count, (time.process_time() - cpu_started) / count


def dis_seconds_per_frame(config: GeometricConfig, frames: np.ndarray) -> float:
    """Seconds per frame of the two DIS flows (forward and backward) alone, at the same settings,
    one after the other with OpenCV's default threads (as a plain caller would run them)."""
    flow = DISFlow(config.dis_config())
    grays = [flow.prepare(frame) for frame in frames]
    started = time.perf_counter()
    for gray_a, gray_b in zip(grays[:-1], grays[1:]):
        flow(gray_a, gray_b)
        flow(gray_b, gray_a)
    return (time.perf_counter() - started) / len(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("tune", "validate", "all", "none"), default="all",
                        help="sequences of the data folder to score (default: %(default)s)")
    parser.add_argument("--data", type=Path, default=data_root(), help="data folder (default: %(default)s)")
    parser.add_argument("--root", type=Path, action="append", default=[],
                        help="also score every sequence of this DAVIS-layout folder (repeatable)")
    parser.add_argument("--sequences", help="keep only these sequences (comma-separated)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a GeometricConfig field (repeatable)")
    parser.add_argument("--speed-frames", type=int, default=30, help="frames timed per resolution (0: no timing)")
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds, DIS alone and the whole work alternating; "
                        "the fastest of each is reported (the least disturbed by other load)")
    args = parser.parse_args()
    overrides = parse_settings(args.set)
    config = GeometricConfig.from_settings(overrides)
    backend = GeometricBackend(config)
    print(f"OpenCV threads: {cv2.getNumThreads()}, CPUs: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}, "
          f"settings {overrides or 'default'}, DIS {config.dis_config()}")
    chosen = split_sequences(args.data, args.split) + [item for root in args.root for item in root_sequences(root)]
    if args.sequences is not None:
        chosen = [item for item in chosen if item[2] in args.sequences.split(",")]
    print(f"{'group':16s} {'sequence':20s} {'frames':>6s} {'J':>6s} {'F':>6s} {'ms/frame':>9s}")
    results: dict[str, list[tuple[float, float]]] = {}
    first = None
    for group, root, name in chosen:
        frames, truth = read_sequence(root, name)
        first = frames if first is None else first
        probability, seconds, _ = run_backend(backend, frames)
        j_values, f_values = batch_scores(probability > 0.5, truth)
        results.setdefault(group, []).append((j_values.mean(), f_values.mean()))
        row = f"{j_values.mean():6.3f} {f_values.mean():6.3f} {1000 * seconds:9.1f}"
        print(f"{group:16s} {name:20s} {len(frames):6d} {row}", flush=True)
    for group, scores in results.items():
        j_mean, f_mean = np.mean(scores, axis=0)
        print(f"{'mean ' + group:16s} {f'({len(scores)} sequences)':20s} {'':6s} {j_mean:6.3f} {f_mean:6.3f}")
    if args.speed_frames <= 0:
        return
    first = read_frames(args.data / DAVIS, SEQUENCES[0]) if first is None else first
    print(f"\n{'size':9s} {'frames/s':>8s} {'DIS ms':>7s} {'total ms':>8s} {'total/DIS':>9s} {'CPU ms':>7s}"
          f"  (best of {args.rounds} rounds)")
    for width, height in ((854, 480), (640, 480)):
        clip = np.stack([cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA) for frame in first[: args.speed_frames]])
        dis = total = cpu = np.inf
        for _ in range(args.rounds):
            dis = min(dis, dis_seconds_per_frame(config, clip))
            _, wall, work = run_backend(backend, clip)
            total, cpu = min(total, wall), min(cpu, work)
        print(f"{width}x{height:<5d} {1 / total:8.1f} {1000 * dis:7.1f} {1000 * total:8.1f} {total / dis:9.2f} {1000 * cpu:7.1f}")


if __name__ == "__main__":
    main()
