"""The TensorRT engine cache decision and the warm-up sizes: pure logic, no GPU needed."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from geomotion_core.errors import ConfigError
from geomotion_core.export import engine_cache
from geomotion_core.export.engine_cache import EngineFields, decide
from geomotion_core.pipeline.network_backend import warmup_sizes

FIELDS = EngineFields(graph="ab" * 32, precision="bf16", min_frames=1, opt_frames=8, max_frames=64,
                      gpu_name="NVIDIA H200", compute_capability="9.0", tensorrt_version="10.13.0",
                      cuda_version="13.0")


def test_a_matching_engine_is_loaded():
    assert decide(asdict(FIELDS), FIELDS, engine_exists=True).load


@pytest.mark.parametrize("change", [
    {"gpu_name": "NVIDIA GeForce RTX 5090"},  # a foreign GPU
    {"compute_capability": "8.7"},  # Jetson Orin
    {"tensorrt_version": "10.14.1"},  # another TensorRT
    {"graph": "cd" * 32},  # a re-exported graph
    {"precision": "fp16"},
    {"max_frames": 32},
    {"cuda_version": "12.8"},
])
def test_a_stale_or_foreign_engine_is_rebuilt_naming_the_change(change):
    current = replace(FIELDS, **change)
    decision = decide(asdict(FIELDS), current, engine_exists=True)
    assert not decision.load
    (name,) = change
    assert name in decision.reason and repr(change[name]) in decision.reason


def test_missing_engine_missing_key_or_extra_field_is_rebuilt():
    assert not decide(asdict(FIELDS), FIELDS, engine_exists=False).load
    assert not decide(None, FIELDS, engine_exists=True).load
    extra = {**asdict(FIELDS), "int8": True}
    decision = decide(extra, FIELDS, engine_exists=True)
    assert not decision.load and "int8" in decision.reason


def test_engine_file_names_carry_the_key(tmp_path: Path):
    engine, sidecar = engine_cache.engine_paths(tmp_path, "decoder", FIELDS)
    other, _ = engine_cache.engine_paths(tmp_path, "decoder", replace(FIELDS, gpu_name="Orin"))
    assert engine.name.startswith("decoder.bf16.") and engine.suffix == ".engine" and sidecar.suffix == ".json"
    assert engine != other and FIELDS.key() == replace(FIELDS).key()


def test_sidecar_reading(tmp_path: Path):
    path = tmp_path / "decoder.json"
    assert engine_cache.read_sidecar(path) is None
    path.write_text("{not json")
    assert engine_cache.read_sidecar(path) is None
    path.write_text("[1, 2]")
    assert engine_cache.read_sidecar(path) is None
    path.write_text(json.dumps(asdict(FIELDS)))
    assert decide(engine_cache.read_sidecar(path), FIELDS, engine_exists=True).load


def test_graph_identity_follows_the_graph_and_its_weights(tmp_path: Path):
    graph, data = tmp_path / "decoder.onnx", tmp_path / "decoder.onnx.data"
    graph.write_bytes(b"graph-1")
    data.write_bytes(b"weights")
    first = engine_cache.graph_identity(graph)
    assert engine_cache.graph_identity(graph) == first
    stat = data.stat()
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # weights rewritten
    second = engine_cache.graph_identity(graph)
    assert second != first
    graph.write_bytes(b"graph-2")
    assert engine_cache.graph_identity(graph) not in (first, second)


def test_warmup_sizes():
    assert warmup_sizes([8, 1, 2, 2]) == [1, 2, 8]
    assert warmup_sizes(range(1, 9)) == list(range(1, 9))
    for bad in ([], [0, 1], [-2], [1.5]):
        with pytest.raises(ConfigError):
            warmup_sizes(bad)


@pytest.mark.slow  # compiles the small network for two window sizes
def test_warmup_routes_the_torch_engine_through_one_graph_per_window(small_reference):
    """The warm-up logic on the CPU, with torch.compile's tracing-only backend (inductor's C++
    compilation takes minutes per window length on a busy 2-core CPU; tests/test_export_cuda.py
    runs the real CUDA-graph path)."""
    import numpy as np
    import torch

    from geomotion_core.backends import build_backend
    from geomotion_core.export.engines import CompiledNetwork

    options = small_reference.backend_options(size=56)
    eager, backend = build_backend(options), build_backend(options)
    backend.network = CompiledNetwork(backend.model, backend="eager")
    torch._dynamo.reset()
    seconds = backend.warmup([2, 1, 2], compile=True)
    assert sorted(seconds) == [1, 2] and isinstance(backend.network, CompiledNetwork)
    frames = np.random.default_rng(0).integers(0, 256, (2, 60, 80, 3), dtype=np.uint8)
    for count in (1, 2):
        got, expected = backend.predict_window(frames[:count]), eager.predict_window(frames[:count])
        assert np.abs(got.probability - expected.probability).max() <= 1e-5
        assert np.abs(got.poses - expected.poses).max() <= 1e-5
    tokens = backend.network.encode(torch.rand(1, 2, 3, 56, 56))
    assert tokens.shape == (1, 2, 16, 64) and tokens._base is None  # a clone, not a replay buffer's view
    with pytest.raises(ConfigError, match="frame size"):
        build_backend(replace(options, keep_aspect=True)).warmup([1])
