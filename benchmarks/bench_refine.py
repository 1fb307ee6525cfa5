"""Time of the official SAM2 refinement (two interleaved passes) on a real DAVIS sequence.

The prompts are the sequence's ground-truth masks at the network size (518x518), so every frame
has a prompt and both passes propagate through the whole clip, as with a trained network. Without
the SAM2 checkpoint, ``--random-weights`` times a randomly initialised Hiera-L (same cost).

    .venv/bin/python -m benchmarks.bench_refine --device cuda --random-weights
    .venv/bin/python -m benchmarks.bench_refine --device cpu --config configs/sam2.1/sam2.1_hiera_t.yaml \\
        --checkpoint sam2.1_hiera_tiny.pt --frames 4
"""
from __future__ import annotations

import argparse
import contextlib
import time

import cv2
import numpy as np
import torch

from benchmarks.data import read_frames, read_masks, require_davis
from benchmarks.random_weights import random_weights_home
from geomotion_core.refine import Sam2Refiner

NETWORK_SIZE = 518


def read_clip(sequence: str, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """RGB frames and ground-truth masks resized to the network size (as probabilities 0/1)."""
    davis = require_davis()
    images, truth = read_frames(davis, sequence, frames), read_masks(davis, sequence, frames)
    prompts = np.stack([
        cv2.resize(mask.view(np.uint8), (NETWORK_SIZE, NETWORK_SIZE), interpolation=cv2.INTER_NEAREST) for mask in truth
    ])
    return images, prompts.astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequence", default="blackswan")
    parser.add_argument("--frames", type=int, default=32, help="clip length (official chunks: 32)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--config", help="SAM2 config (default: the bundled Hiera-L)")
    parser.add_argument("--checkpoint", help="SAM2 checkpoint (default: from GEOMOTION_HOME)")
    parser.add_argument("--random-weights", action="store_true", help="random Hiera-L weights (timing only)")
    args = parser.parse_args()

    frames, prompts = read_clip(args.sequence, args.frames)
    stand_ins = random_weights_home(("sam2",)) if args.random_weights else contextlib.nullcontext()
    with stand_ins:
        refiner = Sam2Refiner.from_files(args.config, args.checkpoint, device=args.device)
    refiner.refine(frames[:4], prompts[:4])  # warm-up: kernel selection, lazy allocations
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    started = time.perf_counter()
    masks = refiner.refine(frames, prompts)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"SAM2 refinement of {len(frames)} frames of {args.sequence} at {NETWORK_SIZE}x{NETWORK_SIZE} on "
          f"{args.device} ({device}): {1000 * seconds / len(frames):.1f} ms/frame "
          f"({masks.mean():.3f} of the pixels kept as moving)")


if __name__ == "__main__":
    main()
