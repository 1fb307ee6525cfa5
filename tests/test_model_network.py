"""Network behaviour: config, official preset on the meta device, shapes, equivariance, errors."""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from geomotion_core.errors import ConfigError, InputError
from geomotion_core.model import GeoMotion, GeoMotionConfig, GeoMotionOutput
from geomotion_core.model.motion import flow_patch_features

OUTPUT_KEYS = ("motion_mask", "conf", "camera_poses", "local_points", "points")


@pytest.fixture(scope="module")
def reference_config(small_reference) -> dict:
    return small_reference.document()


@pytest.fixture(scope="module")
def small_model(small_reference) -> GeoMotion:
    return small_reference.model()


@pytest.fixture(scope="module")
def small_inputs(small_reference) -> dict[str, torch.Tensor]:
    return small_reference.tensors("inputs")


def infer(model: GeoMotion, images: torch.Tensor, flow: torch.Tensor | None) -> GeoMotionOutput:
    with torch.inference_mode():
        return model(images, flow)


# -- configuration -----------------------------------------------------------------------------


def test_official_preset_equals_reference_full_size(reference_config: dict) -> None:
    assert GeoMotionConfig.official() == GeoMotionConfig.from_dict(reference_config["full_size_model"])
    small = GeoMotionConfig.from_dict(reference_config["model"])
    assert GeoMotionConfig.from_dict(json.loads(json.dumps(small.to_dict()))) == small
    assert small.tapped_high_layers == tuple(reference_config["derived"]["tapped_layers"]["high"])
    assert small.dec_head_dim == reference_config["derived"]["dec_head_dim"]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"tapped_low_layers": [5, 36]}, "tapped low layer 36 does not exist"),
        ({"tapped_low_layers": [5, 5]}, "distinct"),
        ({"enc_embed_dim": 768, "enc_num_heads": 12}, "must equal dec_embed_dim"),
        ({"motion_hidden_dim": 1024}, "motion_hidden_dim"),
        ({"head_dec_embed_dim": 1008}, "head dimension must be divisible by 4"),
        ({"dec_num_heads": 15}, "divisible by dec_num_heads"),
        ({"enc_img_size": 500}, "multiple of patch_size"),
        ({"dec_depth": 0}, "must be positive"),
        ({"flow_channels": [8, 8, 8, 8, 8, 8, 8]}, "reach beyond"),
        ({"image_std": [0.2, 0.0, 0.2]}, "image_std"),
        ({"enc_interpolate_offset": 0.1}, "enc_interpolate_offset must be 0.0"),
        ({"bogus": 1}, r"unknown model config key\(s\) bogus"),
    ],
)
def test_invalid_configs_raise_config_error(change: dict, match: str) -> None:
    values = {**GeoMotionConfig.official().to_dict(), **change}
    with pytest.raises(ConfigError, match=match):
        GeoMotionConfig.from_dict(values)


# -- official preset on the meta device --------------------------------------------------------


def test_official_state_dict_matches_manifest_on_meta(reference_dir: Path) -> None:
    manifest = json.loads((reference_dir / "official_state_dict_manifest.json").read_text())
    model = GeoMotion(GeoMotionConfig.official(), device="meta")
    assert all(p.is_meta for p in model.parameters())
    expected = {entry["key"]: tuple(entry["shape"]) for entry in manifest["entries"]}
    assert model.official_shapes() == expected
    assert list(model.to_official_state_dict())[:3] == ["register_token", "image_mean", "image_std"]
    assert sum(p.numel() for p in model.parameters()) == manifest["total_parameters"]
    model.freeze_backbone()
    trainable = model.trainable_parameters()
    assert sum(p.numel() for p in trainable) == manifest["trainable_parameters_with_freeze_backbone"]
    trainable_names = {name.split(".")[0] for name, p in model.named_parameters() if p.requires_grad}
    assert trainable_names == {"motion_fusion", "motion_decoder", "motion_head"}


def renamed_modules_in_the_docs() -> list[tuple[str, str]]:
    """(ours, official) rows of the module table in docs/model.md, as regular expressions."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "model.md").read_text(encoding="utf-8")
    section = text.split("### Module names")[1].split("Every other module")[0]  # the first table only
    rows = [line.split("|")[1:3] for line in section.splitlines() if line.startswith("| `")]
    return [tuple(re.escape(cell.strip().strip("`")).replace(r"\{i\}", r"\d+").replace(r"\{k\}", r"\d+")
                  for cell in row) for row in rows]


def test_docs_list_exactly_the_renamed_modules() -> None:
    from geomotion_core.model.state_dict import NAME_RULES

    def spellings(rule: str) -> tuple[str, ...]:  # a prefix rule names a module, or a list of them
        return (rule.rstrip("."), f"{rule}0") if rule.endswith(".") else (rule,)

    def documents(row: tuple[str, str], rule: tuple[str, str]) -> bool:
        return all(any(re.fullmatch(pattern, spelling) for spelling in spellings(name))
                   for pattern, name in zip(row, rule))

    renamed = [rule for rule in NAME_RULES if rule[0] != rule[1]]
    documented = renamed_modules_in_the_docs()
    assert len(documented) == 6
    matches = {row: [rule for rule in renamed if documents(row, rule)] for row in documented}
    assert all(matches.values()), [row for row, rules in matches.items() if not rules]  # no row without a rule
    assert sorted(rule for rules in matches.values() for rule in rules) == sorted(renamed)  # no rule without a row


def test_model_modules_carry_our_names_and_the_files_the_official_ones(small_model: GeoMotion) -> None:
    names = {name for name, _ in small_model.named_parameters()}
    assert "camera_head.blocks.0.linear1.weight" in names and "motion_fusion.fusion_proj.weight" in names
    assert not [name for name in names if "res_conv" in name or "motion_aware" in name or name.startswith("conf_")]
    official = small_model.to_official_state_dict()
    assert {"camera_head.res_conv.0.res_conv1.weight", "motion_aware_decoder.fusion_proj.weight"} <= official.keys()
    assert type(small_model.motion_fusion).__name__ == "MotionFusion"


# -- shapes and semantics ----------------------------------------------------------------------


def test_frame_permutation_equivariance(small_model: GeoMotion, small_inputs: dict) -> None:
    images, flows = small_inputs["imgs"], small_inputs["flows"]
    order = torch.tensor([2, 0, 3, 1])
    base = infer(small_model, images, flows)
    permuted = infer(small_model, images[:, order], flows[:, order])
    for key in OUTPUT_KEYS:
        torch.testing.assert_close(permuted[key], base[key][:, order], atol=1e-4, rtol=0, msg=key)


def test_one_frame_changes_the_others(small_model: GeoMotion, small_inputs: dict) -> None:
    images, flows = small_inputs["imgs"], small_inputs["flows"]
    changed = images.clone()
    changed[:, 3] = changed[:, 3].flip(-1)
    a, b = infer(small_model, images, flows), infer(small_model, changed, flows)
    assert (a["motion_mask"][:, 0] - b["motion_mask"][:, 0]).abs().max() > 1e-3  # global attention is live


def test_batch_of_clips_equals_separate_clips(small_model: GeoMotion, small_inputs: dict) -> None:
    images, flows = small_inputs["imgs"], small_inputs["flows"]
    second_images, second_flows = images.flip(1), flows.flip(1) * 0.5
    batched = infer(small_model, torch.cat([images, second_images]), torch.cat([flows, second_flows]))
    for index, (clip, flow) in enumerate([(images, flows), (second_images, second_flows)]):
        alone = infer(small_model, clip, flow)
        for key in OUTPUT_KEYS:
            torch.testing.assert_close(batched[key][index:index + 1], alone[key], atol=1e-4, rtol=0, msg=key)


def test_single_frame_non_square_and_unbatched(small_model: GeoMotion, small_inputs: dict) -> None:
    image = F.interpolate(small_inputs["imgs"][0, :1], size=(28, 42), mode="bilinear")
    flow = torch.linspace(0, 5, 28 * 42).reshape(1, 28, 42)
    out = infer(small_model, image, flow)  # 4-D images / 3-D flow gain a batch dim
    assert out.motion_mask.shape == (1, 1, 28, 42)
    assert out.conf.shape == (1, 1, 28, 42, 1)
    assert out.camera_poses.shape == (1, 1, 4, 4)
    assert out.local_points.shape == out.points.shape == (1, 1, 28, 42, 3)
    assert all(torch.isfinite(out[key]).all() for key in OUTPUT_KEYS)
    rotation = out.camera_poses[0, 0, :3, :3]
    torch.testing.assert_close(rotation @ rotation.T, torch.eye(3), atol=1e-5, rtol=0)
    assert torch.det(rotation) > 0
    assert torch.equal(out.camera_poses[0, 0, 3], torch.tensor([0.0, 0.0, 0.0, 1.0]))
    torch.testing.assert_close(out.motion_mask, torch.sigmoid(out.conf[..., 0]))
    assert (out.local_points[..., 2] > 0).all()


def test_encode_decode_reuses_per_frame_tokens(small_model: GeoMotion, small_inputs: dict) -> None:
    images, flows = small_inputs["imgs"], small_inputs["flows"]
    with torch.inference_mode():
        per_frame = [small_model.encode(images[:, i:i + 1]) for i in range(images.shape[1])]
        decoded = small_model.decode(torch.cat(per_frame, dim=1), flows, image_size=images.shape[-2:])
    whole = infer(small_model, images, flows)
    for key in OUTPUT_KEYS:
        torch.testing.assert_close(decoded[key], whole[key], atol=1e-5, rtol=0, msg=key)


def test_without_flow_points_are_unchanged_and_motion_differs(small_model: GeoMotion, small_inputs: dict) -> None:
    images, flows = small_inputs["imgs"], small_inputs["flows"]
    with_flow, without_flow = infer(small_model, images, flows), infer(small_model, images, None)
    assert torch.equal(with_flow.points, without_flow.points)
    assert torch.equal(with_flow.camera_poses, without_flow.camera_poses)
    assert (with_flow.motion_mask - without_flow.motion_mask).abs().max() > 1e-2


def test_output_reads_like_a_dict(small_model: GeoMotion, small_inputs: dict) -> None:
    out = infer(small_model, small_inputs["imgs"], small_inputs["flows"])
    assert out.keys() == OUTPUT_KEYS
    assert out["points"] is out.points
    assert dict(out.items()).keys() == set(OUTPUT_KEYS)
    with pytest.raises(KeyError):
        out["mask"]


def test_bf16_autocast_keeps_heads_in_float32(small_model: GeoMotion, small_inputs: dict) -> None:
    images, flows = small_inputs["imgs"], small_inputs["flows"]
    reference = infer(small_model, images, flows)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = infer(small_model, images, flows)
    for key in OUTPUT_KEYS:
        assert out[key].dtype == torch.float32, key
    assert (out.motion_mask - reference.motion_mask).abs().mean() < 0.05


@pytest.mark.parametrize("patch_size", [14, 7])
def test_flow_features_equal_full_resolution_conv_and_bilinear_resize(patch_size: int) -> None:
    torch.manual_seed(3)
    config = dataclasses.replace(GeoMotionConfig.official(), flow_channels=(8, 16, 12))
    encoder = GeoMotion(config, device="meta").motion_fusion.flow_encoder.to_empty(device="cpu").double()
    for layer in encoder:
        if isinstance(layer, torch.nn.Conv2d):
            layer.reset_parameters()
    flow = torch.rand(3, 42, 56, dtype=torch.float64) * 20
    full = encoder(flow[:, None])
    grid = (42 // patch_size, 56 // patch_size)
    expected = F.interpolate(full, size=grid, mode="bilinear", align_corners=False).flatten(2).transpose(1, 2)
    features = flow_patch_features(encoder, flow, patch_size)
    torch.testing.assert_close(features, expected, atol=1e-12, rtol=0)


# -- malformed inputs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("images", "flow", "match"),
    [
        (torch.rand(1, 2, 3, 50, 56), None, "multiples of 14"),
        (torch.rand(2, 3, 56), None, r"\[B, N, 3, H, W\]"),
        (torch.rand(1, 2, 4, 56, 56), None, r"\[B, N, 3, H, W\]"),
        (torch.randint(0, 255, (1, 2, 3, 56, 56), dtype=torch.uint8), None, "floating point"),
        (torch.rand(1, 2, 3, 56, 56), torch.rand(1, 2, 56, 42), "flow_magnitude must be"),
        (torch.rand(1, 2, 3, 56, 56), torch.rand(1, 3, 56, 56), "flow_magnitude must be"),
        (torch.rand(1, 2, 3, 56, 56), torch.rand(2, 1, 2, 56, 56), "flow_magnitude must be"),
        (torch.rand(1, 0, 3, 56, 56), None, "no frames"),
        ("frames.png", None, "torch.Tensor"),
    ],
)
def test_malformed_inputs_raise_input_error(small_model: GeoMotion, images, flow, match: str) -> None:
    with pytest.raises(InputError, match=match):
        infer(small_model, images, flow)


def test_decode_checks_tokens_against_image_size(small_model: GeoMotion) -> None:
    tokens = torch.zeros(1, 2, 16, 64)
    with pytest.raises(InputError, match="do not fit image size 56x42"):
        small_model.decode(tokens, None, image_size=(56, 42))
    with pytest.raises(InputError, match=r"\[B, N, P, C\]"):
        small_model.decode(tokens[0], None, image_size=(56, 56))


@pytest.mark.slow
def test_no_graph_breaks_under_torch_compile(reference_config: dict) -> None:
    shallow = {**reference_config["model"], "enc_depth": 1, "dec_depth": 2, "tapped_low_layers": [0], "head_dec_depth": 1}
    model = GeoMotion(GeoMotionConfig.from_dict(shallow)).eval()  # every code path, few blocks to trace
    torch._dynamo.reset()
    with torch.inference_mode():
        explained = torch._dynamo.explain(model)(torch.rand(1, 3, 3, 42, 56), torch.rand(1, 3, 42, 56))
    torch._dynamo.reset()
    assert explained.graph_break_count == 0, explained.break_reasons
    assert explained.graph_count == 1


def test_exported_graph_split_at_the_camera_rotation_gives_the_forward(small_model: GeoMotion, small_inputs: dict) -> None:
    """What the ONNX graphs compute (the model with its camera head stopped before the SVD) followed by
    ``finish_camera`` equals the forward, and the model's own camera head is left in place."""
    from geomotion_core.export.graphs import DecoderGraph, GraphOutputs, WholeGraph, finish_camera

    images, flow = small_inputs["imgs"], small_inputs["flows"]
    size = tuple(images.shape[-2:])
    with torch.inference_mode():
        expected = small_model(images, flow)
        whole = finish_camera(GraphOutputs(*WholeGraph(small_model)(images, flow)))
        split = finish_camera(GraphOutputs(*DecoderGraph(small_model, size)(small_model.encode(images), flow)))
        raw = WholeGraph(small_model)(images, flow).camera_raw
    for got in (whole, split):
        for name, value in expected.items():
            torch.testing.assert_close(got[name], value, atol=1e-5, rtol=0, msg=name)
    assert not torch.allclose(raw[..., :3, :3], expected.camera_poses[..., :3, :3], atol=1e-3)  # really raw
    assert type(small_model.camera_head).__name__ == "CameraHead"
