# SPDX-License-Identifier: Apache-2.0
"""`geomotion train`: train the motion decoder (one process, or one per GPU under torchrun)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from geomotion_core.cli import options as option_types
from geomotion_core.cli.options import add_option

if TYPE_CHECKING:
    from geomotion_core.train.config import TrainConfig

# Command-line option -> (config section or None for the top level, field name).
OPTION_FIELDS = {
    "output_dir": (None, "output_dir"),
    "init": (None, "init"),
    "model_config": (None, "model_config"),
    "resume": (None, "resume"),
    "max_steps": (None, "max_steps"),
    "device": (None, "device"),
    "precision": (None, "precision"),
    "seed": (None, "seed"),
    "epochs": ("optim", "epochs"),
    "lr": ("optim", "lr"),
    "batch_size": ("optim", "batch_size"),
    "accumulate": ("optim", "accumulate"),
    "loss": ("loss", "kind"),
    "flow": ("data", "flow"),
    "raft_weights": ("data", "raft_weights"),
    "flow_cache": ("data", "flow_cache"),
    "size": ("data", "image_size"),
    "sequence_length": ("data", "sequence_length"),
    "num_workers": ("data", "num_workers"),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train GeoMotion's motion decoder (official recipe; torchrun for several GPUs)",
        description=(
            "Train the motion decoder with the settings of a YAML file; the options below override "
            "it (an option not given keeps the YAML's value). Several GPUs / nodes: "
            "torchrun --nproc_per_node=4 $(which geomotion) train ..."
        ),
    )
    parser.add_argument("--config", required=True, metavar="YAML", type=option_types.INPUT_FILE, help="training YAML (see config/train.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any setting, e.g. --set optim.lr=1e-4 (repeatable)")
    parser.add_argument("--output-dir", metavar="DIR", type=option_types.OUTPUT_DIR,
                        help="run folder: checkpoints (last, best), tensorboard/, config.yaml")
    parser.add_argument("--init", metavar="PATH", type=option_types.INPUT_FILE,
                        help="weights to start from: Pi3 model.safetensors (official) or a GeoMotion file")
    add_option(parser, "model.config", default=None)
    parser.add_argument("--resume", metavar="DIR", type=option_types.InputPath("dir", keywords=("auto",)),
                        help="checkpoint folder to continue exactly, or 'auto' (<output-dir>/last)")
    parser.add_argument("--max-steps", type=option_types.STEPS, metavar="N",
                        help="stop (and checkpoint) after this many optimiser steps")
    parser.add_argument("--epochs", type=option_types.EPOCHS, metavar="N", help="training epochs (optim.epochs)")
    parser.add_argument("--lr", type=option_types.LEARNING_RATE, help="peak learning rate (optim.lr)")
    parser.add_argument("--batch-size", type=option_types.BATCH_SIZE, metavar="N", help="clips per process and micro-batch")
    parser.add_argument("--accumulate", type=option_types.ACCUMULATE, metavar="N", help="micro-batches per optimiser step")
    parser.add_argument("--loss", choices=("bce_dice", "focal_dice"), help="training loss (loss.kind)")
    add_option(parser, "flow.method", default=None, help_text="optical flow of the clips (data.flow)")
    add_option(parser, "flow.raft_weights", default=None, help_text="RAFT-large weights (data.raft_weights)")
    parser.add_argument("--flow-cache", metavar="DIR", type=option_types.OUTPUT_DIR,
                        help="folder for cached flow magnitudes (default: computed on the fly)")
    add_option(parser, "inference.size", default=None,
               help_text="square network input side, a multiple of 14 (data.image_size)")
    parser.add_argument("--sequence-length", type=option_types.SEQUENCE_LENGTH, metavar="N", help="frames per clip (data.sequence_length)")
    parser.add_argument("--num-workers", type=option_types.LOADER_WORKERS, metavar="N", help="data-loader processes (data.num_workers)")
    add_option(parser, "device", default=None, help_text="auto | cpu | cuda | cuda:N | mps (torchrun: each rank's own GPU)")
    add_option(parser, "train.precision", default=None)
    parser.add_argument("--seed", type=option_types.SEED, help="random seed (seed)")
    parser.set_defaults(func=run)


def build_config(args: argparse.Namespace) -> TrainConfig:
    """The YAML file, then ``--set`` overrides, then the explicit options."""
    from geomotion_core.train.config import TrainConfig

    config = TrainConfig.from_yaml(args.config, args.overrides)
    for option, (section, name) in OPTION_FIELDS.items():
        value = getattr(args, option)
        if isinstance(value, Path):
            value = str(value)  # the config holds plain strings (it is written back as YAML)
        if value is not None:
            setattr(getattr(config, section) if section else config, name, value)
    config.validate()
    return config


def run(args: argparse.Namespace) -> int:
    from geomotion_core.train.distributed import DistributedContext
    from geomotion_core.train.trainer import Trainer

    config = build_config(args)
    summary = Trainer(config).fit()
    if DistributedContext.from_env().is_main:
        best = "-" if summary.best_score is None else f"{summary.best_score:.4f} (step {summary.best_step})"
        written = summary.last_checkpoint or "none (nothing left to train)"
        print(
            f"trained {summary.steps} steps, {summary.epochs_done} epochs in {summary.seconds:.0f} s; "
            f"best validation {config.select_metric} {best}; unreadable clips replaced {summary.skipped_clips}; "
            f"checkpoint {written}"
        )
    return 0
