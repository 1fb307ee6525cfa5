# SPDX-License-Identifier: Apache-2.0
"""Build a SAM2 video predictor from a user's config file and checkpoint.

The config's ``model`` is read with OmegaConf, its parts (image encoder, memory attention, ...)
are instantiated with Hydra's public ``instantiate``, and the predictor class is called with them:
:class:`~geomotion_core.refine.sam2_predictor.ClipFeatureCachePredictor` or SAM2's own
``SAM2VideoPredictor``, with the post-processing sam2's video builder applies. No Hydra global
state is touched, so any YAML file works (a bundled one or the user's), building works any number
of times in one process, and the ``sam2`` package's own Hydra set-up is left as it is. What is
relied on in sam2 beyond its public API is checked first (:mod:`geomotion_core.refine.sam2_contract`).
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from geomotion_core.errors import CheckpointError
from geomotion_core.refine.sam2_contract import VIDEO_PREDICTOR_SETTINGS, Sam2ContractError, check_sam2
from geomotion_core.weights import require_weight

if TYPE_CHECKING:
    from omegaconf import DictConfig
    from sam2.sam2_video_predictor import SAM2VideoPredictor

SAM2_MODULES = "sam2."  # every _target_ of a SAM2 config names a class of the sam2 package


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


def _memory_in_feature_dtype(_: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Forward pre-hook of SAM2's memory attention: cast the stored memory to the features' dtype.

    SAM2 always stores its frame memories in bfloat16 and relies on CUDA autocast to mix them with
    float32 features; without autocast (the CPU) a frame tracked before every prompt, whose memory
    holds no float32 object pointers, would fail with a dtype mismatch. SAM2 calls the memory
    attention with keywords ``curr=`` and ``memory=``; a call without them raises
    ``Sam2ContractError`` instead of passing unconverted.
    """
    current, memory = kwargs.get("curr"), kwargs.get("memory")
    if args or current is None or memory is None:
        raise Sam2ContractError(
            "SAM2's memory attention was not called with the keywords curr= and memory= "
            f"(positional: {len(args)}, keywords: {', '.join(kwargs) or 'none'}): this sam2 is not supported"
        )
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


def read_sam2_model_config(config: Path, image_size: int | None = None) -> DictConfig:
    """The ``model`` of a SAM2 YAML with the video builder's post-processing (and ``image_size``)."""
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    settings = {**VIDEO_PREDICTOR_SETTINGS, **({"image_size": str(image_size)} if image_size else {})}
    try:
        document = OmegaConf.load(config)
        model = document.get("model") if isinstance(document, DictConfig) else None
        if not isinstance(model, DictConfig):
            raise CheckpointError(f"SAM2 config {config} has no \"model\" mapping")
        model = OmegaConf.merge(model, OmegaConf.from_dotlist([f"{key}={value}" for key, value in settings.items()]))
        OmegaConf.resolve(model)
    except (OSError, OmegaConfBaseException, ValueError) as exc:  # unreadable YAML, bad interpolation
        raise CheckpointError(f"SAM2 config {config} is not a readable SAM2 model config: {exc}") from exc
    foreign = sorted({target for target in _targets(model) if not target.startswith(SAM2_MODULES)})
    if foreign:
        raise CheckpointError(f"SAM2 config {config} names classes outside sam2 ({', '.join(foreign)}); refused")
    return model


def _targets(node: Any) -> Iterator[str]:
    """Every ``_target_`` in a config tree."""
    from omegaconf import DictConfig, ListConfig

    if isinstance(node, DictConfig):
        for key, value in node.items():
            if key == "_target_":
                yield str(value)
            else:
                yield from _targets(value)
    elif isinstance(node, ListConfig):
        for value in node:
            yield from _targets(value)


def _video_predictor(model: DictConfig, config: Path, cache_clip_features: bool) -> SAM2VideoPredictor:
    """The predictor class called with the instantiated parts of ``model``."""
    from hydra.utils import get_class, instantiate
    from sam2.modeling.sam2_base import SAM2Base
    from sam2.sam2_video_predictor import SAM2VideoPredictor

    from geomotion_core.refine.sam2_predictor import ClipFeatureCachePredictor

    predictor_class = ClipFeatureCachePredictor if cache_clip_features else SAM2VideoPredictor
    parts = model.copy()
    target = parts.pop("_target_", None)
    try:
        if target is None or not issubclass(get_class(str(target)), SAM2Base):
            raise CheckpointError(f"SAM2 config {config}: the model is {target}, not a SAM2 model (SAM2Base)")
        return predictor_class(**instantiate(parts))
    except CheckpointError:
        raise
    except Exception as exc:  # Hydra/OmegaConf/constructor errors: the YAML is not a SAM2 model
        raise CheckpointError(f"SAM2 config {config} does not describe a SAM2 model: {exc}") from exc


def build_sam2_predictor(
    config: Path,
    checkpoint: Path,
    device: str | torch.device = "cpu",
    image_size: int | None = None,
    cache_clip_features: bool = True,
) -> SAM2VideoPredictor:
    """A SAM2 video predictor in eval mode on ``device`` with the video builder's post-processing.

    Off CUDA, where there is no autocast, the bfloat16 frame memories SAM2 stores are cast to
    float32 before its memory attention (see ``_memory_in_feature_dtype``).

    Args:
        config: a SAM2 model YAML (e.g. the bundled ``configs/sam2.1/sam2.1_hiera_l.yaml``).
        checkpoint: the matching official checkpoint (``sam2.1_hiera_large.pt``).
        device: where SAM2 runs.
        image_size: SAM2's input side; None keeps the config's (1024 for the official models).
        cache_clip_features: encode each frame of a clip once (``ClipFeatureCachePredictor``)
            instead of SAM2's one-frame cache; same results, about a third of the encoder work.
    Raises:
        Sam2ContractError: the installed sam2 is not a supported version or changed what is relied on.
        CheckpointError: the config or the checkpoint is unreadable, or they do not fit each other.
    """
    check_sam2()
    model = read_sam2_model_config(config, image_size)
    weights = read_sam2_state_dict(checkpoint)
    predictor = _video_predictor(model, config, cache_clip_features)
    try:
        predictor.load_state_dict(weights)
    except RuntimeError as exc:  # missing, unexpected or mis-shaped parameters
        detail = " ".join(str(exc).split())
        raise CheckpointError(f"SAM2 checkpoint {checkpoint} does not fit config {config}: {detail[:300]}") from exc
    predictor = predictor.to(device).eval()
    if torch.device(device).type != "cuda":
        predictor.memory_attention.register_forward_pre_hook(_memory_in_feature_dtype, with_kwargs=True)
    return predictor
