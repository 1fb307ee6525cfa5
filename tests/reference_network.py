"""The reference sets of ``tests/data/reference`` as test inputs: a small network with official-format
weights, and the official code's inputs and outputs for it."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from geomotion_core.backend import BackendOptions
    from geomotion_core.model import GeoMotion, GeoMotionConfig


@dataclass(frozen=True)
class ReferenceNetwork:
    """One reference set of ``tests/data/reference`` (``small``, ``small_nonsquare``): a small network's
    config and official-format weights, with the official code's inputs and outputs for them."""

    folder: Path

    @property
    def config_path(self) -> Path:
        return self.folder / "config.json"

    @property
    def weights_path(self) -> Path:
        return self.folder / "weights.safetensors"

    def document(self) -> dict[str, Any]:
        """``config.json``: ``model`` (GeoMotionConfig keys), ``full_size_model`` and ``derived``."""
        return json.loads(self.config_path.read_text())

    def config(self) -> GeoMotionConfig:
        """The ``GeoMotionConfig`` of the set."""
        from geomotion_core.model import GeoMotionConfig

        return GeoMotionConfig.from_dict(self.document()["model"])

    def tensors(self, name: str) -> dict[str, torch.Tensor]:
        """The tensors of ``<name>.safetensors`` (``weights``, ``inputs``, ``outputs``, ...)."""
        from safetensors.torch import load_file

        return load_file(self.folder / f"{name}.safetensors")

    def model(self) -> GeoMotion:
        """A fresh ``GeoMotion`` in eval mode with the set's weights, every key loaded exactly."""
        from geomotion_core.model import GeoMotion

        model = GeoMotion(self.config()).eval()
        report = model.load_official_state_dict(self.tensors("weights"))
        assert report.exact and report.loaded == 602, report.summary()
        return model

    def cli_arguments(self) -> list[str]:
        """``--model-config`` and ``--checkpoint`` options naming the set's files."""
        return ["--model-config", str(self.config_path), "--checkpoint", str(self.weights_path)]

    def backend_options(self, **changes: Any) -> BackendOptions:
        """``BackendOptions`` of the set's network with DIS flow on the CPU, plus ``changes``."""
        from geomotion_core.backend import BackendOptions

        settings = {"model_config": str(self.config_path), "checkpoint": str(self.weights_path),
                    "flow": "dis", "device": "cpu"}
        return BackendOptions(**{**settings, **changes})
