# SPDX-License-Identifier: Apache-2.0
"""Training checkpoints: written atomically, resumed exactly, never unpickling code.

A checkpoint is a folder ``<output>/checkpoints/step-<N>/`` holding

* ``model.safetensors`` -- the whole network in the project's format (``save_checkpoint``), so
  ``geomotion segment --checkpoint <output>/best/model.safetensors`` runs it directly;
* ``training_state.pt`` -- optimiser, scheduler, progress and the RNG states (python, numpy,
  torch, CUDA), as tensors and plain values read back with ``torch.load(weights_only=True)``.

The folder is written under a temporary name and renamed; ``<output>/last`` and ``<output>/best``
are symbolic links switched with ``os.replace``. A crash at any moment leaves the previous links
pointing at complete checkpoints. Step folders no link points at are deleted.
"""
from __future__ import annotations

import os
import pickle
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from geomotion_core.errors import CheckpointError

if TYPE_CHECKING:
    from geomotion_core.model import GeoMotion

MODEL_FILE = "model.safetensors"
STATE_FILE = "training_state.pt"
CHECKPOINT_FOLDER = "checkpoints"
LINKS = ("last", "best")


@dataclass
class Progress:
    """Where training stands: ``epoch`` is the current (unfinished) epoch and ``batch_in_epoch``
    the optimiser steps already taken in it."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_score: float | None = None
    best_step: int | None = None
    skipped_clips: int = 0  # unreadable training clips replaced by other draws (this rank)
    skipped_steps: int = 0  # optimiser steps skipped for a non-finite loss or gradient (optim.non_finite=skip)


def capture_rng() -> dict[str, Any]:
    """Every global RNG state, as weights-only-loadable values."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Undo :func:`capture_rng`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def write_checkpoint(
    output_dir: Path,
    model: torch.nn.Module,
    training_state: dict[str, Any],
    progress: Progress,
    links: tuple[str, ...] = ("last",),
) -> Path:
    """Write a checkpoint for ``progress.step`` and point ``links`` at it; returns its folder."""
    from geomotion_core.model import save_checkpoint

    non_finite = [name for name, value in model.state_dict().items()
                  if value.is_floating_point() and not torch.isfinite(value).all()]
    if non_finite:
        raise CheckpointError(f"refusing to save step {progress.step}: {len(non_finite)} tensor(s) hold NaN or "
                              f"infinite values (e.g. {non_finite[0]}); the run diverged")
    folder = output_dir / CHECKPOINT_FOLDER / f"step-{progress.step:08d}"
    if not folder.is_dir():
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        save_checkpoint(model, partial / MODEL_FILE)
        torch.save({**training_state, "progress": asdict(progress), "rng": capture_rng()}, partial / STATE_FILE)
        os.replace(partial, folder)
    for name in links:
        _point(output_dir / name, folder)
    _prune(output_dir)
    return folder


def read_checkpoint(
    path: str | os.PathLike, map_location: torch.device | str = "cpu"
) -> tuple[GeoMotion, dict[str, Any], Progress]:
    """The model, training state and progress stored in a checkpoint folder.

    Returns ``(model, state, progress)``; ``state`` holds ``optimizer`` and ``scheduler``
    state dicts and ``rng``. Raises ``CheckpointError`` naming the folder and what is wrong.
    """
    from geomotion_core.model import load_checkpoint

    folder = Path(path)
    if not (folder / STATE_FILE).is_file() or not (folder / MODEL_FILE).is_file():
        raise CheckpointError(f"{folder}: not a training checkpoint (needs {MODEL_FILE} and {STATE_FILE})")
    try:
        state = torch.load(folder / STATE_FILE, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        first_line = (str(exc) or type(exc).__name__).splitlines()[0]
        raise CheckpointError(f"{folder / STATE_FILE}: unreadable training state: {first_line}") from None
    missing = {"optimizer", "scheduler", "progress", "rng"} - set(state)
    if missing:
        raise CheckpointError(f"{folder / STATE_FILE}: training state without {', '.join(sorted(missing))}")
    model, _ = load_checkpoint(folder / MODEL_FILE, map_location=map_location)
    return model, state, Progress(**state["progress"])


def resolve_resume(resume: str | None, output_dir: Path) -> Path | None:
    """The checkpoint folder to resume from: ``auto`` means ``<output>/last`` if it exists."""
    if resume is None:
        return None
    if resume == "auto":
        last = output_dir / "last"
        return last.resolve() if last.exists() else None
    folder = Path(resume).expanduser()
    if not folder.exists():
        raise CheckpointError(f"cannot resume: {folder} does not exist")
    return folder.resolve()


def _point(link: Path, target: Path) -> None:
    """Atomically make ``link`` a relative symbolic link to ``target``."""
    temporary = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(os.path.relpath(target, link.parent), target_is_directory=True)
    os.replace(temporary, link)


def _prune(output_dir: Path) -> None:
    """Delete step folders that neither ``last`` nor ``best`` points at."""
    kept = {(output_dir / name).resolve() for name in LINKS if (output_dir / name).exists()}
    for folder in (output_dir / CHECKPOINT_FOLDER).iterdir():
        if folder.resolve() not in kept:
            shutil.rmtree(folder, ignore_errors=True)
