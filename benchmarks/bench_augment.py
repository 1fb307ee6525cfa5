"""Cost of the training augmentations per clip, view by view, on a real DAVIS clip.

Each view is applied to the same uint8 clip (default: 12 frames at 518x518, the official training
size, centre-cropped from DAVIS 2016 car-shadow) with a fixed plan drawn from the clip generator,
so only the application is timed; ``plan`` reports the drawing alone (the stop view's includes its
homographies). ``profile`` lines average draw + apply over ``--clips`` clip generators with the
official probabilities. The augmentations run in the data-loader workers, one torch thread each.
Example::

    .venv/bin/python -m benchmarks.bench_augment --frames 12 --size 518 --repeat 5
"""
from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from benchmarks.data import davis_root, frame_files
from geomotion_core.train.augment import JitterAugmentation, SemanticStyle, TriViewAugmentation, apply_plan
from geomotion_core.train.sampling import clip_rng
from geomotion_core.train.transforms import load_clip

STANDARD = (1.0, 0.0, 0.0)  # view probabilities: always the standard view
VIEWS = {
    "flip": TriViewAugmentation(flip_probability=1.0, view_probabilities=STANDARD, standard_jitter_probability=0.0),
    "standard+jitter": TriViewAugmentation(
        flip_probability=0.0, view_probabilities=STANDARD, standard_jitter_probability=1.0
    ),
    "semantic (all steps)": TriViewAugmentation(
        flip_probability=0.0,
        view_probabilities=(0.0, 1.0, 0.0),
        semantic=SemanticStyle(grayscale_probability=1.0, blur_probability=1.0, solarize_probability=1.0),
    ),
    "stop": TriViewAugmentation(flip_probability=0.0, view_probabilities=(0.0, 0.0, 1.0)),
    "dynamic-replica jitter": JitterAugmentation(probability=1.0),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--size", type=int, default=518)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--clips", type=int, default=20, help="draws averaged per profile")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (a loader worker has 1)")
    parser.add_argument("--davis", type=Path, default=davis_root(), help="DAVIS 2016 folder (default: %(default)s)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


def best_of(repeat: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    sequence = "car-shadow"
    frame_paths, mask_paths = (paths[: args.frames] for paths in frame_files(args.davis, sequence))
    frames, masks = load_clip(frame_paths, mask_paths, args.size, "center")
    frames, masks = torch.from_numpy(frames), torch.from_numpy(masks.astype(np.uint8))
    shape = tuple(frames.shape[:3])
    load = best_of(args.repeat, lambda: load_clip(frame_paths, mask_paths, args.size, "center"))
    results = {"clip": f"{shape[0]}x{shape[1]}x{shape[2]}", "threads": args.threads, "load_clip_s": load, "views": {}}
    print(f"clip {results['clip']} ({sequence}), {args.threads} thread(s); loading it: {load * 1e3:.0f} ms")
    for name, augmentation in VIEWS.items():
        plan = augmentation.plan(clip_rng(0, 0, 0), *shape)
        draw = best_of(args.repeat, lambda: augmentation.plan(clip_rng(0, 0, 0), *shape))
        apply = best_of(args.repeat, lambda: apply_plan(frames, masks, plan))
        results["views"][name] = {"plan_ms": draw * 1e3, "apply_ms": apply * 1e3}
        print(f"{name:24s} plan {draw * 1e3:7.2f} ms   apply {apply * 1e3:8.1f} ms")
    for name, profile in (("tri_view", TriViewAugmentation()), ("color_jitter", JitterAugmentation())):
        started = time.perf_counter()
        for index in range(args.clips):
            profile(frames, masks, clip_rng(0, 0, index))
        mean = (time.perf_counter() - started) / args.clips
        results[f"profile_{name}_ms"] = mean * 1e3
        print(f"profile {name:16s} mean {mean * 1e3:8.1f} ms per clip over {args.clips} draws")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
