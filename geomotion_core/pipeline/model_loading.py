# SPDX-License-Identifier: Apache-2.0
"""Build the GeoMotion network from explicit settings: device, model config, checkpoint."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from geomotion_core.errors import CheckpointError, ConfigError
from geomotion_core.weights import find_weight, looked_at

if TYPE_CHECKING:
    from geomotion_core.model import GeoMotionConfig

LOGGER = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> the first CUDA device when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"invalid device {name!r}: {exc}") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available")
    return device


def read_model_config(path: str | Path) -> GeoMotionConfig:
    """The ``GeoMotionConfig`` in the ``"model"`` object of a JSON file."""
    from geomotion_core.model import GeoMotionConfig

    try:
        document = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"model config not found: {path}") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"model config {path} is not readable JSON: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("model"), dict):
        raise ConfigError(f"model config {path} has no \"model\" object")
    try:
        return GeoMotionConfig.from_dict(document["model"])
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigError(f"model config {path}: {exc}") from exc


def resolve_checkpoint(checkpoint: str | os.PathLike | None, allow_random_weights: bool = False) -> Path | None:
    """The checkpoint to load, or None (random weights) when none is given or found and that is allowed.

    A given ``checkpoint`` must exist; without one, ``best_model.pth`` is looked for in the weights
    folder. A ``CheckpointError`` names the options that fix it (``model.checkpoint``, ``backend``);
    the CLI and the node word them as their flags and parameters.
    """
    if checkpoint:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise CheckpointError(f"checkpoint not found: {path}", options=("model.checkpoint",))
        return path
    found = find_weight("geomotion")
    if found is None and not allow_random_weights:
        raise CheckpointError(
            f"no GeoMotion checkpoint given and none found (looked at {looked_at('geomotion')}); "
            "give a checkpoint, see `geomotion weights`, or use the weight-free geometric backend",
            options=("model.checkpoint", "backend"),
        )
    return found


def load_network(
    checkpoint: Path | None, model_config: str | os.PathLike | None, device: torch.device
) -> torch.nn.Module:
    """The GeoMotion network in eval mode on ``device``.

    Args:
        checkpoint: the weights (see :func:`resolve_checkpoint`); None: random weights.
        model_config: a JSON file with non-official sizes (:func:`read_model_config`); None: a
            checkpoint's own or the official sizes.
        device: where the weights go.
    """
    from geomotion_core.model import GeoMotion, GeoMotionConfig, load_checkpoint

    config = read_model_config(model_config) if model_config else None
    if checkpoint is None:
        LOGGER.warning("GeoMotion runs with RANDOM weights (allowed explicitly): its masks mean nothing")
        return GeoMotion(config or GeoMotionConfig.official(), device=device).eval()
    model, report = load_checkpoint(checkpoint, config, map_location=device)
    LOGGER.info("loaded %s", report.summary())
    return model
