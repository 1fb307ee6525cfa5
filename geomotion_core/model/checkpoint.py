# SPDX-License-Identifier: Apache-2.0
"""Reading and writing GeoMotion weights without executing pickled code.

Readable files (the format is recognised from the content, not the file name):

* the official GeoMotion ``best_model.pth`` (``model_state_dict`` inside a torch file; read with
  ``torch.load(weights_only=True)``; a ``module.`` prefix is stripped);
* the official Pi3 ``model.safetensors``: everything but the motion fusion, which keeps its
  default initialisation; the motion decoder and head start from Pi3's confidence decoder and
  head (they share the official ``conf_decoder`` / ``conf_head`` names);
* our own format: safetensors with official key names and the ``GeoMotionConfig`` as JSON in the
  file's metadata (written by ``save_checkpoint``).
"""
from __future__ import annotations

import json
import os
import pickle
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from geomotion_core.errors import CheckpointError, ConfigError
from geomotion_core.model.config import GeoMotionConfig
from geomotion_core.model.geomotion import GeoMotion
from geomotion_core.model.state_dict import GEOMOTION_ONLY_PREFIXES, KeyReport, to_official_key

FORMAT_TAG = "geomotion"
FORMAT_VERSION = "1"
_ZIP_MAGIC = b"PK"
# A Pi3 file lacks the motion fusion; its normalisation constants are taken from the config if absent.
PI3_OPTIONAL_PREFIXES = (*GEOMOTION_ONLY_PREFIXES, "image_mean", "image_std")
_PICKLE_PROTOCOL_BYTE = 0x80


@dataclass
class LoadReport:
    """What ``load_checkpoint`` read and how every entry was used."""

    path: Path
    kind: str  # "ours", "official-safetensors", "official-pth" (best_model.pth) or "pi3"
    keys: KeyReport
    default_initialised: list[str] = field(default_factory=list)  # official names not in the file
    info: dict[str, Any] = field(default_factory=dict)  # e.g. epoch / best_iou of a .pth

    def summary(self) -> str:
        """One line for logs and the CLI."""
        text = f"{self.path} ({self.kind}): {self.keys.summary()}"
        if self.default_initialised:
            text += f"; default-initialised: {', '.join(self.default_initialised)}"
        return text


def load_checkpoint(
    path: str | os.PathLike,
    config: GeoMotionConfig | None = None,
    map_location: str | torch.device = "cpu",
) -> tuple[GeoMotion, LoadReport]:
    """Build a ``GeoMotion`` from a weight file; raise ``CheckpointError`` unless every entry fits.

    ``config`` gives the architecture of official files (default: the official full size); our
    own files carry theirs. The model is returned in eval mode on ``map_location``.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    info: dict[str, Any] = {}
    allow_missing: tuple[str, ...] = ()
    if _is_safetensors(path):
        state, metadata = _read_safetensors(path, map_location)
        if metadata.get("format") == FORMAT_TAG:
            kind = "ours"
            config = _stored_config(path, metadata, config)
        elif any(key.startswith(GEOMOTION_ONLY_PREFIXES) for key in state):
            kind = "official-safetensors"
        else:
            kind = "pi3"
            allow_missing = PI3_OPTIONAL_PREFIXES
    else:
        state, info = _read_torch(path, map_location)
        kind = "official-pth"
    _check_finite(path, state)
    config = config or GeoMotionConfig.official()
    model = GeoMotion(config, device="meta")
    floats = {key: value.float() if value.is_floating_point() else value for key, value in state.items()}
    try:
        keys = model.load_official_state_dict(
            floats, allow_missing=allow_missing, source=str(path), assign=True
        )
    except CheckpointError as error:
        raise CheckpointError(f"{error} (is the model config right? this one: {_describe(config)})") from None
    default_initialised = _initialise_missing(model, map_location)
    return model.eval(), LoadReport(path, kind, keys, default_initialised, info)


def save_checkpoint(model: GeoMotion, path: str | os.PathLike) -> Path:
    """Write ``model`` in our format (safetensors, official key names, config in the metadata)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().contiguous().cpu() for key, value in model.to_official_state_dict().items()}
    metadata = {
        "format": FORMAT_TAG,
        "format_version": FORMAT_VERSION,
        "config": json.dumps(model.config.to_dict()),
    }
    partial = path.with_name(path.name + ".partial")
    save_file(state, str(partial), metadata=metadata)
    partial.replace(path)
    return path


def _check_finite(path: Path, state: Mapping[str, torch.Tensor]) -> None:
    """Refuse weights holding NaN or infinity (a diverged training run): they give empty masks."""
    bad = [key for key, value in state.items() if value.is_floating_point() and not torch.isfinite(value).all()]
    if bad:
        listed = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise CheckpointError(f"{path}: {len(bad)} tensor(s) hold NaN or infinite values ({listed}); "
                              "the run that wrote them diverged")


def _describe(config: GeoMotionConfig) -> str:
    return (
        f"encoder {config.enc_embed_dim}x{config.enc_depth}, "
        f"decoder {config.dec_embed_dim}x{config.dec_depth}, heads {config.head_dec_embed_dim}"
    )


def _is_safetensors(path: Path) -> bool:
    """Recognise the file by its first bytes: safetensors header, else a torch zip or legacy pickle.

    The safetensors test comes first: its 8-byte header length may begin with any byte.
    """
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(9)
    if not head:
        raise CheckpointError(f"{path}: empty file, not a checkpoint")
    if len(head) == 9 and head[8:9] == b"{":
        header_length = struct.unpack("<Q", head[:8])[0]
        if 8 + header_length > size:
            raise CheckpointError(f"{path}: truncated safetensors file (header claims {header_length} bytes)")
        return True
    if head.startswith(_ZIP_MAGIC) or head[0] == _PICKLE_PROTOCOL_BYTE:
        return False
    raise CheckpointError(f"{path}: not a checkpoint (neither safetensors nor a PyTorch file)")


def _read_safetensors(
    path: Path, device: str | torch.device
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as handle:
            metadata = handle.metadata() or {}
            return {key: handle.get_tensor(key) for key in handle.keys()}, metadata
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(
            f"{path}: unreadable safetensors file (truncated or corrupt): {error}"
        ) from None


def _stored_config(path: Path, metadata: Mapping[str, str], given: GeoMotionConfig | None) -> GeoMotionConfig:
    try:
        stored = GeoMotionConfig.from_dict(json.loads(metadata["config"]))
    except (KeyError, json.JSONDecodeError, ConfigError, TypeError) as error:
        raise CheckpointError(f"{path}: GeoMotion file with an invalid stored config: {error}") from None
    if given is not None and given != stored:
        raise CheckpointError(f"{path}: the file's stored config differs from the config given")
    return stored


def _read_torch(path: Path, device: str | torch.device) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    try:
        with path.open("rb") as stream:  # a file object: torch.load would read a *.safetensors name as safetensors
            content = torch.load(stream, map_location=device, weights_only=True)
    except pickle.UnpicklingError as error:
        message = str(error)
        if "Unsupported global" in message or "GLOBAL" in message or "Unsupported operand" in message:
            raise CheckpointError(
                f"{path}: refused: the file holds pickled code or objects, not only tensors "
                "(checkpoints are read with weights_only=True)"
            ) from None
        first_line = message.splitlines()[0] if message else "unreadable pickle"
        raise CheckpointError(f"{path}: not a PyTorch checkpoint or corrupt ({first_line})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(
            f"{path}: unreadable PyTorch file (truncated or corrupt): {first_line}"
        ) from None
    if isinstance(content, Mapping) and "model_state_dict" in content:
        state = content["model_state_dict"]
        info = {k: v for k, v in content.items() if isinstance(v, (int, float, str))}
    else:
        state, info = content, {}
    tensors_only = isinstance(state, Mapping) and all(isinstance(v, torch.Tensor) for v in state.values())
    if not tensors_only or not state:
        raise CheckpointError(
            f"{path}: PyTorch file without a model state dict (no 'model_state_dict' of tensors)"
        )
    return dict(state), info


def _initialise_missing(model: GeoMotion, device: str | torch.device) -> list[str]:
    """Give what the file did not cover (still on meta) its default value; return official names."""
    initialised = []
    for name, module in model.named_modules():
        own = list(module.parameters(recurse=False))
        if own and any(p.is_meta for p in own):
            module.to_empty(device=device, recurse=False)
            module.reset_parameters()
            initialised.append(_official_prefix(name))
    for name, values in (("image_mean", model.config.image_mean), ("image_std", model.config.image_std)):
        if getattr(model, name).is_meta:
            setattr(model, name, torch.tensor(values, dtype=torch.float32, device=device).reshape(1, 3, 1, 1))
            initialised.append(name)
    return sorted(initialised)


def _official_prefix(module_name: str) -> str:
    return to_official_key(f"{module_name}.weight").removesuffix(".weight")
