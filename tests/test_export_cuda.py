"""The GPU engines (skipped on machines without CUDA; TensorRT tests also without `tensorrt`).

TensorRT engines built from the small reference export must give masks within 0.02 of PyTorch's
bf16 autocast, be cached on disk and loaded again without a rebuild, and be rebuilt when their key
file says another GPU built them. The compiled torch engine (CUDA graphs) warmed up for the
streaming node's window lengths must give the eager outputs.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from geomotion_core.backends import build_backend
from geomotion_core.export.onnx_export import ExportSpec, graph_files
from geomotion_core.export.store import ExportStore, weights_identity

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

MASK_TOLERANCE = 0.02
SIZE = 56


@pytest.fixture(scope="module")
def small_export(small_reference, tmp_path_factory) -> Path:
    store = ExportStore(tmp_path_factory.mktemp("engines"))
    return store.folder(small_reference.model(), weights_identity(small_reference.weights_path), ExportSpec(SIZE, SIZE))


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_tensorrt_masks_match_pytorch_bf16(small_reference, small_export, precision):
    pytest.importorskip("tensorrt")
    from geomotion_core.export.tensorrt_engine import TensorRtNetwork

    inputs = small_reference.tensors("inputs")
    images, flow = inputs["imgs"].cuda(), inputs["flows"].cuda()
    model = small_reference.model().cuda()
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        expected = model(images, flow).motion_mask.float()
    network = TensorRtNetwork(small_export, torch.device("cuda"), precision)
    with torch.inference_mode():
        got = network(images, flow).motion_mask
    assert float((got - expected).abs().max()) <= MASK_TOLERANCE


def test_tensorrt_engine_is_cached_and_a_foreign_one_rebuilt(small_export):
    pytest.importorskip("tensorrt")
    from geomotion_core.export.tensorrt_engine import TensorRtNetwork

    TensorRtNetwork(small_export, torch.device("cuda"), "fp16")
    engines = sorted(small_export.glob("decoder.fp16.*.engine"))
    assert len(engines) == 1
    built = engines[0].stat().st_mtime_ns
    TensorRtNetwork(small_export, torch.device("cuda"), "fp16")
    assert engines[0].stat().st_mtime_ns == built  # loaded, not rebuilt
    sidecar = engines[0].with_suffix(".json")
    fields = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**fields, "gpu_name": "another GPU"}))
    TensorRtNetwork(small_export, torch.device("cuda"), "fp16")
    assert engines[0].stat().st_mtime_ns != built  # rebuilt
    assert json.loads(sidecar.read_text()) == fields
    assert set(graph_files(small_export, "split")) == {"encoder", "decoder"}


def test_compiled_torch_engine_warms_up_the_streaming_windows(small_reference):
    options = small_reference.backend_options(size=SIZE, device="cuda")
    eager, compiled = build_backend(options), build_backend(options)
    seconds = compiled.warmup(range(1, 9))
    assert sorted(seconds) == list(range(1, 9))
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (8, 60, 80, 3), dtype=np.uint8)
    for count in (1, 4, 8):
        got, expected = compiled.predict_window(frames[:count]), eager.predict_window(frames[:count])
        assert np.abs(got.probability - expected.probability).max() <= 1e-3


def test_tensorrt_backend_predicts(small_reference, tmp_path, monkeypatch):
    pytest.importorskip("tensorrt")
    monkeypatch.setenv("GEOMOTION_HOME", str(tmp_path))
    options = small_reference.backend_options(size=SIZE, device="cuda", precision="bf16")
    reference = build_backend(options)
    backend = build_backend(replace(options, engine="tensorrt"))
    assert sorted(backend.warmup([1, 8])) == [1, 8]
    frames = np.random.default_rng(1).integers(0, 256, (8, 60, 80, 3), dtype=np.uint8)
    got, expected = backend.predict_window(frames, list(range(8))), reference.predict_window(frames, list(range(8)))
    assert np.abs(got.probability - expected.probability).max() <= MASK_TOLERANCE
