# SPDX-License-Identifier: Apache-2.0
"""Where weight files are looked for, and which ones exist.

Weights are never downloaded at import or at run time. They are looked for, in order, at an
explicit path given by the user, then in ``$GEOMOTION_HOME`` (default: ``geomotion`` under the
user's cache directory, ``$XDG_CACHE_HOME`` or ``~/.cache``), then, for files that ship inside an
installed package (the SAM2 model config), in that package.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from geomotion_core.errors import CheckpointError, ConfigError

HOME_VARIABLE = "GEOMOTION_HOME"


@dataclass(frozen=True)
class WeightSpec:
    """One expected weight file."""

    key: str
    filename: str
    description: str
    licence: str
    url: str | None = None
    hf_repo: str | None = None
    sha256_prefix: str | None = None  # leading hex digits of the file's sha256, where published
    bundled: tuple[str, str] | None = None  # (package, path inside it) of a copy shipped in a package


WEIGHT_SPECS: tuple[WeightSpec, ...] = (
    WeightSpec(
        key="pi3",
        filename="model.safetensors",
        description="Pi3 4D-reconstruction backbone (initialises training)",
        licence="CC BY-NC 4.0",
        url="https://huggingface.co/yyfz233/Pi3/resolve/main/model.safetensors",
        hf_repo="yyfz233/Pi3",
    ),
    WeightSpec(
        key="geomotion",
        filename="best_model.pth",
        description="GeoMotion checkpoint (backbone + motion decoder)",
        licence="CC BY-NC 4.0",
        url="https://huggingface.co/xingyang1/GeoMotion/resolve/main/best_model.pth",
        hf_repo="xingyang1/GeoMotion",
    ),
    WeightSpec(
        key="raft",
        filename="raft_large_C_T_SKHT_V2-ff5fadd5.pth",
        description="torchvision RAFT-large, C_T_SKHT_V2 weights (optical flow)",
        licence="BSD-3-Clause (torchvision)",
        url="https://download.pytorch.org/models/raft_large_C_T_SKHT_V2-ff5fadd5.pth",
        sha256_prefix="ff5fadd5",
    ),
    WeightSpec(
        key="sam2",
        filename="sam2.1_hiera_large.pt",
        description="SAM 2.1 Hiera-L (mask refinement)",
        licence="Apache-2.0",
        url="https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_large.pt",
    ),
    WeightSpec(
        key="sam2_config",
        filename="sam2.1_hiera_l.yaml",
        description="SAM 2.1 Hiera-L model config (ships inside the sam2 package)",
        licence="Apache-2.0",
        url="https://raw.githubusercontent.com/facebookresearch/sam2/main/sam2/configs/sam2.1/sam2.1_hiera_l.yaml",
        bundled=("sam2", "configs/sam2.1/sam2.1_hiera_l.yaml"),
    ),
)


def weights_home() -> Path:
    """The folder weights are looked for and downloaded to.

    Raises:
        ConfigError: ``$GEOMOTION_HOME`` names something that is not a folder.
    """
    explicit = os.environ.get(HOME_VARIABLE)
    if explicit:
        home = Path(explicit).expanduser()
        if home.exists() and not home.is_dir():
            raise ConfigError(f"${HOME_VARIABLE}={explicit} is not a folder")
        return home
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "geomotion"


def weight_spec(key: str) -> WeightSpec:
    """The spec with this key (``pi3``, ``geomotion``, ``raft``, ``sam2``, ``sam2_config``)."""
    for spec in WEIGHT_SPECS:
        if spec.key == key:
            return spec
    raise KeyError(f"unknown weight {key!r}; known: {', '.join(s.key for s in WEIGHT_SPECS)}")


def package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing it; None if not installed."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def candidate_paths(key: str, explicit: str | os.PathLike | None = None) -> list[Path]:
    """Every path looked at for this weight, in order.

    For a file that ships inside a package (the SAM2 config), an explicit relative name is also
    looked for inside that package (``configs/sam2.1/sam2.1_hiera_t.yaml``), and an explicit name
    is never swapped for the default file: a config chosen by the user is that config or an error.
    """
    spec = weight_spec(key)
    package = package_dir(spec.bundled[0]) if spec.bundled else None
    paths = [Path(explicit).expanduser()] if explicit else []
    if explicit and spec.bundled:
        if package is not None and not paths[0].is_absolute():
            paths.append(package / explicit)
        return paths
    paths.append(weights_home() / spec.filename)
    if package is not None and spec.bundled:
        paths.append(package / spec.bundled[1])
    return paths


def find_weight(key: str, explicit: str | os.PathLike | None = None) -> Path | None:
    """The first existing candidate path, or None."""
    return next((path for path in candidate_paths(key, explicit) if path.is_file()), None)


def looked_at(key: str, explicit: str | os.PathLike | None = None) -> str:
    """The candidate paths of a weight, comma-separated, for messages about a missing file."""
    return ", ".join(str(path) for path in candidate_paths(key, explicit))


def require_weight(key: str, explicit: str | os.PathLike | None = None, *, what: str, hint: str = "") -> Path:
    """The first existing candidate path; otherwise ``CheckpointError`` naming ``what``, every path
    looked at and, if given, ``hint`` (how to get the file)."""
    path = find_weight(key, explicit)
    if path is None:
        suffix = f"; {hint}" if hint else ""
        raise CheckpointError(f"{what} not found (looked at: {looked_at(key, explicit)}){suffix}")
    return path


def file_sha256(
    path: str | os.PathLike, progress: Callable[[int], object] | None = None, chunk_bytes: int = 1 << 20
) -> str:
    """Hex sha256 of a file, read in chunks (weight files are gigabytes); ``progress(bytes_read)``."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(chunk_bytes):
            digest.update(chunk)
            if progress is not None:
                progress(len(chunk))
    return digest.hexdigest()
