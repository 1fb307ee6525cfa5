"""Where weight files are looked for, and which ones exist.

Weights are never downloaded at import or at run time. They are looked for, in order, at an
explicit path given by the user, then in ``$GEOMOTION_HOME`` (default: ``geomotion`` under the
user's cache directory, ``$XDG_CACHE_HOME`` or ``~/.cache``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

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


WEIGHT_SPECS: tuple[WeightSpec, ...] = (
    WeightSpec(
        key="pi3",
        filename="model.safetensors",
        description="Pi3 4D-reconstruction backbone (initialises training)",
        licence="CC BY-NC 4.0",
        hf_repo="yyfz233/Pi3",
    ),
    WeightSpec(
        key="geomotion",
        filename="best_model.pth",
        description="GeoMotion checkpoint (backbone + motion decoder)",
        licence="CC BY-NC 4.0",
    ),
    WeightSpec(
        key="raft",
        filename="raft_large_C_T_SKHT_V2-ff5fadd5.pth",
        description="torchvision RAFT-large, C_T_SKHT_V2 weights (optical flow)",
        licence="BSD-3-Clause (torchvision)",
        url="https://download.pytorch.org/models/raft_large_C_T_SKHT_V2-ff5fadd5.pth",
    ),
    WeightSpec(
        key="sam2",
        filename="sam2.1_hiera_large.pt",
        description="SAM 2.1 Hiera-L (mask refinement)",
        licence="Apache-2.0",
        url="https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_large.pt",
    ),
)


def weights_home() -> Path:
    """The folder weights are looked for and downloaded to."""
    explicit = os.environ.get(HOME_VARIABLE)
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "geomotion"


def weight_spec(key: str) -> WeightSpec:
    """The spec with this key (``pi3``, ``geomotion``, ``raft``, ``sam2``)."""
    for spec in WEIGHT_SPECS:
        if spec.key == key:
            return spec
    raise KeyError(f"unknown weight {key!r}; known: {', '.join(s.key for s in WEIGHT_SPECS)}")


def candidate_paths(key: str, explicit: str | os.PathLike | None = None) -> list[Path]:
    """Every path looked at for this weight, in order."""
    paths = [Path(explicit).expanduser()] if explicit else []
    paths.append(weights_home() / weight_spec(key).filename)
    return paths


def find_weight(key: str, explicit: str | os.PathLike | None = None) -> Path | None:
    """The first existing candidate path, or None."""
    return next((path for path in candidate_paths(key, explicit) if path.is_file()), None)
