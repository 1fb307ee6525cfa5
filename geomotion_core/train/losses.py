# SPDX-License-Identifier: Apache-2.0
"""Motion-mask losses: BCE + Dice (the official code's default) and Focal + Dice (the paper).

The official loss is ``nn.BCELoss`` on ``sigmoid(conf)``; here the BCE and focal terms take the
logits (``conf``) instead, which is the same function without the ``log(0)`` clamp and stays finite
for saturated predictions. Dice is the official batch-global form
``1 - (2 sum(p g) + eps) / (sum(p) + sum(g) + eps)`` with ``eps = 1e-6``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from geomotion_core.train.config import LossConfig

DICE_EPS = 1e-6


def dice_loss(probability: torch.Tensor, target: torch.Tensor, eps: float = DICE_EPS) -> torch.Tensor:
    """Soft Dice loss over the whole batch flattened."""
    overlap = (probability * target).sum()
    return 1.0 - (2.0 * overlap + eps) / (probability.sum() + target.sum() + eps)


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float, gamma: float) -> torch.Tensor:
    """Binary focal loss (Lin et al.), mean over pixels: ``alpha_t (1 - p_t)^gamma BCE``."""
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = torch.exp(-bce)
    alpha_t = alpha * target + (1.0 - alpha) * (1.0 - target)
    return (alpha_t * (1.0 - p_t).pow(gamma) * bce).mean()


class MotionLoss(torch.nn.Module):
    """The configured combination; ``forward`` returns the total and its weighted parts."""

    def __init__(self, config: LossConfig) -> None:
        super().__init__()
        self.config = config

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``logits`` and ``target`` ``[B, N, H, W]``; the loss is computed in float32."""
        logits, target = logits.float(), target.float()
        config = self.config
        if config.kind == "bce_dice":
            parts = {"bce": config.bce_weight * F.binary_cross_entropy_with_logits(logits, target)}
        else:
            parts = {"focal": config.focal_weight * focal_loss(logits, target, config.focal_alpha, config.focal_gamma)}
        parts["dice"] = config.dice_weight * dice_loss(torch.sigmoid(logits), target)
        return sum(parts.values()), parts
