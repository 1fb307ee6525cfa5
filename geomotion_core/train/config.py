# SPDX-License-Identifier: Apache-2.0
"""Training configuration: dataclasses loaded from YAML, with ``section.key=value`` overrides.

The defaults are the official GeoMotion recipe (docs/training.md): 12-frame clips,
square centre crop resized to 518, the official augmentation probabilities (each dataset picks a
profile), BCE + Dice, AdamW lr 5e-5 / weight decay 0.05, cosine to 5e-6 over 20 epochs stepped
once per epoch, gradient clip 1.0, per-GPU batch 1.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from geomotion_core.backend import FLOW_METHODS
from geomotion_core.errors import ConfigError
from geomotion_core.options.loader import load
from geomotion_core.options.table import TRAIN_PRECISIONS, option_field

LAYOUTS = ("hoi4d", "dynamic_replica", "ytvos_motion", "omniworld", "got_motion", "frames_masks", "davis")
LOSSES = ("bce_dice", "focal_dice")
CROPS = ("center", "none")
AUGMENTATIONS = ("none", "tri_view", "color_jitter")
METRICS = ("J", "F", "J&F")
NON_FINITE_ACTIONS = ("stop", "skip")


def _check_finite(value: Any, where: str) -> None:
    """Refuse NaN or infinity anywhere in a configuration (every number of every section)."""
    if isinstance(value, bool):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where.removeprefix('config.')} must be a finite number, got {value}")
    if dataclasses.is_dataclass(value):
        for item in dataclasses.fields(value):
            _check_finite(getattr(value, item.name), f"{where}.{item.name}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_finite(item, f"{where}[{index}]")


@dataclass
class DatasetConfig:
    """One dataset folder in one of the supported layouts (see ``datasets.py``)."""

    root: str
    layout: str = "frames_masks"
    name: str = ""  # label in logs and in the flow-cache key; defaults to the folder name
    probability: float = 1.0  # mixing weight (normalised over the training datasets)
    stride: int = 1  # frame step inside a clip
    stride_multipliers: list[float] = field(default_factory=lambda: [1.0])  # drawn per clip
    split: str | None = None  # Dynamic Replica split folder / DAVIS ImageSets list
    sequences: list[str] | None = None  # keep only these sequence names
    augment: str = "none"  # training augmentation profile: none | tri_view | color_jitter (augment.py)

    def validate(self, where: str) -> None:
        if self.layout not in LAYOUTS:
            raise ConfigError(f"{where}.layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        _check_choice(f"{where}.augment", self.augment, AUGMENTATIONS)
        if self.probability <= 0:
            raise ConfigError(f"{where}.probability must be positive, got {self.probability}")
        if self.stride < 1 or not self.stride_multipliers or min(self.stride_multipliers) <= 0:
            raise ConfigError(f"{where}: stride must be >= 1 and stride_multipliers positive")

    @property
    def label(self) -> str:
        return self.name or Path(self.root).name


@dataclass
class AugmentConfig:
    """Probabilities of the training augmentations (the official ones by default); each dataset's
    ``augment`` profile says which apply, ``augment.py`` holds their strengths."""

    flip_probability: float = 0.5  # tri_view: horizontal flip
    view_probabilities: list[float] = field(default_factory=lambda: [0.5, 0.35, 0.15])  # standard, semantic, stop
    standard_jitter_probability: float = 0.2  # tri_view: weak colour jitter in the standard view
    jitter_probability: float = 0.3  # color_jitter: colour jitter

    def validate(self) -> None:
        for name in ("flip_probability", "standard_jitter_probability", "jitter_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"data.augment.{name} must be in [0, 1], got {getattr(self, name)}")
        views = self.view_probabilities
        if len(views) != 3 or min(views) < 0 or sum(views) <= 0:
            raise ConfigError(
                f"data.augment.view_probabilities must be three non-negative weights (standard, semantic, stop) "
                f"with a positive sum, got {views}"
            )


@dataclass
class DataConfig:
    """Clips, spatial transform, flow and loader settings."""

    train: list[DatasetConfig] = field(default_factory=list)
    val: list[DatasetConfig] = field(default_factory=list)
    sequence_length: int = 12
    image_size: int = option_field("inference.size")
    crop: str = "center"  # training crop: square centre crop, or "none" (direct resize)
    val_crop: str = "none"  # the official test loader resizes without cropping
    epoch_length: int | None = None  # clips per epoch; default: the largest training dataset
    flow: str = option_field("flow.method")
    raft_weights: str | None = None
    flow_cache: str | None = None  # folder for cached flow magnitudes; None computes on the fly
    num_workers: int = 4
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def validate(self) -> None:
        if not self.train:
            raise ConfigError("data.train must list at least one dataset")
        roots: dict[str, str] = {}
        for group, datasets in (("train", self.train), ("val", self.val)):
            for index, dataset in enumerate(datasets):
                dataset.validate(f"data.{group}[{index}]")
                if roots.setdefault(dataset.label, dataset.root) != dataset.root:
                    raise ConfigError(
                        f"two datasets are called {dataset.label!r} ({roots[dataset.label]}, {dataset.root}); "
                        "give them distinct `name`s (the name keys logs and the flow cache)"
                    )
        if self.sequence_length < 1:
            raise ConfigError(f"data.sequence_length must be >= 1, got {self.sequence_length}")
        if self.image_size < 14 or self.image_size % 14:
            raise ConfigError(f"data.image_size must be a positive multiple of 14, got {self.image_size}")
        _check_choice("data.crop", self.crop, CROPS)
        _check_choice("data.val_crop", self.val_crop, CROPS)
        _check_choice("data.flow", self.flow, FLOW_METHODS)
        self.augment.validate()
        if self.epoch_length is not None and self.epoch_length < 1:
            raise ConfigError(f"data.epoch_length must be >= 1, got {self.epoch_length}")


@dataclass
class LossConfig:
    """``bce_dice`` is the official code's loss; ``focal_dice`` the paper's description."""

    kind: str = "bce_dice"
    bce_weight: float = 1.0
    dice_weight: float = 1.0
    focal_weight: float = 1.0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0

    def validate(self) -> None:
        _check_choice("loss.kind", self.kind, LOSSES)


@dataclass
class OptimConfig:
    """AdamW + cosine annealing (stepped once per epoch, like the official script)."""

    lr: float = 5e-5
    min_lr: float = 5e-6
    weight_decay: float = 0.05
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    grad_clip: float = 1.0  # max global gradient norm; 0 disables clipping
    epochs: int = 20
    batch_size: int = 1  # clips per process and micro-batch
    accumulate: int = 1  # micro-batches per optimiser step
    non_finite: str = "stop"  # a NaN/inf loss or gradient: "stop" the run, or "skip" the step (counted)
    max_skipped_steps: int = 10  # with "skip": this many such steps in a row stop the run

    def validate(self) -> None:
        numbers = {"lr": self.lr, "min_lr": self.min_lr, "weight_decay": self.weight_decay,
                   "grad_clip": self.grad_clip, **{f"betas[{i}]": beta for i, beta in enumerate(self.betas)}}
        for name, value in numbers.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"optim.{name} must be a finite number, got {value!r}")
        if self.lr <= 0 or self.min_lr < 0 or self.weight_decay < 0 or self.grad_clip < 0:
            raise ConfigError("optim.lr must be positive, optim.min_lr, optim.weight_decay and optim.grad_clip >= 0")
        if len(self.betas) != 2 or not all(0.0 <= beta < 1.0 for beta in self.betas):
            raise ConfigError(f"optim.betas must be two values in [0, 1), got {self.betas}")
        if self.non_finite not in NON_FINITE_ACTIONS:
            raise ConfigError(f"optim.non_finite must be one of {', '.join(NON_FINITE_ACTIONS)}, got {self.non_finite!r}")
        if self.max_skipped_steps < 1:
            raise ConfigError(f"optim.max_skipped_steps must be >= 1, got {self.max_skipped_steps}")
        for name in ("epochs", "batch_size", "accumulate"):
            if getattr(self, name) < 1:
                raise ConfigError(f"optim.{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class TrainConfig:
    """Everything one training run needs."""

    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    model_config: str | None = None  # JSON whose "model" object is a GeoMotionConfig; None: official
    init: str | None = None  # Pi3 model.safetensors (or any checkpoint) initialising the network
    output_dir: str = "runs/geomotion"
    resume: str | None = None  # a checkpoint folder, or "auto" for <output_dir>/last if it exists
    seed: int = 0
    device: str = option_field("device")  # auto | cpu | cuda | cuda:N (under torchrun: the local rank's GPU)
    precision: str = option_field("train.precision")  # auto: bf16 autocast on CUDA, fp32 elsewhere
    max_steps: int | None = None  # stop (and checkpoint) after this many optimiser steps
    checkpoint_every: int = 3000  # also write `last` every this many steps (official save_freq)
    log_every: int = 10
    select_metric: str = "J"  # validation score that decides `best` (the official code uses IoU)
    threshold: float = 0.5  # probability threshold for the validation masks

    def validate(self) -> None:
        _check_finite(self, "config")
        self.data.validate()
        self.loss.validate()
        self.optim.validate()
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed must be in [0, 2^32), got {self.seed}")
        if self.data.num_workers < 0:
            raise ConfigError(f"data.num_workers must be >= 0, got {self.data.num_workers}")
        _check_choice("precision", self.precision, TRAIN_PRECISIONS)
        _check_choice("select_metric", self.select_metric, METRICS)
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps must be >= 1, got {self.max_steps}")
        if self.checkpoint_every < 1 or self.log_every < 1:
            raise ConfigError("checkpoint_every and log_every must be >= 1")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        config = load(cls, data)
        config.validate()
        return config

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: list[str] | None = None) -> "TrainConfig":
        """Load ``path`` and apply ``section.key=value`` overrides (values parsed as YAML).

        Relative paths in the file are relative to the working directory, like those on the
        command line.
        """
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except OSError as exc:
            raise ConfigError(f"cannot read training config {path}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a mapping of settings")
        for override in overrides or []:
            apply_override(data, override)
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def apply_override(data: dict[str, Any], override: str) -> None:
    """Set ``a.b.c=value`` in a nested dict; the value is parsed as YAML (``1e-4``, ``[1, 2]``)."""
    key, sep, raw = override.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {override!r} must look like section.key=value")
    *parents, leaf = key.strip().split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {override!r}: {part!r} is not a section")
    node[leaf] = yaml.safe_load(raw)


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
