# SPDX-License-Identifier: Apache-2.0
"""Score the demo's predicted masks and instances against the clip's exact ground truth; draw a picture."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geomotion_core.errors import InputError
from geomotion_core.io.overlay import render_overlay


@dataclass(frozen=True)
class DemoScores:
    """Frame-pooled means of the DAVIS region (J) and boundary (F) measures."""

    j_mean: float
    f_mean: float
    frames: int

    @property
    def j_and_f(self) -> float:
        return (self.j_mean + self.f_mean) / 2


@dataclass(frozen=True)
class InstanceScores:
    """Instance J and F (``davis2017-multi``: objects matched to ids, means over the objects) and id switches."""

    j_mean: float
    f_mean: float
    objects: int
    switches: int

    @property
    def j_and_f(self) -> float:
        return (self.j_mean + self.f_mean) / 2


def read_masks(folder: Path, names: list[str]) -> np.ndarray:
    """Boolean ``[N, H, W]`` stack of ``folder/<name>.png`` (foreground = value > 0)."""
    return read_label_maps(folder, names, "predicted mask") > 0


def read_label_maps(folder: Path, names: list[str], what: str = "instance map") -> np.ndarray:
    """``[N, H, W]`` stack of the labels of ``folder/<name>.png`` (palette indices of indexed PNGs)."""
    from geomotion_core.eval.masks import read_labels

    maps = []
    for name in names:
        path = folder / f"{name}.png"
        if not path.is_file():
            raise InputError(f"{what} {path} is missing")
        maps.append(read_labels(path))
    return np.stack(maps)


def score_masks(predicted: np.ndarray, ground_truth: np.ndarray) -> DemoScores:
    """J and F of boolean stacks ``[N, H, W]`` with the official per-frame definitions."""
    from geomotion_core.eval.metrics import batch_scores

    j_values, f_values = batch_scores(predicted, ground_truth)
    return DemoScores(float(np.mean(j_values)), float(np.mean(f_values)), len(j_values))


def score_instances(predicted: np.ndarray, truth: np.ndarray) -> InstanceScores:
    """Instance scores of predicted id maps ``[N, H, W]`` against the clip's object maps."""
    from geomotion_core.eval.protocols import score_sequence
    from geomotion_core.instances.identity import identity_scores

    objects = score_sequence("davis2017-multi", "demo", predicted, truth)
    j_mean = float(np.mean([np.mean(item.J) for item in objects])) if objects else 0.0
    f_mean = float(np.mean([np.mean(item.F) for item in objects])) if objects else 0.0
    return InstanceScores(j_mean, f_mean, len(objects), identity_scores(predicted, truth).switches)


def comparison_picture(frame: np.ndarray, ground_truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """One RGB strip: input frame | ground truth overlay | prediction overlay."""
    gap = np.full((frame.shape[0], 4, 3), 255, np.uint8)
    return np.concatenate([frame, gap, render_overlay(frame, ground_truth), gap, render_overlay(frame, predicted)], axis=1)
