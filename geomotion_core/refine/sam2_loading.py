"""Build a SAM2 video predictor from a user's config file and checkpoint.

The ``sam2`` package composes its model configs with Hydra's process-wide ``GlobalHydra``. Here a
config is composed from its own folder inside a scope that saves and restores that global state,
so any YAML file works (a bundled one or the user's), building works any number of times in one
process, and code that relies on the ``sam2`` package's own Hydra set-up is left undisturbed.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from geomotion_core.errors import CheckpointError
from geomotion_core.weights import require_weight

if TYPE_CHECKING:
    from sam2.sam2_video_predictor import SAM2VideoPredictor

PREDICTOR_WITH_CLIP_CACHE = "geomotion_core.refine.sam2_predictor.ClipFeatureCachePredictor"


def resolve_sam2_files(
    config: str | os.PathLike | None, checkpoint: str | os.PathLike | None
) -> tuple[Path, Path]:
    """The existing config and checkpoint files; CheckpointError naming the paths looked at."""
    config_path = require_weight("sam2_config", config, what="SAM2 config")
    checkpoint_path = require_weight(
        "sam2", checkpoint, what="SAM2 checkpoint",
        hint="fetch it with `geomotion weights download sam2` or run without SAM2 refinement",
    )
    return config_path, checkpoint_path


@contextlib.contextmanager
def _hydra_config_folder(folder: Path) -> Iterator[None]:
    """Make ``folder`` Hydra's config search path for the duration; restore the global state after."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.initialize import get_gh_backup, restore_gh_from_backup

    saved = get_gh_backup()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(folder.resolve()), version_base="1.2"):
            yield
    finally:
        restore_gh_from_backup(saved)


def _memory_in_feature_dtype(_: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Forward pre-hook of SAM2's memory attention: cast the stored memory to the features' dtype.

    SAM2 always stores its frame memories in bfloat16 and relies on CUDA autocast to mix them with
    float32 features; without autocast (the CPU) a frame tracked before every prompt, whose memory
    holds no float32 object pointers, would fail with a dtype mismatch.
    """
    current, memory = kwargs.get("curr"), kwargs.get("memory")
    if current is None or memory is None:
        return args, kwargs
    dtype = current[0].dtype if isinstance(current, (list, tuple)) else current.dtype
    if memory.dtype != dtype:
        kwargs = {**kwargs, "memory": memory.to(dtype)}
    return args, kwargs


def read_sam2_state_dict(checkpoint: Path) -> Mapping[str, torch.Tensor]:
    """The ``model`` state dict of an official SAM2 checkpoint, read without running pickled code."""
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types for truncated or foreign files
        raise CheckpointError(f"SAM2 checkpoint {checkpoint} is not a readable PyTorch checkpoint: {exc}") from exc
    weights = state.get("model") if isinstance(state, Mapping) else None
    if not isinstance(weights, Mapping):
        raise CheckpointError(f"SAM2 checkpoint {checkpoint} has no 'model' state dict")
    return weights


def build_sam2_predictor(
    config: Path,
    checkpoint: Path,
    device: str | torch.device = "cpu",
    image_size: int | None = None,
    cache_clip_features: bool = True,
) -> SAM2VideoPredictor:
    """A SAM2 video predictor in eval mode on ``device`` with the builder's default post-processing.

    Off CUDA, where there is no autocast, the bfloat16 frame memories SAM2 stores are cast to
    float32 before its memory attention (see ``_memory_in_feature_dtype``).

    Args:
        config: a SAM2 model YAML (e.g. the bundled ``configs/sam2.1/sam2.1_hiera_l.yaml``).
        checkpoint: the matching official checkpoint (``sam2.1_hiera_large.pt``).
        device: where SAM2 runs.
        image_size: SAM2's input side; None keeps the config's (1024 for the official models).
        cache_clip_features: encode each frame of a clip once (``ClipFeatureCachePredictor``)
            instead of SAM2's one-frame cache; same results, about a third of the encoder work.
    """
    from sam2.build_sam import build_sam2_video_predictor

    weights = read_sam2_state_dict(checkpoint)
    overrides = [f"++model.image_size={image_size}"] if image_size else []
    if cache_clip_features:  # applied after the builder's own _target_, so it takes precedence
        overrides.append(f"++model._target_={PREDICTOR_WITH_CLIP_CACHE}")
    with _hydra_config_folder(config.parent):
        try:
            predictor = build_sam2_video_predictor(
                config.name, ckpt_path=None, device=str(device), hydra_overrides_extra=overrides
            )
        except Exception as exc:  # Hydra/OmegaConf/instantiate errors: the YAML is not a SAM2 model
            raise CheckpointError(f"SAM2 config {config} does not describe a SAM2 model: {exc}") from exc
    try:
        predictor.load_state_dict(weights)
    except RuntimeError as exc:  # missing, unexpected or mis-shaped parameters
        detail = " ".join(str(exc).split())
        raise CheckpointError(f"SAM2 checkpoint {checkpoint} does not fit config {config}: {detail[:300]}") from exc
    if torch.device(device).type != "cuda":
        predictor.memory_attention.register_forward_pre_hook(_memory_in_feature_dtype, with_kwargs=True)
    return predictor
