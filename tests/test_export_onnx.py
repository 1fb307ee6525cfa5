"""ONNX export of the network and the onnxruntime engine, on the public reference sets (CPU).

The small reference network is exported with the exporter's defaults (split encoder + decoder,
dynamic frame count, optimised) into an export store; onnxruntime must reproduce the official
vectors and PyTorch within 1e-4, and the backend with ``engine="onnxruntime"`` (which finds the
same export in the store) must give the torch engine's masks. ``small_nonsquare`` goes through
``geomotion export`` as one whole graph with a fixed N.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from geomotion_core.backend import BackendOptions
from geomotion_core.backends import build_backend
from geomotion_core.cli import main
from geomotion_core.errors import ConfigError
from geomotion_core.export.onnx_export import ExportSpec, describe_graph, graph_files
from geomotion_core.export.onnx_runtime import OnnxRuntimeNetwork, compare_with_torch
from geomotion_core.export.store import ENGINES_FOLDER, ExportStore, weights_identity

pytest.importorskip("onnxruntime")  # the `export` extra, part of `dev`: installed by `make test`

pytestmark = pytest.mark.slow  # the module exports the small network to ONNX once (minutes on 2 cores)

TOLERANCE = 1e-4
SMALL_SIZE = 56  # the reference inputs' size


@pytest.fixture(scope="module")
def weights_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("geomotion-home")


@pytest.fixture(scope="module")
def small_model(small_reference):
    return small_reference.model()


@pytest.fixture(scope="module")
def small_export(small_reference, small_model, weights_home) -> Path:
    """The small network exported as the onnxruntime engine exports it (so the backend reuses it)."""
    store = ExportStore(weights_home / ENGINES_FOLDER)
    spec = ExportSpec(SMALL_SIZE, SMALL_SIZE)
    return store.folder(small_model, weights_identity(small_reference.weights_path), spec)


def _assert_matches(outputs, expected: dict[str, torch.Tensor]) -> None:
    for name, reference in expected.items():
        difference = float((outputs[name] - reference).abs().max())
        assert difference <= TOLERANCE, f"{name}: {difference:.2e}"


def test_onnxruntime_reproduces_the_official_vectors(small_reference, small_export):
    inputs, expected = small_reference.tensors("inputs"), small_reference.tensors("outputs")
    network = OnnxRuntimeNetwork(small_export, torch.device("cpu"))
    with torch.inference_mode():
        _assert_matches(network(inputs["imgs"], inputs["flows"]), expected)
        tokens = network.encode(inputs["imgs"])  # encoder and decoder apart, as the backend runs them
        _assert_matches(network.decode(tokens, inputs["flows"], (SMALL_SIZE, SMALL_SIZE)), expected)


@pytest.mark.parametrize("frames", [1, 3, 7])
def test_dynamic_frame_count_matches_pytorch(small_model, small_export, frames):
    network = OnnxRuntimeNetwork(small_export, torch.device("cpu"))
    generator = torch.Generator().manual_seed(frames)
    inputs = {"images": torch.rand(1, frames, 3, SMALL_SIZE, SMALL_SIZE, generator=generator),
              "flow_magnitude": 5 * torch.rand(1, frames, SMALL_SIZE, SMALL_SIZE, generator=generator)}
    agreement = compare_with_torch(small_model, network, inputs, atol=TOLERANCE, rtol=TOLERANCE)
    assert agreement.passed, agreement.summary()
    assert agreement.frames == frames


def test_graph_report(small_export):
    encoder, decoder = (describe_graph(path) for path in graph_files(small_export, "split").values())
    assert encoder.opset >= 18 and decoder.opset >= 18
    assert encoder.inputs == {"images": ["frames", 3, SMALL_SIZE, SMALL_SIZE]}
    assert decoder.inputs["tokens"][1] == decoder.inputs["flow_magnitude"][1] == "frames"
    assert list(decoder.outputs) == ["motion_mask", "conf", "camera_raw", "local_points"]
    # SDPA is exported as MatMul + Softmax: one Softmax per attention (3 encoder blocks; 18 decoder
    # blocks + 3 heads x 5 blocks)
    assert encoder.attention_ops() == {"Softmax": 3}
    assert decoder.attention_ops() == {"Softmax": 18 + 3 * 5}
    assert decoder.bytes > Path(decoder.path).stat().st_size  # the weights live in the .data file
    assert decoder.summary().startswith("decoder.onnx: ") and "opset 18" in decoder.summary()


def test_graph_refuses_other_sizes(small_export):
    network = OnnxRuntimeNetwork(small_export, torch.device("cpu"))
    with pytest.raises(ConfigError, match="56x56"):
        network.encode(torch.rand(1, 2, 3, 70, 70))


def test_store_reuses_an_export_with_the_same_key(small_reference, small_model, small_export, weights_home):
    store = ExportStore(weights_home / ENGINES_FOLDER)
    before = (small_export / "decoder.onnx").stat().st_mtime_ns
    again = store.folder(small_model, weights_identity(small_reference.weights_path), ExportSpec(SMALL_SIZE, SMALL_SIZE))
    assert again == small_export and (again / "decoder.onnx").stat().st_mtime_ns == before


@pytest.fixture(scope="module")
def davis_frames(davis_root: Path) -> np.ndarray:
    paths = sorted((davis_root / "JPEGImages" / "480p" / "camel").glob("*.jpg"))[:6]
    return np.stack([cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths])


def test_backend_onnxruntime_gives_the_torch_masks(small_reference, small_export, davis_frames, weights_home,
                                                   monkeypatch):
    monkeypatch.setenv("GEOMOTION_HOME", str(weights_home))
    options = small_reference.backend_options(size=SMALL_SIZE)
    torch_backend = build_backend(options)
    onnx_backend = build_backend(replace(options, engine="onnxruntime"))
    assert onnx_backend.warmup([1, 4]).keys() == {1, 4}
    assert sorted(p.name for p in (weights_home / ENGINES_FOLDER).iterdir()) == [small_export.name]  # reused
    for ids in ([0, 1, 2, 3], [2, 3, 4, 5]):  # the second window reuses cached tokens of frames 2 and 3
        frames = davis_frames[ids[0]:ids[-1] + 1]
        expected, got = torch_backend.predict_window(frames, ids), onnx_backend.predict_window(frames, ids)
        assert np.abs(got.probability - expected.probability).max() <= TOLERANCE
        assert np.abs(got.poses - expected.poses).max() <= TOLERANCE
        decided = np.abs(expected.probability - 0.5) > TOLERANCE  # pixels within the tolerance of 0.5 may flip
        assert np.array_equal((got.probability > 0.5)[decided], (expected.probability > 0.5)[decided])
    native = onnx_backend.predict_window_native(davis_frames[:3])
    assert native.probability.shape == (3, SMALL_SIZE, SMALL_SIZE)
    assert np.abs(native.probability - torch_backend.predict_window_native(davis_frames[:3]).probability).max() <= TOLERANCE


def test_engine_options_are_checked():
    with pytest.raises(ConfigError, match="engine must be one of"):
        BackendOptions(engine="openvino").validate()
    with pytest.raises(ConfigError, match="onnxruntime runs the fp32 graph"):
        BackendOptions(engine="onnxruntime", precision="bf16").validate()
    BackendOptions(backend="geometric", engine="onnxruntime", precision="bf16").validate()  # no network


def test_segment_cli_with_onnxruntime_writes_the_torch_masks(small_reference, small_export, davis_root, weights_home,
                                                             tmp_path, monkeypatch):
    monkeypatch.setenv("GEOMOTION_HOME", str(weights_home))
    frames = str(davis_root / "JPEGImages" / "480p" / "blackswan" / "0000[0-4].jpg")
    common = [*small_reference.cli_arguments(), "--flow", "dis", "--size", str(SMALL_SIZE), "--device", "cpu",
              "--no-progress", "--no-overlay", "--chunk-protocol", "eval", "--chunk-size", "5"]
    assert main(["segment", frames, "-o", str(tmp_path / "torch"), *common]) == 0
    assert main(["segment", frames, "-o", str(tmp_path / "onnx"), *common, "--engine", "onnxruntime"]) == 0
    names = sorted(p.name for p in (tmp_path / "torch" / "masks").glob("*.png"))
    assert len(names) == 5 and names == sorted(p.name for p in (tmp_path / "onnx" / "masks").glob("*.png"))
    for name in names:
        expected = cv2.imread(str(tmp_path / "torch" / "masks" / name), cv2.IMREAD_UNCHANGED)
        got = cv2.imread(str(tmp_path / "onnx" / "masks" / name), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(got, expected), name


@pytest.mark.parametrize("bad, named", [(["--opset", "17"], "--opset"), (["--frames", "0"], "--frames"),
                                        (["--height", "56"], "--width"), (["--size", "50"], "--size"),
                                        (["--tolerance", "nan"], "--tolerance"), (["--graph", "half"], "--graph")])
def test_export_cli_refuses_bad_options(small_reference, tmp_path, capsys, bad, named):
    try:  # refused while parsing (SystemExit) or by the command before anything is exported
        code = main(["export", "-o", str(tmp_path / "out"), *small_reference.cli_arguments(), *bad])
    except SystemExit as exit_info:
        code = exit_info.code
    assert code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("geomotion export") and named in line
    assert not (tmp_path / "out").exists()


def test_export_cli_whole_graph_fixed_frames(reference_network, tmp_path, capsys):
    reference = reference_network("small_nonsquare")
    inputs, expected = reference.tensors("inputs"), reference.tensors("outputs")
    frames, height, width = inputs["imgs"].shape[1], *inputs["imgs"].shape[-2:]
    out = tmp_path / "export"
    assert main(["export", "-o", str(out), *reference.cli_arguments(), "--height", str(height), "--width", str(width),
                 "--frames", str(frames), "--graph", "whole", "--no-optimize"]) == 0
    printed = capsys.readouterr().out
    assert "network.onnx" in printed and "-> OK" in printed
    report = describe_graph(out / "network.onnx")
    assert report.inputs == {"images": [1, frames, 3, height, width], "flow_magnitude": [1, frames, height, width]}
    network = OnnxRuntimeNetwork(out, torch.device("cpu"))
    _assert_matches(network(inputs["imgs"], inputs["flows"]), expected)
    with pytest.raises(ConfigError, match=f"N={frames}"):
        network(inputs["imgs"][:, :2], inputs["flows"][:, :2])
    assert main(["export", "-o", str(out), *reference.cli_arguments(), "--no-check"]) == 2  # not empty


def test_node_parameter_inference_engine_reaches_the_backend(small_reference, small_export, davis_frames,
                                                             weights_home, ros_domain, monkeypatch):
    pytest.importorskip("rclpy", reason="needs the ROS 2 Python packages (PyPI wheels or a ROS install)")
    import rclpy

    from geomotion_ros.node import GeoMotionNode
    from geomotion_ros.params import read_settings

    monkeypatch.setenv("GEOMOTION_HOME", str(weights_home))
    overrides = {"inference.engine": "onnxruntime", "precision": "fp32", "device": "cpu", "flow.method": "dis",
                 "inference.size": SMALL_SIZE, "model.checkpoint": str(small_reference.weights_path),
                 "model.config": str(small_reference.config_path)}
    arguments = [item for name, value in overrides.items() for item in ("-p", f"{name}:={value}")]
    context = rclpy.Context()
    rclpy.init(context=context, args=["geomotion_node", "--ros-args", *arguments])
    node = GeoMotionNode(context=context)
    try:
        options = read_settings(node).backend_options()
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    assert options.engine == "onnxruntime"
    backend = build_backend(options)
    expected = build_backend(replace(options, engine="torch")).predict_window(davis_frames[:4])
    assert np.abs(backend.predict_window(davis_frames[:4]).probability - expected.probability).max() <= TOLERANCE
