# SPDX-License-Identifier: Apache-2.0
"""The instance stage: its cost per frame, and what it does to the binary masks on real sequences.

    .venv/bin/python -m benchmarks.bench_instances                       # cost at 640x480 + DAVIS check
    .venv/bin/python -m benchmarks.bench_instances --davis none          # cost only
    .venv/bin/python -m benchmarks.bench_instances --davis dev --sequences libby

Cost: the tracker on the rendered demo clip at 640x480 (its exact masks), OpenCV on one thread,
milliseconds per frame (median and 95th percentile after one warm-up frame), without and with
3D points. DAVIS check: the weight-free geometric backend segments each sequence as
``geomotion segment`` does; the instance stage runs on its masks; J of the binary masks and J of
the union of the instances against the ground truth, the number of ids, and the id changes of
the one annotated object (a DAVIS 2016 sequence has one), and the stage's time per frame there
(mean wall and CPU at 854x480; median CPU with frames and masks resized to 640x480).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.data import DAVIS, DAVIS_EXTRA, davis_root, read_frames, read_masks
from geomotion_core.backend import BackendOptions
from geomotion_core.demo import DemoClipConfig, render_clip
from geomotion_core.demo.scoring import read_masks as read_predicted_masks
from geomotion_core.eval.metrics import batch_scores
from geomotion_core.instances import InstanceTracker
from geomotion_core.instances.identity import identity_scores
from geomotion_core.pipeline import SegmentOptions, segment_to_folder

DAVIS_SETS = {"dev": (DAVIS,), "all": (DAVIS, DAVIS_EXTRA), "none": ()}


def cost_per_frame(width: int, height: int, frames: int, points: bool) -> tuple[float, float, float]:
    """Median and 95th-percentile wall milliseconds of one tracker update at ``width`` x ``height``,
    and the median CPU milliseconds of the calling thread (what it costs on one free core)."""
    clip = render_clip(DemoClipConfig(frames=frames, width=width, height=height))
    world = np.random.default_rng(0).normal(size=(height, width, 3)).astype(np.float32) if points else None
    pose = np.eye(4) if points else None
    tracker = InstanceTracker()
    timings, cpu = [], []
    for index, (frame, mask) in enumerate(zip(clip.frames, clip.masks)):
        start, start_cpu = time.perf_counter(), time.thread_time()
        tracker.update(frame, mask, stamp=index / 30, points=world, pose=pose)
        timings.append(1000 * (time.perf_counter() - start))
        cpu.append(1000 * (time.thread_time() - start_cpu))
    return float(np.median(timings[1:])), float(np.percentile(timings[1:], 95)), float(np.median(cpu[1:]))


def sequences(names: tuple[str, ...], only: set[str] | None) -> list[tuple[Path, str]]:
    """``(root, sequence)`` of every sequence in the named DAVIS-layout folders."""
    found = []
    for name in names:
        root = davis_root(name)
        folder = root / "JPEGImages" / "480p"
        if not folder.is_dir():
            raise SystemExit(f"{folder} not found (set GEOMOTION_TEST_DATA; docs/testing.md)")
        found += [(root, path.name) for path in sorted(folder.iterdir())
                  if path.is_dir() and (not only or path.name in only)]
    return found


def davis_check(root: Path, sequence: str) -> dict[str, float]:
    """Binary J and instance-union J of the geometric backend on one sequence, ids, id changes of the
    annotated object and the stage's mean wall and CPU milliseconds per frame (854x480)."""
    frames, truth = read_frames(root, sequence), read_masks(root, sequence)
    options = SegmentOptions(backend=BackendOptions(backend="geometric"), overlay=False, progress=False)
    with tempfile.TemporaryDirectory() as folder:
        summary = segment_to_folder(root / "JPEGImages" / "480p" / sequence, Path(folder) / "out", options)
        folder = summary.outputs["masks"]
        masks = read_predicted_masks(folder, sorted(path.stem for path in folder.glob("*.png")))
    tracker = InstanceTracker()
    start, start_cpu = time.perf_counter(), time.thread_time()
    ids = np.stack([tracker.update(frame, mask).ids for frame, mask in zip(frames, masks)])
    seconds, cpu = time.perf_counter() - start, time.thread_time() - start_cpu
    cpu_640 = stage_cpu_ms(frames, masks, (640, 480))
    binary_j = float(np.mean(batch_scores(masks, truth)[0]))
    union_j = float(np.mean(batch_scores(ids > 0, truth)[0]))
    identity = identity_scores(ids, truth.astype(np.uint8))
    return {"frames": len(frames), "binary_j": binary_j, "union_j": union_j, "ids": len(np.unique(ids)) - 1,
            "switches": identity.switches, "matched": identity.matched_share, "ms": 1000 * seconds / len(frames),
            "cpu_ms": 1000 * cpu / len(frames), "cpu_640": cpu_640}


def stage_cpu_ms(frames: np.ndarray, masks: np.ndarray, size: tuple[int, int]) -> float:
    """Median CPU milliseconds per frame of the instance stage on ``frames`` and ``masks`` resized to
    ``size`` (width, height), after the first frame."""
    tracker, cpu = InstanceTracker(), []
    for frame, mask in zip(frames, masks):
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        start = time.thread_time()
        tracker.update(frame, mask)
        cpu.append(1000 * (time.thread_time() - start))
    return float(np.median(cpu[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=60, help="frames of the rendered clip timed")
    parser.add_argument("--davis", choices=sorted(DAVIS_SETS), default="all", help="DAVIS folders to check")
    parser.add_argument("--sequences", help="comma-separated sequence names to keep")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    for width, height in ((640, 480), (854, 480)):
        for points in (False, True):
            median, p95, cpu = cost_per_frame(width, height, args.frames, points)
            print(f"instance stage {width}x{height}{' with 3D points' if points else ''}: wall median {median:.2f} ms, "
                  f"p95 {p95:.2f} ms; CPU median {cpu:.2f} ms per frame (one OpenCV thread)")
    only = set(args.sequences.split(",")) if args.sequences else None
    rows = [(sequence, davis_check(root, sequence)) for root, sequence in sequences(DAVIS_SETS[args.davis], only)]
    if not rows:
        return
    print(f"{'sequence':<20}{'frames':>7}{'binary J':>10}{'union J':>9}{'change':>9}{'ids':>5}{'switches':>9}"
          f"{'matched':>9}{'ms':>7}{'CPU ms':>8}{'640 CPU':>9}")
    for sequence, row in rows:
        print(f"{sequence:<20}{row['frames']:>7}{row['binary_j']:>10.4f}{row['union_j']:>9.4f}"
              f"{row['union_j'] - row['binary_j']:>+9.4f}{row['ids']:>5}{row['switches']:>9}{row['matched']:>9.2f}"
              f"{row['ms']:>7.2f}{row['cpu_ms']:>8.2f}{row['cpu_640']:>9.2f}")
    binary, union = (np.mean([row[key] for _, row in rows]) for key in ("binary_j", "union_j"))
    print(f"{'mean':<20}{'':>7}{binary:>10.4f}{union:>9.4f}{union - binary:>+9.4f}")


if __name__ == "__main__":
    main()
