# SPDX-License-Identifier: Apache-2.0
"""Offline training of GeoMotion's motion branch: datasets, clip sampling and mixing, flow cache,
losses, the trainer (one process or torchrun DDP) and its checkpoints. See docs/training.md.

Importing the package loads only the configuration classes; the loop is
``geomotion_core.train.trainer.Trainer`` and the command ``geomotion train``.
"""
from geomotion_core.train.config import (
    AugmentConfig,
    DataConfig,
    DatasetConfig,
    LossConfig,
    OptimConfig,
    TrainConfig,
)

__all__ = ["AugmentConfig", "DataConfig", "DatasetConfig", "LossConfig", "OptimConfig", "TrainConfig"]
