"""Training step time and peak memory: the real trainer on real DAVIS clips.

Presets (random network weights; the timing does not depend on them):

* ``small`` (default): the small reference network, 56x56, 3-frame clips, DIS flow, CPU;
* ``official``: the full network at 518x518, 12-frame clips, batch 1, bf16 autocast on CUDA --
  meant for a GPU (``--flow raft`` needs the RAFT weights, or ``--random-weights`` for random
  ones; DIS runs on the CPU).

Each timed step is the trainer's own optimiser step (clip loading, flow, forward, backward, clip,
AdamW). The breakdown times one extra clip stage by stage. Examples::

    .venv/bin/python -m benchmarks.bench_train
    .venv/bin/python -m benchmarks.bench_train --preset official --flow raft --steps 10
    .venv/bin/python -m benchmarks.bench_train --preset official --flow raft --random-weights

Peak memory: CUDA's peak allocated bytes on a GPU, the process's peak resident set on a CPU.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import resource
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from benchmarks.data import REFERENCE_DIR, davis_root
from benchmarks.random_weights import random_weights_home
from geomotion_core.train.config import TrainConfig
from geomotion_core.train.trainer import Trainer

PRESETS = {
    "small": {"model_config": str(REFERENCE_DIR / "small" / "config.json"), "image_size": 56, "frames": 3},
    "official": {"model_config": None, "image_size": 518, "frames": 12},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    parser.add_argument("--flow", default="dis", choices=("dis", "raft"))
    parser.add_argument("--frames", type=int, help="clip length (default: the preset's)")
    parser.add_argument("--size", type=int, help="square input side (default: the preset's)")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--davis", type=Path, default=davis_root(), help="DAVIS 2016 folder (default: %(default)s)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--random-weights", action="store_true", help="random RAFT weights for --flow raft")
    return parser.parse_args(argv)


def build_trainer(args: argparse.Namespace, output_dir: str) -> Trainer:
    preset = PRESETS[args.preset]
    steps = args.warmup + args.steps + 1
    config = TrainConfig.from_dict({
        "data": {
            "train": [{"root": str(args.davis), "layout": "davis"}],
            "sequence_length": args.frames or preset["frames"],
            "image_size": args.size or preset["image_size"],
            "flow": args.flow,
            "num_workers": 0,
            "epoch_length": steps * args.batch_size,
        },
        "optim": {"epochs": 1, "batch_size": args.batch_size},
        "model_config": preset["model_config"],
        "output_dir": output_dir,
        "device": args.device,
        "precision": args.precision,
        "log_every": 10**9,
    })
    return Trainer(config)


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def stage_times(trainer: Trainer, batches: Iterator[dict]) -> dict[str, float]:
    """Seconds of each stage of one more clip: load, flow, forward + loss, backward + optimiser."""
    device = trainer.device
    marks = [time.perf_counter()]
    batch = next(batches)
    marks.append(time.perf_counter())
    inputs = trainer._inputs(batch)
    synchronise(device)
    marks.append(time.perf_counter())
    loss, _ = trainer._loss(*inputs)
    synchronise(device)
    marks.append(time.perf_counter())
    loss.backward()
    trainer._clip_gradients()
    trainer.optimizer.step()
    trainer.optimizer.zero_grad(set_to_none=True)
    synchronise(device)
    marks.append(time.perf_counter())
    names = ("load_s", "flow_s", "forward_loss_s", "backward_step_s")
    return {name: end - start for name, start, end in zip(names, marks, marks[1:])}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    stand_ins = random_weights_home(("raft",)) if args.random_weights and args.flow == "raft" else contextlib.nullcontext()
    with stand_ins, tempfile.TemporaryDirectory() as output_dir:
        trainer = build_trainer(args, output_dir)
        device = trainer.device
        batches = trainer._epoch_batches()
        for _ in range(args.warmup):
            trainer._step(batches, _NullBar())
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        synchronise(device)
        started = time.perf_counter()
        for _ in range(args.steps):
            trainer._step(batches, _NullBar())
        synchronise(device)
        step_s = (time.perf_counter() - started) / args.steps
        breakdown = stage_times(trainer, batches)
    peak_mib = (
        torch.cuda.max_memory_allocated(device) / 2**20
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    result = {
        "preset": args.preset,
        "device": (
            torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
        ),
        "precision": "bf16" if trainer.autocast_dtype is not None else "fp32",
        "flow": args.flow,
        "batch": args.batch_size,
        "frames": trainer.config.data.sequence_length,
        "size": trainer.config.data.image_size,
        "trainable_params": sum(p.numel() for p in trainer.model.trainable_parameters()),
        "step_s": step_s,
        "peak_mib": peak_mib,
        **breakdown,
    }
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:<{width}}  {value:.4f}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


class _NullBar:
    """Stands in for the progress bar the trainer's step updates."""

    def update(self, _: int) -> None:
        pass

    def set_postfix(self, **_: str) -> None:
        pass


if __name__ == "__main__":
    raise SystemExit(main())
