"""Time `evaluate_folders` on a load the size of the DAVIS-2016 val set (20 sequences, 1,376 frames).

The load is synthesised from the real DAVIS frames in ../shared/data: each of the 20 val
sequences gets its real frame count, filled by cycling through the available GT masks; the
prediction is the GT shifted right by 6 px (as in EVAL_PROTOCOL.md). PNGs are written to a
temporary folder, then read back and scored as `geomotion eval --gt --pred` would.

    .venv/bin/python benchmarks/bench_eval.py [--workers N] [--protocol davis]
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

from geomotion_core.eval import evaluate_folders
from geomotion_core.eval.datasets import DAVIS2016_VAL

DAVIS2016_VAL_FRAMES = (
    50, 80, 84, 90, 75, 40, 104, 90, 60, 52, 50, 90, 50, 50, 49, 40, 80, 100, 43, 99,
)  # fmt: skip  (frames of each DAVIS2016_VAL sequence, in order; 1,376 in all)
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "DAVIS2016"


def synthesise(data: Path, out: Path) -> int:
    """Write GT and shifted predictions for the 20 val sequences; returns the frame count."""
    masks = sorted((data / "Annotations" / "480p").glob("*/*.png"))
    if not masks:
        raise SystemExit(f"no DAVIS annotations under {data} (pass --data)")
    source = cycle(masks)
    for name, count in zip(DAVIS2016_VAL, DAVIS2016_VAL_FRAMES):
        (out / "gt" / name).mkdir(parents=True)
        (out / "pred" / name).mkdir(parents=True)
        for index, path in enumerate(islice(source, count)):
            gt = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            pred = np.zeros_like(gt)
            pred[:, 6:] = gt[:, :-6]
            cv2.imwrite(str(out / "gt" / name / f"{index:05d}.png"), gt)
            cv2.imwrite(str(out / "pred" / name / f"{index:05d}.png"), pred)
    return sum(DAVIS2016_VAL_FRAMES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared DAVIS2016 folder")
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
