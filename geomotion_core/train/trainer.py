# SPDX-License-Identifier: Apache-2.0
"""The training loop: the official GeoMotion recipe, distributed correctly and resumable exactly.

One optimiser step = ``accumulate`` micro-batches of ``batch_size`` clips on every rank. For each
micro-batch: frames (augmented by the dataset) -> flow magnitudes (project estimator, optional
disk cache) -> ImageNet normalisation (the model normalises again: the official double
normalisation) -> the DDP-wrapped network (bf16 autocast on CUDA) -> loss on the motion logits ->
backward. Then gradient clipping, AdamW, and once per epoch the cosine schedule, validation (J/F on
rank 0) and checkpoints.

Everything random about the data (augmentations included) is a function of ``(seed, epoch,
index)``, the sampler order of ``(seed, epoch)``, and all RNG states are checkpointed, so a run
stopped at any step and resumed from its ``last`` checkpoint ends with bit-identical weights to an
uninterrupted run.
"""
from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader
from tqdm import tqdm

from geomotion_core.errors import ConfigError, InputError, TrainingError
from geomotion_core.eval.metrics import batch_scores
from geomotion_core.pipeline.model_loading import read_model_config, resolve_device
from geomotion_core.pipeline.preprocessing import imagenet_normalise
from geomotion_core.train.augment import NoAugmentation, build_augmentation
from geomotion_core.train.checkpoints import Progress, read_checkpoint, resolve_resume, restore_rng, write_checkpoint
from geomotion_core.train.config import AugmentConfig, DatasetConfig, TrainConfig
from geomotion_core.train.datasets import read_sequences
from geomotion_core.train.distributed import DistributedContext
from geomotion_core.train.flow_cache import ClipFlow
from geomotion_core.train.losses import MotionLoss
from geomotion_core.train.mixing import ClipSource, MixedClipDataset, ValidationClips
from geomotion_core.train.sampling import ClipSampler

LOGGER = logging.getLogger(__name__)


@dataclass
class TrainSummary:
    """What a finished (or stopped) run reports."""

    steps: int
    epochs_done: int
    last_loss: float | None
    best_score: float | None
    best_step: int | None
    last_checkpoint: Path | None  # written by this run (None on ranks > 0, or if nothing was left to do)
    seconds: float
    skipped_clips: int  # unreadable clips replaced by other draws (this rank)


def build_sources(
    datasets: list[DatasetConfig], sequence_length: int, augment: AugmentConfig | None = None
) -> list[ClipSource]:
    """Read every dataset folder (errors surface here, before training starts). With ``augment``
    each dataset's clips get its ``augment`` profile; without (validation), none."""
    return [
        ClipSource(
            read_sequences(dataset, min_length=sequence_length),
            ClipSampler(sequence_length, dataset.stride, tuple(dataset.stride_multipliers)),
            dataset.probability,
            build_augmentation(dataset.augment, augment) if augment else NoAugmentation(),
        )
        for dataset in datasets
    ]


def build_model(config: TrainConfig, device: torch.device) -> tuple[torch.nn.Module, str]:
    """The network, initialised from ``config.init`` (Pi3 or any GeoMotion weights) or randomly,
    and a line saying which."""
    from geomotion_core.model import GeoMotion, GeoMotionConfig, load_checkpoint

    model_config = read_model_config(config.model_config) if config.model_config else None
    if config.init:
        model, report = load_checkpoint(config.init, config=model_config, map_location=device)
        return model, f"initialised from {report.summary()}"
    model = GeoMotion(model_config or GeoMotionConfig.official(), device=device)
    return model, "no init checkpoint: the whole network starts from random weights"


def frames_to_unit(frames: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 ``[B, N, H, W, 3]`` -> float ``[B, N, 3, H, W]`` in [0, 1] on ``device``."""
    return frames.to(device, non_blocking=True).permute(0, 1, 4, 2, 3).float().div_(255.0)


class Trainer:
    """Builds everything from a ``TrainConfig`` and runs :meth:`fit`."""

    def __init__(self, config: TrainConfig, context: DistributedContext | None = None) -> None:
        config.validate()
        self.config = config
        self.context = context or DistributedContext.from_env()
        self.device = self.context.device(resolve_device(config.device))
        self.context.start(self.device)
        self.output_dir = Path(config.output_dir)
        self.autocast_dtype = self._autocast_dtype()
        self._non_finite_streak = 0  # steps in a row with a non-finite loss or gradient
        self._build_data()
        self._build_model_and_optimiser(resolve_resume(config.resume, self.output_dir))
        self.criterion = MotionLoss(config.loss)
        self.train_flow, self.val_flow = self._build_flow()
        self.writer = self._build_writer()

    # -- set-up --------------------------------------------------------------------------------

    def _info(self, message: str, *args: object) -> None:
        """Log on rank 0 only."""
        if self.context.is_main:
            LOGGER.info(message, *args)

    def _build_data(self) -> None:
        """Read every dataset (errors surface now) and size the epoch for this rank."""
        data, optim = self.config.data, self.config.optim
        sources = build_sources(data.train, data.sequence_length, data.augment)
        self.train_data = MixedClipDataset(
            sources, data.image_size, data.crop, self.config.seed, data.epoch_length,
            keep_source=data.flow_cache is not None,
        )
        self.val_data = ValidationClips(build_sources(data.val, data.sequence_length), data.image_size, data.val_crop)
        self.sampler = self.context.sampler(self.train_data, self.config.seed)
        self.micro_batch = optim.batch_size
        self.steps_per_epoch = len(self.sampler) // (optim.batch_size * optim.accumulate)
        if self.steps_per_epoch < 1:
            raise ConfigError(
                f"an epoch of {len(self.train_data)} clips over {self.context.world_size} process(es) holds no "
                f"step of {optim.batch_size} x {optim.accumulate} clips; raise data.epoch_length"
            )

    def _build_model_and_optimiser(self, resume_from: Path | None) -> None:
        """The network (initial or resumed), its DDP wrapper, AdamW and the cosine schedule."""
        optim = self.config.optim
        self.progress = Progress()
        self._seed_everything()
        if resume_from is None:
            self.model, origin = build_model(self.config, self.device)
        else:
            self.model, resumed_state, self.progress = read_checkpoint(resume_from, self.device)
            origin = f"resumed from {resume_from} at step {self.progress.step} (epoch {self.progress.epoch})"
        self._info("%s", origin)
        self.model.freeze_backbone()
        self.model.to(self.device).train()
        self.wrapped = self.context.wrap(self.model, self.device)
        self.optimizer = torch.optim.AdamW(
            self.model.trainable_parameters(), lr=optim.lr, betas=tuple(optim.betas), weight_decay=optim.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.optimizer, T_max=optim.epochs, eta_min=optim.min_lr
        )
        if resume_from is not None:
            _warn_about_changed_settings(resumed_state.get("config", {}), self.config)
            self.optimizer.load_state_dict(resumed_state["optimizer"])
            self.scheduler.load_state_dict(resumed_state["scheduler"])
            restore_rng(resumed_state["rng"])

    def _autocast_dtype(self) -> torch.dtype | None:
        precision = self.config.precision
        if precision == "bf16" and self.device.type != "cuda":
            raise ConfigError("precision bf16 needs a CUDA device; use fp32 (or auto) on the CPU")
        return torch.bfloat16 if self.device.type == "cuda" and precision in ("auto", "bf16") else None

    def _autocast(self) -> torch.autocast:
        """bf16 autocast on CUDA (unless fp32 was asked for); a disabled context elsewhere."""
        enabled = self.autocast_dtype is not None
        return torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32, enabled=enabled)

    def _seed_everything(self) -> None:
        seed = self.config.seed
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

    def _build_flow(self) -> tuple[ClipFlow, ClipFlow]:
        from geomotion_core.flow import build_flow_estimator

        data = self.config.data
        estimator = build_flow_estimator(data.flow, data.raft_weights, device=self.device)
        return tuple(
            ClipFlow(estimator, data.flow_cache, f"{data.flow}_{crop}_{data.image_size}")
            for crop in (data.crop, data.val_crop)
        )

    def _build_writer(self):
        if not self.context.is_main:
            return None
        from torch.utils.tensorboard import SummaryWriter

        self.output_dir.mkdir(parents=True, exist_ok=True)
        (self.output_dir / "config.yaml").write_text(yaml.safe_dump(self.config.to_dict(), sort_keys=False))
        return SummaryWriter(str(self.output_dir / "tensorboard"), purge_step=self.progress.step or None)

    # -- the loop ------------------------------------------------------------------------------

    @property
    def total_steps(self) -> int:
        planned = self.config.optim.epochs * self.steps_per_epoch
        return min(planned, self.config.max_steps) if self.config.max_steps else planned

    def fit(self) -> TrainSummary:
        """Train until the last epoch or ``max_steps``; returns the run's summary."""
        started = time.perf_counter()
        last_loss, last_checkpoint = None, None
        bar = tqdm(
            total=self.total_steps, initial=self.progress.step, desc="train", unit="step",
            disable=None if self.context.is_main else True,  # None: only on a terminal
        )
        try:
            while self.progress.epoch < self.config.optim.epochs and self.progress.step < self.total_steps:
                batches, epoch_ended = self._epoch_batches(), False
                while not epoch_ended and self.progress.step < self.total_steps:
                    last_loss = self._step(batches, bar)
                    epoch_ended = self.progress.batch_in_epoch == self.steps_per_epoch
                    if epoch_ended:
                        last_checkpoint = self._end_epoch()
                    elif self._checkpoint_due():
                        last_checkpoint = self._save(("last",))
        finally:
            bar.close()
            if self.writer is not None:
                self.writer.close()
            self.context.stop()
        summary = TrainSummary(
            self.progress.step, self.progress.epoch, last_loss, self.progress.best_score, self.progress.best_step,
            last_checkpoint, time.perf_counter() - started, self.progress.skipped_clips,
        )
        self._info(
            "trained %d steps (%d epochs) in %.1f s; last loss %s; best %s %s at step %s; "
            "unreadable clips replaced: %d; checkpoint %s",
            summary.steps, summary.epochs_done, summary.seconds,
            "-" if last_loss is None else f"{last_loss:.4f}", self.config.select_metric,
            "-" if summary.best_score is None else f"{summary.best_score:.4f}", summary.best_step,
            summary.skipped_clips, last_checkpoint,
        )
        return summary

    def _epoch_batches(self) -> Iterator[dict]:
        """This rank's batches of the current epoch, without those already trained on."""
        epoch = self.progress.epoch
        self.train_data.set_epoch(epoch)
        self.sampler.set_epoch(epoch)
        done = self.progress.batch_in_epoch * self.micro_batch * self.config.optim.accumulate
        loader = DataLoader(
            self.train_data,
            batch_size=self.micro_batch,
            sampler=list(self.sampler)[done:],
            num_workers=self.config.data.num_workers,
            drop_last=True,
            pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(self.config.seed + epoch),
        )
        return iter(loader)

    def _step(self, batches: Iterator[dict], bar: tqdm) -> float:
        """One optimiser step over ``accumulate`` micro-batches; returns the loss (averaged over
        the ranks on logging steps)."""
        started = time.perf_counter()
        accumulate = self.config.optim.accumulate
        totals: dict[str, torch.Tensor] = {}
        for micro in range(accumulate):
            batch = next(batches)
            last = micro == accumulate - 1
            # Gradients are all-reduced by the wrapper's hooks on the last micro-batch only.
            sync = contextlib.nullcontext() if last or not self.context.distributed else self.wrapped.no_sync()
            with sync:
                loss, parts = self._forward_loss(batch)
                (loss / accumulate).backward()
            self.progress.skipped_clips += int(batch["skipped"].sum())
            for name, value in {"loss": loss, **parts}.items():
                totals[name] = totals.get(name, 0.0) + value.detach() / accumulate
        grad_norm = self._clip_gradients()
        if self._finite_step(totals["loss"], grad_norm):
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.progress.step += 1
        self.progress.batch_in_epoch += 1
        bar.update(1)
        if self.progress.step % self.config.log_every == 0 or self.progress.step == 1:
            names = sorted(totals)
            means = self.context.mean(torch.stack([totals[name] for name in names])).tolist()
            self._log_step(dict(zip(names, means)), grad_norm, time.perf_counter() - started, bar)
            return means[names.index("loss")]
        return float(totals["loss"])

    def _forward_loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self._loss(*self._inputs(batch))

    def _inputs(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Frames in [0, 1] (augmented), their flow magnitudes and the target masks, on the device."""
        frames = frames_to_unit(batch["frames"], self.device)
        source_frames = frames_to_unit(batch["source_frames"], self.device) if "source_frames" in batch else None
        flow = self.train_flow(
            frames, batch["sequence"], batch["frame_ids"], source_frames=source_frames,
            flipped=batch.get("flipped"), camera_only=batch.get("camera_only"),
        )
        return frames, flow, batch["masks"].to(self.device, non_blocking=True).float()

    def _loss(
        self, frames: torch.Tensor, flow: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with self._autocast():
            output = self.wrapped(imagenet_normalise(frames), flow)  # the DDP wrapper, never .module
        return self.criterion(output.conf[..., 0], target)

    def _finite_step(self, loss: torch.Tensor, grad_norm: float) -> bool:
        """Whether the loss and the gradient norm are finite on every rank; otherwise stop the run
        (``optim.non_finite: stop``) or skip the step and count it (``skip``, up to
        ``optim.max_skipped_steps`` in a row). No non-finite update reaches the weights."""
        values = torch.stack([loss.detach().float(), torch.tensor(grad_norm, device=loss.device)])
        if bool(torch.isfinite(self.context.mean(values)).all()):
            self._non_finite_streak = 0
            return True
        optim = self.config.optim
        step = self.progress.step + 1
        problem = (f"step {step}: loss {float(loss):.4g}, gradient norm {grad_norm:.4g} (learning rate "
                   f"{self.optimizer.param_groups[0]['lr']:.3g})")
        self._non_finite_streak += 1
        if optim.non_finite == "stop" or self._non_finite_streak > optim.max_skipped_steps:
            streak = f" after {self._non_finite_streak} such steps in a row" if optim.non_finite == "skip" else ""
            raise TrainingError(f"training diverged{streak}: {problem}; nothing non-finite was saved (lower "
                                "the learning rate, or set optim.non_finite=skip to skip such steps)")
        self.progress.skipped_steps += 1
        LOGGER.warning("skipping %s (non-finite; %d skipped so far)", problem, self.progress.skipped_steps)
        if self.writer is not None:
            self.writer.add_scalar("train/skipped_steps", self.progress.skipped_steps, step)
        return False

    def _clip_gradients(self) -> float:
        parameters = self.model.trainable_parameters()
        max_norm = self.config.optim.grad_clip
        norm = torch.nn.utils.clip_grad_norm_(parameters, max_norm if max_norm > 0 else math.inf)
        return float(norm)

    def _log_step(self, losses: dict[str, float], grad_norm: float, seconds: float, bar: tqdm) -> None:
        lr = self.optimizer.param_groups[0]["lr"]
        bar.set_postfix(loss=f"{losses['loss']:.4f}", lr=f"{lr:.2e}")
        if self.writer is None:
            return
        step = self.progress.step
        for name, value in losses.items():
            self.writer.add_scalar(f"train/{name}", value, step)
        self.writer.add_scalar("train/lr", lr, step)
        self.writer.add_scalar("train/grad_norm", grad_norm, step)
        self.writer.add_scalar("train/step_seconds", seconds, step)
        self.writer.add_scalar("train/skipped_clips", self.progress.skipped_clips, step)
        if self.device.type == "cuda":
            self.writer.add_scalar("train/max_memory_gib", torch.cuda.max_memory_allocated(self.device) / 2**30, step)

    def _checkpoint_due(self) -> bool:
        step = self.progress.step
        return step % self.config.checkpoint_every == 0 or step == self.total_steps

    def _end_epoch(self) -> Path | None:
        """Schedule step, validation and checkpoints at the end of an epoch."""
        self.scheduler.step()
        self.progress.epoch += 1
        self.progress.batch_in_epoch = 0
        links: tuple[str, ...] = ("last",)
        scores = self.validate() if self.context.is_main and len(self.val_data) else {}
        if scores:
            for name, value in scores.items():
                self.writer.add_scalar(f"val/{name}", value, self.progress.step)
            score = scores[self.config.select_metric]
            self._info("epoch %d: %s", self.progress.epoch, ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
            if self.progress.best_score is None or score > self.progress.best_score:
                self.progress.best_score, self.progress.best_step = score, self.progress.step
                links = ("last", "best")
        return self._save(links)

    def _save(self, links: tuple[str, ...]) -> Path | None:
        """Rank 0 writes the checkpoint; every rank waits for it."""
        folder = None
        if self.context.is_main:
            state = {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "config": self.config.to_dict(),
            }
            folder = write_checkpoint(self.output_dir, self.model, state, self.progress, links)
        self.context.barrier()
        return folder

    # -- validation ----------------------------------------------------------------------------

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean per-sequence J, F and J&F of thresholded predictions on the validation clips.

        Runs the plain module (no gradients, so no DDP synchronisation is involved). A sequence
        whose files cannot be read is logged and left out; with none readable the result is empty.
        """
        self.model.eval()
        sequence_j, sequence_f = [], []
        try:
            for index in range(len(self.val_data)):
                try:
                    item = self.val_data[index]
                except InputError as exc:
                    LOGGER.warning("validation skips an unreadable clip: %s", exc)
                    continue
                frames = frames_to_unit(item["frames"][None], self.device)
                flow = self.val_flow(frames, [item["sequence"]], item["frame_ids"][None])
                with self._autocast():
                    probability = self.model(imagenet_normalise(frames), flow).motion_mask[0]
                predicted = (probability > self.config.threshold).cpu().numpy()
                j_values, f_values = batch_scores(predicted, item["masks"].numpy().astype(bool))
                sequence_j.append(j_values.mean())
                sequence_f.append(f_values.mean())
        finally:
            self.model.train()
        if not sequence_j:
            return {}
        j, f = float(np.mean(sequence_j)), float(np.mean(sequence_f))
        return {"J": j, "F": f, "J&F": (j + f) / 2}


def _warn_about_changed_settings(saved: dict, config: TrainConfig) -> None:
    """A resumed run with another batch size or accumulation no longer continues the same run."""
    saved_optim = saved.get("optim", {}) if isinstance(saved, dict) else {}
    for name in ("batch_size", "accumulate"):
        before, now = saved_optim.get(name), getattr(config.optim, name)
        if before is not None and before != now:
            LOGGER.warning("resuming with optim.%s %s, the checkpoint was trained with %s: the data order and "
                           "the effective batch differ from the interrupted run", name, now, before)
