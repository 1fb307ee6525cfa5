"""Time `evaluate_folders` on a load the size of the DAVIS-2016 val set (20 sequences, 1,376 frames).

The load is synthesised from the real DAVIS masks (``benchmarks.data``): each of the 20 val
sequences gets its real frame count, filled by cycling through the available GT masks; the
prediction is the GT shifted right by 6 px (as in EVAL_PROTOCOL.md). PNGs are written to a
temporary folder, then read back and scored as `geomotion eval --gt --pred` would.

    .venv/bin/python -m benchmarks.bench_eval [--workers N] [--protocol davis]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from itertools import cycle, islice
from pathlib import Path

import cv2
import numpy as np

from benchmarks.data import davis_root, missing_davis_message
from geomotion_core.eval import evaluate_folders
from geomotion_core.eval.datasets import ALL_FOLDERS, DAVIS2016_VAL, benchmark_sequences
from geomotion_core.eval.masks import read_labels

DAVIS2016_VAL_FRAMES = (
    50, 80, 84, 90, 75, 40, 104, 90, 60, 52, 50, 90, 50, 50, 49, 40, 80, 100, 43, 99,
)  # fmt: skip  (frames of each DAVIS2016_VAL sequence, in order; 1,376 in all)


def synthesise(data: Path, out: Path) -> int:
    """Write GT and shifted predictions for the 20 val sequences; returns the frame count."""
    if not data.is_dir():
        raise SystemExit(missing_davis_message())
    sequences = benchmark_sequences("davis2016", data, sequence_list=ALL_FOLDERS).sequences
    source = cycle(paths[0] for sequence in sequences for paths in sequence.gt)
    for name, count in zip(DAVIS2016_VAL, DAVIS2016_VAL_FRAMES):
        (out / "gt" / name).mkdir(parents=True)
        (out / "pred" / name).mkdir(parents=True)
        for index, path in enumerate(islice(source, count)):
            gt = read_labels(path)
            pred = np.zeros_like(gt)
            pred[:, 6:] = gt[:, :-6]
            cv2.imwrite(str(out / "gt" / name / f"{index:05d}.png"), gt)
            cv2.imwrite(str(out / "pred" / name / f"{index:05d}.png"), pred)
    return sum(DAVIS2016_VAL_FRAMES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=davis_root(), help="DAVIS 2016 folder (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="evaluation threads")
    parser.add_argument("--protocol", default="davis")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs (the best is reported)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as folder:
        root = Path(folder)
        frames = synthesise(args.data, root)
        timings, cpu_seconds = [], []
        for _ in range(args.repeats):
            start, cpu_start = time.perf_counter(), time.process_time()
            report = evaluate_folders(root / "gt", root / "pred", args.protocol, workers=args.workers)
            timings.append(time.perf_counter() - start)
            cpu_seconds.append(time.process_time() - cpu_start)
        best = min(timings)
        pooled = report.aggregates["pooled_over_frames"]
        print(f"{frames} frames at 854x480, protocol {args.protocol}, {args.workers} workers, {os.cpu_count()} CPUs")
        print(f"runs: {', '.join(f'{t:.2f} s' for t in timings)}; best {best:.2f} s = "
              f"{1000 * best / frames:.2f} ms/frame ({frames / best:.0f} frames/s)")
        print(f"CPU time per run (all threads): {', '.join(f'{t:.2f} s' for t in cpu_seconds)}; "
              f"load average {os.getloadavg()[0]:.1f}")
        print(f"pooled J {pooled.J.mean:.4f}, F {pooled.F.mean:.4f} (sanity)")


if __name__ == "__main__":
    main()
