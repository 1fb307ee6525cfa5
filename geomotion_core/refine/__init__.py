# SPDX-License-Identifier: Apache-2.0
"""SAM2 refinement of motion masks through the ``sam2`` package (config and checkpoint are user files)."""
from geomotion_core.refine.sam2_loading import build_sam2_predictor, resolve_sam2_files
from geomotion_core.refine.sam2_refiner import Sam2Refiner, Sam2RefinerOptions

__all__ = ["Sam2Refiner", "Sam2RefinerOptions", "build_sam2_predictor", "resolve_sam2_files"]
