# SPDX-License-Identifier: Apache-2.0
"""When a cached TensorRT engine may be loaded: a pure decision on its recorded key fields.

A serialised engine only runs on the GPU model, TensorRT version and graph it was built for, at
the precision and shape range it was built with. Each engine file has a JSON sidecar with these
fields; an engine is loaded only when every field equals the current one, else it is rebuilt.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

ENGINE_SUFFIX = ".engine"
SIDECAR_SUFFIX = ".json"


@dataclass(frozen=True)
class EngineFields:
    """Everything a serialised engine depends on."""

    graph: str  # identity of the ONNX file: sha256 of the graph + size/mtime of its weights file
    precision: str  # fp32 | fp16 | bf16
    min_frames: int
    opt_frames: int
    max_frames: int
    gpu_name: str
    compute_capability: str  # "9.0"
    tensorrt_version: str
    cuda_version: str

    def key(self) -> str:
        """A short hash of all fields (part of the engine's file name)."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CacheDecision:
    load: bool
    reason: str


def decide(stored: dict[str, object] | None, current: EngineFields, engine_exists: bool) -> CacheDecision:
    """Load the cached engine only when it exists and its sidecar records exactly ``current``."""
    if not engine_exists:
        return CacheDecision(False, "no cached engine")
    if stored is None:
        return CacheDecision(False, "cached engine has no readable key file")
    wanted = asdict(current)
    changed = [f"{name}: {stored.get(name)!r} -> {value!r}" for name, value in wanted.items() if stored.get(name) != value]
    extra = sorted(set(stored) - set(wanted))
    if changed or extra:
        return CacheDecision(False, "cached engine is stale (" + "; ".join(changed + [f"unknown field {e}" for e in extra]) + ")")
    return CacheDecision(True, "cached engine matches")


def engine_paths(folder: Path, graph_name: str, fields: EngineFields) -> tuple[Path, Path]:
    """``(engine, sidecar)`` paths of a graph's engine for these fields."""
    stem = f"{graph_name}.{fields.precision}.{fields.key()}"
    return folder / f"{stem}{ENGINE_SUFFIX}", folder / f"{stem}{SIDECAR_SUFFIX}"


def read_sidecar(path: Path) -> dict[str, object] | None:
    """The recorded fields, or None when the file is missing or not a JSON object."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def graph_identity(onnx_path: Path) -> str:
    """sha256 of the ONNX graph file plus the size and modification time of its weights file."""
    digest = hashlib.sha256(onnx_path.read_bytes())
    data = onnx_path.with_name(onnx_path.name + ".data")
    if data.exists():
        stat = data.stat()
        digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()
