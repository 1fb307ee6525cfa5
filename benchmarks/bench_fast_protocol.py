"""What the fast official protocol costs in masks: `segment --protocol eval --precision bf16` against
the exact one (fp32), on the DAVIS sequences (``benchmarks.data``).

    .venv/bin/python -m benchmarks.bench_fast_protocol                      # small reference model, DIS, CPU
    .venv/bin/python -m benchmarks.bench_fast_protocol --preset official --random-weights --device cuda

Both runs segment each sequence with GeoMotion's eval.py protocol (4 interleaved groups, threshold
0.1; the official preset adds SAM2, whose image encoder runs in bf16 on CUDA in both). Reported per
sequence: mean and lowest per-frame IoU between the fast and the exact masks, J of each against the
ground truth and their difference, and seconds per frame of each run (loading excluded). With random
weights the J values mean nothing, but the agreement and the timing do.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.bench_segment import preset_options
from benchmarks.data import read_masks, require_davis
from benchmarks.random_weights import random_weights_home
from geomotion_core.backends import build_backend
from geomotion_core.eval.metrics import jaccard
from geomotion_core.pipeline import segment_to_folder


def read_predictions(folder: Path, names: list[str]) -> np.ndarray:
    """``[N, H, W]`` boolean masks ``folder/<name>.png`` (non-zero = moving) written by a run."""
    return np.stack([np.asarray(Image.open(folder / f"{name}.png")) > 0 for name in names])


def agreement(fast: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """Per-frame IoU of two boolean mask stacks (1 where both are empty)."""
    return jaccard(fast, exact)


def build_refiner(options):
    """One SAM2 refiner for every run (None without --sam2 in the preset)."""
    if not options.sam2:
        return None
    from geomotion_core.pipeline.model_loading import resolve_device
    from geomotion_core.refine import Sam2Refiner, Sam2RefinerOptions

    return Sam2Refiner.from_files(options.sam2_config, options.sam2_checkpoint, resolve_device(options.backend.device),
                                  Sam2RefinerOptions(fallback_threshold=options.mask_threshold))


def run_sequence(davis: Path, sequence: str, runs: dict[str, tuple], refiner, folder: Path) -> dict[str, object]:
    """Segment ``sequence`` with each ``label -> (options, backend)`` and compare the masks."""
    source = davis / "JPEGImages" / "480p" / sequence
    results = {}
    for label, (options, backend) in runs.items():
        summary = segment_to_folder(source, folder / label, options, backend=backend, refiner=refiner)
        processing = sum(s for stage, s in summary.stage_seconds.items() if stage != "load")
        results[label] = {"summary": summary, "seconds_per_frame": processing / summary.frames}
    names = sorted(path.stem for path in (folder / "exact" / "masks").glob("*.png"))
    exact = read_predictions(folder / "exact" / "masks", names)
    fast = read_predictions(folder / "fast" / "masks", names)
    truth = read_masks(davis, sequence, count=len(names))
    iou = agreement(fast, exact)
    j_exact, j_fast = float(jaccard(exact, truth).mean()), float(jaccard(fast, truth).mean())
    return {
        "sequence": sequence,
        "frames": len(names),
        "iou_mean": float(iou.mean()),
        "iou_min": float(iou.min()),
        "iou_per_frame": [round(float(v), 5) for v in iou],
        "j_exact": j_exact,
        "j_fast": j_fast,
        "j_difference": j_fast - j_exact,
        "exact_s_per_frame": results["exact"]["seconds_per_frame"],
        "fast_s_per_frame": results["fast"]["seconds_per_frame"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=("small", "official"), default="small")
    parser.add_argument("--sequences", help="comma-separated DAVIS sequences (default: ImageSets/dev.txt)")
    parser.add_argument("--frames", type=int, default=16, help="frames per sequence (default: %(default)s)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--engine", default="torch", help="engine of the fast run (torch or tensorrt)")
    parser.add_argument("--random-weights", action="store_true",
                        help="official preset without weight files: random network, RAFT and SAM2 weights")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    args = parser.parse_args()
    davis = require_davis()
    sequences = args.sequences.split(",") if args.sequences else (davis / "ImageSets" / "dev.txt").read_text().split()

    base = preset_options(args.preset, args.device, args.random_weights)
    exact = replace(base, protocol="eval", max_frames=args.frames, overlay=False)
    exact.backend = replace(base.backend, precision="fp32")
    fast = replace(exact, backend=replace(base.backend, precision="bf16", engine=args.engine))
    stand_ins = random_weights_home() if args.random_weights and args.preset == "official" else contextlib.nullcontext()
    rows = []
    with stand_ins, tempfile.TemporaryDirectory() as folder:
        refiner = build_refiner(exact)
        runs = {label: (options, build_backend(options.backend)) for label, options in (("exact", exact), ("fast", fast))}
        for label, (options, backend) in runs.items():  # warm-up: lazy initialisation, kernel choice, engines
            warmup = replace(options, max_frames=min(4, args.frames))
            segment_to_folder(davis / "JPEGImages" / "480p" / sequences[0], Path(folder) / f"warmup-{label}", warmup,
                              backend=backend, refiner=refiner)
        for sequence in sequences:
            rows.append(run_sequence(davis, sequence, runs, refiner, Path(folder) / sequence))
    print(f"preset {args.preset}, device {args.device}, eval protocol, {args.frames} frames per sequence")
    print(f"{'sequence':<12}{'IoU mean':>9}{'IoU min':>9}{'J exact':>9}{'J fast':>9}{'dJ':>8}{'exact s/f':>10}{'fast s/f':>10}")
    for row in rows:
        print(f"{row['sequence']:<12}{row['iou_mean']:>9.4f}{row['iou_min']:>9.4f}{row['j_exact']:>9.4f}"
              f"{row['j_fast']:>9.4f}{row['j_difference']:>+8.4f}{row['exact_s_per_frame']:>10.3f}"
              f"{row['fast_s_per_frame']:>10.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"preset": args.preset, "device": args.device, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
