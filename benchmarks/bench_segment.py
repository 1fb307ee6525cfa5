"""Per-stage time per frame of `geomotion segment` on a real DAVIS sequence.

    .venv/bin/python -m benchmarks.bench_segment                    # small reference model, DIS, CPU
    .venv/bin/python -m benchmarks.bench_segment --preset official  # 518x518, RAFT, SAM2 (needs weights, GPU)
    .venv/bin/python -m benchmarks.bench_segment --preset official --random-weights --device cuda

``--random-weights`` times the official pipeline without its weight files: random GeoMotion
weights and random RAFT / SAM2 files in a temporary weights folder (see random_weights.py).

The first chunk is run once beforehand to warm up (lazy initialisation, kernel selection), then the
sequence is segmented and the per-stage seconds of the run are reported per frame.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import platform
import tempfile
from pathlib import Path

import torch

from benchmarks.data import REFERENCE_DIR, require_davis
from benchmarks.random_weights import random_weights_home
from geomotion_core.backend import BackendOptions
from geomotion_core.pipeline import SegmentOptions, segment_to_folder


def preset_options(preset: str, device: str, random_weights: bool = False) -> SegmentOptions:
    if preset == "small":
        small = REFERENCE_DIR / "small"
        backend = BackendOptions(model_config=str(small / "config.json"), checkpoint=str(small / "weights.safetensors"),
                                 flow="dis", size=70, device=device)
        return SegmentOptions(backend=backend, progress=False)
    backend = BackendOptions(flow="raft", size=518, device=device, allow_random_weights=random_weights)
    return SegmentOptions(backend=backend, sam2=True, progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=("small", "official"), default="small")
    parser.add_argument("--sequence", default="blackswan")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    parser.add_argument("--random-weights", action="store_true",
                        help="official preset without weight files: random network, RAFT and SAM2 weights")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    source = require_davis() / "JPEGImages" / "480p" / args.sequence
    options = preset_options(args.preset, args.device, args.random_weights)
    stand_ins = random_weights_home() if args.random_weights and args.preset == "official" else contextlib.nullcontext()
    with stand_ins, tempfile.TemporaryDirectory() as folder:
        options.max_frames = min(args.frames, options.chunk_size)
        segment_to_folder(source, Path(folder) / "warmup", options)
        options.max_frames = args.frames
        summary = segment_to_folder(source, Path(folder) / "run", options)

    per_frame_ms = {stage: 1000 * seconds / summary.frames for stage, seconds in summary.stage_seconds.items()}
    device = torch.cuda.get_device_name() if options.backend.device.startswith("cuda") else platform.processor() or "cpu"
    print(f"preset {args.preset}, {summary.frames} frames of {args.sequence} (854x480), device {args.device} ({device}), "
          f"{torch.get_num_threads()} threads")
    print(f"{'stage':<12}{'ms/frame':>10}")
    for stage, milliseconds in per_frame_ms.items():
        print(f"{stage:<12}{milliseconds:>10.1f}")
    processing = sum(v for k, v in per_frame_ms.items() if k != "load")
    print(f"{'all but load':<12}{processing:>10.1f}   ({1000 / processing:.2f} frames/s)")
    if args.json:
        Path(args.json).write_text(json.dumps({"preset": args.preset, "frames": summary.frames, "device": device,
                                               "threads": torch.get_num_threads(), "ms_per_frame": per_frame_ms},
                                              indent=1))


if __name__ == "__main__":
    main()
