"""Score the demo's predicted masks against the clip's exact ground truth and draw a picture."""
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


def read_masks(folder: Path, names: list[str]) -> np.ndarray:
    """Boolean ``[N, H, W]`` stack of ``folder/<name>.png`` (foreground = value > 0)."""
    import cv2

    masks = []
    for name in names:
        mask = cv2.imread(str(folder / f"{name}.png"), cv2.IMREAD_GRAYSCALE)
        if mask is None:
            raise InputError(f"predicted mask {folder / name}.png is missing or unreadable")
        masks.append(mask > 0)
    return np.stack(masks)


def score_masks(predicted: np.ndarray, ground_truth: np.ndarray) -> DemoScores:
    """J and F of boolean stacks ``[N, H, W]`` with the official per-frame definitions."""
    from geomotion_core.eval.metrics import batch_scores

    j_values, f_values = batch_scores(predicted, ground_truth)
    return DemoScores(float(np.mean(j_values)), float(np.mean(f_values)), len(j_values))


def comparison_picture(frame: np.ndarray, ground_truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """One RGB strip: input frame | ground truth overlay | prediction overlay."""
    gap = np.full((frame.shape[0], 4, 3), 255, np.uint8)
    return np.concatenate([frame, gap, render_overlay(frame, ground_truth), gap, render_overlay(frame, predicted)], axis=1)
