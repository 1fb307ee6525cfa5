# SPDX-License-Identifier: Apache-2.0
"""Official state-dict key names, and a key-by-key comparison of a state dict with a model."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

import torch

from geomotion_core.errors import CheckpointError
from geomotion_core.model.camera_head import BLOCK_LAYERS, NUM_BLOCKS

# The camera head's residual blocks: ours ``blocks.i.linearK``, official ``res_conv.i.res_convK``.
CAMERA_BLOCK_RULES: tuple[tuple[str, str], ...] = tuple(
    (f"camera_head.blocks.{block}.linear{layer}.", f"camera_head.res_conv.{block}.res_conv{layer}.")
    for block in range(NUM_BLOCKS)
    for layer in range(1, BLOCK_LAYERS + 1)
)

# (our name, official name), in the order of the official state dict; a rule ending in "." maps
# a prefix, any other rule one exact key; the first rule that matches applies. docs/model.md
# has the same table.
NAME_RULES: tuple[tuple[str, str], ...] = (
    ("aggregator.register_token", "register_token"),
    ("image_mean", "image_mean"),
    ("image_std", "image_std"),
    ("encoder.", "encoder."),
    ("aggregator.blocks.", "decoder."),
    ("motion_fusion.", "motion_aware_decoder."),
    ("point_decoder.", "point_decoder."),
    ("point_head.", "point_head."),
    ("motion_decoder.", "conf_decoder."),
    ("motion_head.", "conf_head."),
    ("camera_decoder.", "camera_decoder."),
    *CAMERA_BLOCK_RULES,
    ("camera_head.", "camera_head."),
)

# Official modules the Pi3 backbone file does not contain (the motion fusion is new in GeoMotion).
GEOMOTION_ONLY_PREFIXES = ("motion_aware_decoder.",)


def _rename(key: str, source: int, target: int) -> tuple[int, str] | None:
    for order, rule in enumerate(NAME_RULES):
        pattern = rule[source]
        if pattern.endswith(".") and key.startswith(pattern):
            return order, rule[target] + key[len(pattern):]
        if key == pattern:
            return order, rule[target]
    return None


def to_official_key(key: str) -> str:
    """Official name of one of our state-dict keys."""
    renamed = _rename(key, 0, 1)
    if renamed is None:
        raise KeyError(f"no official name for {key!r}")
    return renamed[1]


def from_official_key(key: str) -> str | None:
    """Our name of an official key, or ``None`` when no module of ours has that prefix."""
    renamed = _rename(key, 1, 0)
    return None if renamed is None else renamed[1]


def to_official(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename our state dict to official keys, in the official module order."""
    renamed = [(*_rename(key, 0, 1), value) for key, value in state.items()]  # type: ignore[misc]
    renamed.sort(key=lambda item: item[0])
    return {key: value for _, key, value in renamed}


def strip_prefix(state: Mapping[str, torch.Tensor], prefix: str = "module.") -> dict[str, torch.Tensor]:
    """Drop a DistributedDataParallel ``module.`` prefix when every key carries it."""
    if state and all(key.startswith(prefix) for key in state):
        return {key[len(prefix):]: value for key, value in state.items()}
    return dict(state)


@dataclass
class KeyReport:
    """How an (official-named) state dict lines up with a model, key by key."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    loaded: int = 0

    @property
    def exact(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self, limit: int = 5) -> str:
        """One line: counts and the first few offending keys of each kind."""
        parts = []
        for label, items in (
            ("missing", self.missing),
            ("unexpected", self.unexpected),
            ("wrong shape", [f"{k} (model {tuple(m)}, file {tuple(f)})" for k, m, f in self.mismatched]),
        ):
            if items:
                shown = ", ".join(items[:limit]) + (", ..." if len(items) > limit else "")
                parts.append(f"{len(items)} {label}: {shown}")
        return "; ".join(parts) if parts else f"all {self.loaded} entries match"


def compare(
    expected: Mapping[str, torch.Size | tuple[int, ...]],
    found: Mapping[str, torch.Tensor],
    allow_missing: Iterable[str] = (),
) -> KeyReport:
    """Compare official-named ``found`` tensors with the ``expected`` shapes.

    Keys under an ``allow_missing`` prefix may be absent without counting as missing.
    """
    allowed = tuple(allow_missing)
    report = KeyReport()
    for key, shape in expected.items():
        if key not in found:
            if not key.startswith(allowed):
                report.missing.append(key)
        elif tuple(found[key].shape) != tuple(shape):
            report.mismatched.append((key, tuple(shape), tuple(found[key].shape)))
        else:
            report.loaded += 1
    report.unexpected = [key for key in found if key not in expected]
    return report


def require_exact(report: KeyReport, source: str) -> None:
    """Raise ``CheckpointError`` naming ``source`` unless the report is exact."""
    if not report.exact:
        raise CheckpointError(f"{source} does not fit this GeoMotion architecture: {report.summary()}")
