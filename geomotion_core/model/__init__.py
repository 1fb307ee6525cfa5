# SPDX-License-Identifier: Apache-2.0
"""The GeoMotion network (Pi3 backbone + motion fusion + motion decoder), its config and checkpoints."""
from geomotion_core.model.checkpoint import LoadReport, load_checkpoint, save_checkpoint
from geomotion_core.model.config import GeoMotionConfig
from geomotion_core.model.geomotion import GeoMotion, GeoMotionOutput

__all__ = [
    "GeoMotion", "GeoMotionConfig", "GeoMotionOutput", "LoadReport", "load_checkpoint", "save_checkpoint",
]
