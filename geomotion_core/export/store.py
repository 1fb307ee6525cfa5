# SPDX-License-Identifier: Apache-2.0
"""Exports on disk, keyed by everything that decides their content, so a later start reuses them.

An export is reused only when its key matches: the model config, the weights file (resolved path,
size, modification time), the spec and the library versions. Random weights are exported into a
temporary folder that lives as long as the store (nothing to reuse).
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

from geomotion_core.export.onnx_export import MANIFEST, ExportSpec, export_network, library_versions
from geomotion_core.model import GeoMotion
from geomotion_core.weights import weights_home

ENGINES_FOLDER = "engines"
LOGGER = logging.getLogger(__name__)


def weights_identity(checkpoint: str | Path | None) -> str | None:
    """``path:size:mtime`` of a weights file, or None for random weights (never cached)."""
    if checkpoint is None:
        return None
    path = Path(checkpoint).expanduser().resolve()
    stat = path.stat()
    return f"{path}:{stat.st_size}:{stat.st_mtime_ns}"


def export_key(config: dict[str, object], weights: str, spec: ExportSpec, versions: dict[str, str]) -> str:
    """A short hash of what decides an export's content."""
    document = json.dumps({"model": config, "weights": weights, "spec": asdict(spec), "versions": versions},
                          sort_keys=True)
    return hashlib.sha256(document.encode()).hexdigest()[:20]


class ExportStore:
    """Export folders under ``root`` (default ``$GEOMOTION_HOME/engines``)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else weights_home() / ENGINES_FOLDER
        self._temporary: tempfile.TemporaryDirectory | None = None

    def folder(self, model: GeoMotion, weights: str | None, spec: ExportSpec) -> Path:
        """The export folder of ``model`` at ``spec``: reused when its key matches, else exported."""
        if weights is None:
            if self._temporary is None:
                self._temporary = tempfile.TemporaryDirectory(prefix="geomotion-export-")
            folder = Path(self._temporary.name) / f"random-{spec.height}x{spec.width}-{spec.frames or 'dyn'}-{spec.graph}"
            if not (folder / MANIFEST).exists():
                export_network(model, spec, folder)
            return folder
        key = export_key(model.config.to_dict(), weights, spec, library_versions())
        folder = self.root / f"onnx-{spec.height}x{spec.width}-{key}"
        if (folder / MANIFEST).is_file():
            return folder
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        LOGGER.info("exporting the network at %dx%d to %s (once per checkpoint and size)", spec.height, spec.width, folder)
        export_network(model, spec, partial)
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
        return folder

    def close(self) -> None:
        """Delete the temporary folder of random-weight exports."""
        if self._temporary is not None:
            self._temporary.cleanup()
            self._temporary = None
