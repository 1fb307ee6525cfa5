"""Checkpoint reading and writing: our format, the official .pth, Pi3 safetensors, bad files."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from geomotion_core.errors import CheckpointError
from geomotion_core.model import GeoMotion, GeoMotionConfig, GeoMotionOutput, load_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def small(small_reference) -> dict:
    model = small_reference.model()
    inputs = small_reference.tensors("inputs")
    with torch.inference_mode():
        outputs = model(inputs["imgs"], inputs["flows"])
    return {"config": small_reference.config(), "model": model, "state": small_reference.tensors("weights"),
            "inputs": inputs, "outputs": outputs}


def run(model: GeoMotion, inputs: dict[str, torch.Tensor]) -> GeoMotionOutput:
    with torch.inference_mode():
        return model(inputs["imgs"], inputs["flows"])


def assert_same_outputs(a: GeoMotionOutput, b: GeoMotionOutput) -> None:
    for key in a.keys():
        assert torch.equal(a[key], b[key]), key


def test_our_format_round_trip_carries_config(small, tmp_path: Path) -> None:
    path = save_checkpoint(small["model"], tmp_path / "sub" / "model.safetensors")
    model, report = load_checkpoint(path)
    assert report.kind == "ours" and report.keys.exact and report.keys.loaded == 602
    assert model.config == small["config"]
    assert not model.training
    assert_same_outputs(run(model, small["inputs"]), small["outputs"])
    assert not list(tmp_path.glob("**/*.partial"))


def test_our_format_rejects_a_different_config(small, tmp_path: Path) -> None:
    path = save_checkpoint(small["model"], tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="stored config differs"):
        load_checkpoint(path, config=GeoMotionConfig.official())


def test_our_checkpoint_written_before_the_module_renames_still_loads(small, tmp_path: Path) -> None:
    """A file in our format as ``save_checkpoint`` wrote it when our modules had the official names
    (``MotionAwareDecoder``, ``camera_head.res_conv.i.res_convK``): written here key by key."""
    import json

    state = small["state"]  # the official key names, which our format has always stored
    assert "camera_head.res_conv.1.res_conv3.weight" in state and "motion_aware_decoder.fusion_proj.weight" in state
    path = tmp_path / "old.safetensors"
    save_file({key: value.contiguous() for key, value in state.items()}, str(path),
              metadata={"format": "geomotion", "format_version": "1", "config": json.dumps(small["config"].to_dict())})
    model, report = load_checkpoint(path)
    assert report.kind == "ours" and report.keys.exact and report.keys.loaded == len(state)
    assert torch.equal(model.camera_head.blocks[1].linear3.weight, state["camera_head.res_conv.1.res_conv3.weight"])
    assert torch.equal(model.camera_head.blocks[0].linear1.bias, state["camera_head.res_conv.0.res_conv1.bias"])
    assert torch.equal(model.motion_fusion.fusion_proj.weight, state["motion_aware_decoder.fusion_proj.weight"])
    assert_same_outputs(run(model, small["inputs"]), small["outputs"])


@pytest.mark.parametrize("prefix", ["", "module."])
def test_official_pth_round_trip(small, tmp_path: Path, prefix: str) -> None:
    state = {prefix + key: value for key, value in small["model"].to_official_state_dict().items()}
    path = tmp_path / "best_model.pth"
    torch.save({"epoch": 7, "model_state_dict": state, "best_iou": 0.61, "optimizer_state_dict": {}}, path)
    model, report = load_checkpoint(path, config=small["config"])
    assert report.kind == "official-pth" and report.keys.exact
    assert report.info == {"epoch": 7, "best_iou": 0.61}
    assert_same_outputs(run(model, small["inputs"]), small["outputs"])


def test_official_safetensors_is_the_reference_file(small, small_reference) -> None:
    model, report = load_checkpoint(small_reference.weights_path, config=small["config"])
    assert report.kind == "official-safetensors" and report.keys.exact
    assert_same_outputs(run(model, small["inputs"]), small["outputs"])


@pytest.mark.parametrize("with_buffers", [True, False])
def test_pi3_safetensors_initialises_motion_branch_from_confidence(small, tmp_path: Path, with_buffers: bool) -> None:
    dropped = ("motion_aware_decoder.",) if with_buffers else ("motion_aware_decoder.", "image_mean", "image_std")
    pi3_state = {k: v for k, v in small["state"].items() if not k.startswith(dropped)}
    path = tmp_path / "model.safetensors"
    save_file(pi3_state, str(path))
    torch.manual_seed(0)
    model, report = load_checkpoint(path, config=small["config"])
    assert report.kind == "pi3" and report.keys.exact and report.keys.loaded == len(pi3_state)
    buffers = [] if with_buffers else ["image_mean", "image_std"]
    assert report.default_initialised == buffers + [
        "motion_aware_decoder.feature_proj.0",
        "motion_aware_decoder.flow_encoder.0",
        "motion_aware_decoder.flow_encoder.2",
        "motion_aware_decoder.flow_encoder.4",
        "motion_aware_decoder.fusion_proj",
    ]
    assert torch.equal(model.image_std, small["state"]["image_std"])
    for name, parameter in model.named_parameters():
        assert not parameter.is_meta and torch.isfinite(parameter).all(), name
    official = model.to_official_state_dict()
    for key, value in small["state"].items():
        if not key.startswith("motion_aware_decoder."):
            assert torch.equal(official[key], value), key
    fusion = model.motion_fusion.fusion_proj.weight
    bound = 1 / fusion.shape[1] ** 0.5  # PyTorch's default Linear init
    assert fusion.abs().max() <= bound and fusion.std() > bound / 4
    out = run(model, small["inputs"])
    for key in ("camera_poses", "local_points", "points"):
        assert torch.equal(out[key], small["outputs"][key]), key
    assert not torch.allclose(out["motion_mask"], small["outputs"]["motion_mask"], atol=1e-3)
    with torch.inference_mode():
        without_flow = model(small["inputs"]["imgs"], None)
        reference_without_flow = small["model"](small["inputs"]["imgs"], None)
    assert torch.equal(without_flow["conf"], reference_without_flow["conf"])


def test_wrong_architecture_names_file_and_keys(small_reference) -> None:
    path = small_reference.weights_path
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)  # official full-size config against small weights
    message = str(error.value)
    assert str(path) in message and "wrong shape" in message and "encoder.cls_token" in message


def test_missing_and_unexpected_keys_are_reported(small, tmp_path: Path) -> None:
    state = dict(small["state"])
    del state["decoder.3.attn.q_norm.weight"]
    state["decoder.99.attn.q_norm.weight"] = torch.zeros(16)
    path = tmp_path / "best_model.pth"
    torch.save({"model_state_dict": state}, path)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path, config=small["config"])
    message = str(error.value)
    assert "1 missing: decoder.3.attn.q_norm.weight" in message
    assert "1 unexpected: decoder.99.attn.q_norm.weight" in message


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_truncated_files_give_one_clear_error(small, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"model{suffix}"
    if suffix == ".pth":
        torch.save({"model_state_dict": small["model"].to_official_state_dict()}, path)
    else:
        save_checkpoint(small["model"], path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(path, config=small["config"] if suffix == ".pth" else None)


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickle_carrying_code_is_refused_and_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    path = tmp_path / "best_model.pth"
    torch.save({"model_state_dict": {"x": torch.zeros(1)}, "payload": _Payload(marker)}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"", "empty file"), (b"hello, not weights\n" * 4, "not a checkpoint")],
)
def test_non_checkpoints_are_rejected(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(path)


def test_missing_file_and_tensorless_pth(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "absent.pth")
    path = tmp_path / "other.pth"
    for content in ({"epoch": 3}, torch.zeros(3), {"model_state_dict": {}}):
        torch.save(content, path)
        with pytest.raises(CheckpointError, match="without a model state dict"):
            load_checkpoint(path)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(small, tmp_path: Path, value: float) -> None:
    """A diverged run's weights made `segment` write all-zero masks (issue 18, item 5)."""
    state = {key: tensor.clone() for key, tensor in small["model"].to_official_state_dict().items()}
    name = next(key for key, tensor in state.items() if tensor.is_floating_point() and key.startswith("encoder"))
    state[name].view(-1)[0] = value
    path = tmp_path / "best_model.pth"
    torch.save({"model_state_dict": state}, path)
    with pytest.raises(CheckpointError, match=f"1 tensor.*NaN or infinite.*{name}"):
        load_checkpoint(path, config=small["config"])


@pytest.mark.parametrize("payload", [{"a": 1}, [1, 2]], ids=["dict", "list"])
@pytest.mark.parametrize("protocol", [2, 4])
def test_pickle_named_safetensors_is_a_checkpoint_error(tmp_path: Path, payload, protocol: int) -> None:
    """torch.load dispatches on the .safetensors suffix and raised SafetensorError (issue 18, item 13)."""
    import pickle

    path = tmp_path / "model.safetensors"
    path.write_bytes(pickle.dumps(payload, protocol=protocol))
    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint(path)
