"""Random-weight stand-ins for the RAFT and SAM2 weight files, for speed benchmarks.

Run time does not depend on the weights' values, so a GPU machine without the real files (they
cannot be downloaded everywhere) can still time the official pipeline. The files are written at the
standard names into a temporary ``$GEOMOTION_HOME``; nothing here is used by the package itself.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch

from geomotion_core.weights import HOME_VARIABLE, require_weight, weight_spec


def write_random_raft(folder: Path) -> Path:
    """A randomly initialised torchvision RAFT-large state dict under its official file name."""
    from torchvision.models.optical_flow import raft_large

    path = folder / weight_spec("raft").filename
    torch.save(raft_large(weights=None).state_dict(), path)
    return path


def write_random_sam2(folder: Path) -> Path:
    """A randomly initialised SAM 2.1 Hiera-L checkpoint (``{"model": state_dict}``) under its
    official file name, built from the config that ships in the sam2 package."""
    from sam2.build_sam import build_sam2_video_predictor

    config = require_weight("sam2_config", what="SAM2 config")
    model = build_sam2_video_predictor(f"configs/sam2.1/{config.name}", ckpt_path=None, device="cpu")
    path = folder / weight_spec("sam2").filename
    torch.save({"model": model.state_dict()}, path)
    return path


@contextlib.contextmanager
def random_weights_home(keys: tuple[str, ...] = ("raft", "sam2")) -> Iterator[Path]:
    """A temporary ``$GEOMOTION_HOME`` holding random stand-ins for ``keys`` while the block runs."""
    writers = {"raft": write_random_raft, "sam2": write_random_sam2}
    previous = os.environ.get(HOME_VARIABLE)
    with tempfile.TemporaryDirectory(prefix="geomotion-random-weights-") as folder:
        for key in keys:
            writers[key](Path(folder))
        os.environ[HOME_VARIABLE] = folder
        try:
            yield Path(folder)
        finally:
            if previous is None:
                os.environ.pop(HOME_VARIABLE, None)
            else:
                os.environ[HOME_VARIABLE] = previous
