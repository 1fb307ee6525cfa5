"""Optical-flow speed: milliseconds per frame pair for RAFT-large and OpenCV DIS.

    .venv/bin/python -m benchmarks.bench_flow                        # 518x518, CPU, 4 pairs
    .venv/bin/python -m benchmarks.bench_flow --device cuda --pairs 32 --batch-size 16

Frames are consecutive real DAVIS frames resized to the official 518x518 (random frames where the
DAVIS data are absent, see ``benchmarks.data``). RAFT uses the official C_T_SKHT_V2 weights from GEOMOTION_HOME when
present, otherwise random weights (same cost). One warm-up call precedes the timed calls.
"""
from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import cv2
import numpy as np
import torch

from benchmarks.data import davis_root, read_frames
from geomotion_core.flow import FlowEstimator
from geomotion_core.flow.raft import RaftFlowEstimator
from geomotion_core.weights import find_weight



def load_frames(count: int, size: int, sequence: str) -> torch.Tensor:
    """``[count, 3, size, size]`` RGB in [0, 1]: DAVIS frames where available, else random."""
    if not davis_root().is_dir():
        return torch.rand(count, 3, size, size)
    images = [cv2.resize(frame, (size, size), interpolation=cv2.INTER_LANCZOS4)
              for frame in read_frames(davis_root(), sequence, count)]
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255


def build_raft(args: argparse.Namespace) -> tuple[RaftFlowEstimator, str]:
    options = {"batch_size": args.batch_size, "num_flow_updates": args.updates, "precision": args.precision}
    path = find_weight("raft")
    if path is not None:
        return RaftFlowEstimator.from_weights(path, device=args.device, **options), "official weights"
    from torchvision.models.optical_flow import raft_large

    return RaftFlowEstimator(raft_large(weights=None, progress=False), args.device, **options), "random weights"


def build_dis() -> FlowEstimator | None:
    try:
        from geomotion_core.flow.dis import DISFlowEstimator
    except ImportError:
        return None
    return DISFlowEstimator()


def time_per_pair(
    estimator: FlowEstimator, frames: torch.Tensor, repeats: int, synchronize: Callable[[], None]
) -> float:
    """Median milliseconds per pair over ``repeats`` calls on all consecutive pairs."""
    sources, targets = frames[:-1], frames[1:]
    estimator.flow(sources[:1], targets[:1])  # warm-up
    timings = []
    for _ in range(repeats):
        synchronize()
        start = time.perf_counter()
        estimator.flow(sources, targets)
        synchronize()
        timings.append((time.perf_counter() - start) * 1000 / len(sources))
    return float(np.median(timings))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=518, help="square frame side (official: 518)")
    parser.add_argument("--pairs", type=int, default=4, help="frame pairs per timed call")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4, help="RAFT pairs per network call")
    parser.add_argument("--updates", type=int, default=12, help="RAFT flow updates (official: 12)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sequence", default="blackswan")
    parser.add_argument("--methods", nargs="+", choices=("raft", "dis"), default=["raft", "dis"])
    args = parser.parse_args()

    frames = load_frames(args.pairs + 1, args.size, args.sequence)
    device = torch.device(args.device)
    if device.type == "cuda":
        frames = frames.to(device)
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    print(f"{args.pairs} pairs of {args.size}x{args.size} frames on {args.device} ({name})")
    if "raft" in args.methods:
        raft, weights = build_raft(args)
        raft_ms = time_per_pair(raft, frames, args.repeats, synchronize)
        print(f"RAFT-large  {raft_ms:9.1f} ms/pair  ({args.updates} updates, batch {args.batch_size}, "
              f"{args.precision}, {weights})")
    if "dis" in args.methods:
        dis = build_dis()
        if dis is None:
            print("DIS         not available (geomotion_core.flow.dis is missing)")
        else:
            print(f"OpenCV DIS  {time_per_pair(dis, frames.cpu(), args.repeats, lambda: None):9.1f} ms/pair  (CPU)")


if __name__ == "__main__":
    main()
