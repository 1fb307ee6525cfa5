"""Conformance with the official GeoMotion code on the reference vectors (ARCHITECTURE.md 12, 15)."""
from __future__ import annotations

import pytest
import torch

from geomotion_core.model import GeoMotion
from geomotion_core.model.layers import patch_positions

SETS = ("small", "small_nonsquare")
OUTPUTS = ("motion_mask", "conf", "camera_poses", "local_points", "points")
# Float32 intermediates (ARCHITECTURE.md 12: ~3e-6 early, ~2e-5 later; outputs reach |x| ~ 40).
EARLY_TOL = 1e-5
LATE_TOL = 1e-4


@pytest.mark.parametrize("name", SETS)
def test_float32_outputs_match_official(reference_network, name: str) -> None:
    reference = reference_network(name)
    model, inputs = reference.model(), reference.tensors("inputs")
    expected = reference.tensors("outputs")
    with torch.inference_mode():
        out = model(inputs["imgs"], inputs["flows"])
    assert set(expected) == set(OUTPUTS)
    for key in OUTPUTS:
        assert out[key].shape == expected[key].shape, key
        assert out[key].dtype == torch.float32, key
        torch.testing.assert_close(out[key], expected[key], atol=1e-4, rtol=0, msg=key)


@pytest.mark.parametrize("name", SETS)
def test_float64_outputs_match_official(reference_network, name: str) -> None:
    reference = reference_network(name)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        model, inputs = reference.model(), reference.tensors("inputs")
        model.double()
        with torch.inference_mode():
            out = model(inputs["imgs"].double(), inputs["flows"].double())
    finally:
        torch.set_default_dtype(previous)
    expected = reference.tensors("outputs_float64")
    for key in OUTPUTS:
        assert out[key].dtype == torch.float64, key
        torch.testing.assert_close(out[key], expected[key], atol=1e-9, rtol=0, msg=key)


def capture_intermediates(model: GeoMotion) -> tuple[dict[str, torch.Tensor], list]:
    """Forward hooks that record the official intermediates under their reference names."""
    seen: dict[str, torch.Tensor] = {}

    def keep(name, pick=lambda inputs, output: output):
        def hook(module, inputs, output):
            seen[name] = pick(inputs, output).detach().clone()
        return hook

    def frame_major(inputs, output):
        return output.reshape(-1, seen["dec_pos"].shape[1], output.shape[-1])

    hooks = [
        model.encoder.norm.register_forward_hook(keep("enc_x_norm", lambda i, o: o)),
        model.encoder.norm.register_forward_hook(keep("enc_x_prenorm", lambda i, o: i[0])),
        model.aggregator.register_forward_hook(keep("dec_low_hidden_cat_l5_l15", lambda i, o: o.low)),
        model.aggregator.register_forward_hook(keep("dec_hidden_cat_last_two", lambda i, o: o.high)),
        model.camera_decoder.register_forward_hook(keep("camera_hidden")),
        model.motion_fusion.fusion_proj.register_forward_hook(keep("motion_fusion_proj_input", lambda i, o: i[0])),
        model.motion_fusion.fusion_proj.register_forward_hook(keep("motion_fusion_proj_output")),
        model.motion_fusion.register_forward_hook(keep("hidden_with_motion")),
        model.point_decoder.register_forward_hook(keep("point_hidden")),
        model.motion_decoder.register_forward_hook(keep("conf_hidden")),
        model.point_head.register_forward_hook(keep("point_head_raw")),
        model.motion_head.register_forward_hook(keep("conf_head_raw")),
        model.camera_head.fc_rot.register_forward_hook(keep("camera_head_fc_rot")),
        model.camera_head.fc_t.register_forward_hook(keep("camera_head_fc_t")),
    ]
    for index, block in enumerate(model.encoder.blocks):
        hooks.append(block.register_forward_hook(keep(f"enc_block_{index:02d}_out")))
    for index, block in enumerate(model.aggregator.blocks):
        hooks.append(block.register_forward_hook(keep(f"dec_block_{index:02d}_out", frame_major)))
    return seen, hooks


def test_float32_intermediates_match_official(small_reference) -> None:
    model, inputs = small_reference.model(), small_reference.tensors("inputs")
    expected = small_reference.tensors("intermediates")
    config = model.config
    batch, frames, _, height, width = inputs["imgs"].shape
    grid_h, grid_w = height // config.patch_size, width // config.patch_size
    seen, hooks = capture_intermediates(model)
    positions = patch_positions(grid_h, grid_w, config.num_register_tokens)
    seen["dec_pos"] = positions.expand(batch * frames, -1, -1)
    seen["enc_pos_embed_used"] = model.encoder.position_embedding(grid_h, grid_w, torch.float32).detach()
    with torch.inference_mode():
        model(inputs["imgs"], inputs["flows"])
    for hook in hooks:
        hook.remove()
    normed = seen.pop("enc_x_norm")
    registers_end = 1 + config.enc_num_register_tokens
    seen["enc_x_norm_clstoken"] = normed[:, 0]
    seen["enc_x_norm_regtokens"] = normed[:, 1:registers_end]
    seen["enc_x_norm_patchtokens"] = normed[:, registers_end:]
    missing = sorted(set(expected) - set(seen))
    assert not missing, f"intermediates not captured: {missing}"
    assert torch.equal(seen["dec_pos"], expected["dec_pos"])
    for key, reference in expected.items():
        early = key.startswith("enc_") or key in {f"dec_block_{i:02d}_out" for i in range(4)}
        tolerance = EARLY_TOL if early else LATE_TOL
        assert seen[key].shape == reference.shape, key
        torch.testing.assert_close(seen[key].float(), reference.float(), atol=tolerance, rtol=0, msg=key)


def test_wrong_norm_epsilon_is_caught_in_float64(small_reference) -> None:
    """The float64 comparison is strict enough to see the encoder's final-norm eps (1e-6 vs 1e-5)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        model, inputs = small_reference.model(), small_reference.tensors("inputs")
        model.double()
        model.encoder.norm.eps = 1e-5
        with torch.inference_mode():
            out = model(inputs["imgs"].double(), inputs["flows"].double())
    finally:
        torch.set_default_dtype(previous)
    expected = small_reference.tensors("outputs_float64")
    assert (out["conf"] - expected["conf"]).abs().max() > 1e-9
