"""The installed sam2 is what the SAM2 refinement was written for, and the checks of that work.

These tests fail when a sam2 release changes a private method the refinement hooks into, or the
post-processing its video builder applies, or when setup.py's version bound drifts from the one
checked at load.
"""
from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
import torch

from geomotion_core.errors import CheckpointError
from geomotion_core.refine import build_sam2_predictor
from geomotion_core.refine.sam2_contract import (
    PRIVATE_SIGNATURES,
    SAM2_REQUIREMENT,
    VIDEO_PREDICTOR_SETTINGS,
    Sam2ContractError,
    check_private_api,
    check_sam2,
    check_version,
    parameter_names,
)
from geomotion_core.refine.sam2_loading import _memory_in_feature_dtype

SETUP = Path(__file__).resolve().parents[1] / "setup.py"


@pytest.mark.parametrize("target", sorted(PRIVATE_SIGNATURES))
def test_private_sam2_methods_keep_their_parameters(target: str) -> None:
    assert parameter_names(target) == PRIVATE_SIGNATURES[target]


def test_the_video_builder_still_applies_the_post_processing_we_repeat() -> None:
    from sam2.build_sam import build_sam2_video_predictor

    source = inspect.getsource(build_sam2_video_predictor)
    for key, value in VIDEO_PREDICTOR_SETTINGS.items():
        assert f'"++model.{key}={value}"' in source, key


def test_setup_requires_the_checked_sam2_range_and_the_installed_sam2_is_in_it() -> None:
    tree = ast.parse(SETUP.read_text(encoding="utf-8"))
    strings = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    assert SAM2_REQUIREMENT in strings
    assert not any(text.startswith("sam2") and text != SAM2_REQUIREMENT for text in strings)
    check_sam2()


@pytest.mark.parametrize("installed", ["1.1.0", "1.1.7", "1.1"])
def test_supported_versions_pass(installed: str) -> None:
    check_version(installed)


@pytest.mark.parametrize("installed", ["1.0.0", "1.2.0", "2.1.0", "unknown"])
def test_unsupported_versions_name_the_supported_range(installed: str) -> None:
    with pytest.raises(Sam2ContractError, match=f"sam2 {installed} is installed.*{SAM2_REQUIREMENT}"):
        check_version(installed)


def test_building_a_predictor_checks_the_installed_version(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("geomotion_core.refine.sam2_contract.version", lambda _: "1.2.0")
    with pytest.raises(Sam2ContractError, match="sam2 1.2.0 is installed"):
        build_sam2_predictor(tmp_path / "any.yaml", tmp_path / "any.pt")


def test_a_changed_private_signature_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    from sam2.sam2_video_predictor import SAM2VideoPredictor

    monkeypatch.setattr(SAM2VideoPredictor, "_get_image_feature", lambda self, state, frame_idx: None)
    with pytest.raises(Sam2ContractError, match=r"_get_image_feature takes \(self, state, frame_idx\)"):
        check_private_api()


def test_dtype_hook_casts_the_memory_and_refuses_calls_it_does_not_understand() -> None:
    current, memory = torch.zeros(2, 3), torch.zeros(4, 3, dtype=torch.bfloat16)
    args, kwargs = _memory_in_feature_dtype(torch.nn.Identity(), (), {"curr": [current], "memory": memory})
    assert args == () and kwargs["memory"].dtype == torch.float32 and kwargs["curr"][0] is current
    with pytest.raises(Sam2ContractError, match="curr= and memory="):
        _memory_in_feature_dtype(torch.nn.Identity(), (current, memory), {})


def test_feature_cache_refuses_a_predictor_that_keeps_no_features(monkeypatch: pytest.MonkeyPatch) -> None:
    from sam2.sam2_video_predictor import SAM2VideoPredictor

    from geomotion_core.refine.sam2_predictor import ClipFeatureCachePredictor

    monkeypatch.setattr(SAM2VideoPredictor, "_get_image_feature", lambda self, state, frame_idx, batch_size: ())
    predictor = ClipFeatureCachePredictor.__new__(ClipFeatureCachePredictor)
    with pytest.raises(Sam2ContractError, match="no features of frame 3"):
        predictor._get_image_feature({"cached_features": {}}, 3, 1)


def test_config_naming_classes_outside_sam2_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "foreign.yaml"
    config.write_text("model:\n  _target_: sam2.modeling.sam2_base.SAM2Base\n  image_encoder:\n"
                      "    _target_: os.system\n    command: echo hi\n")
    with pytest.raises(CheckpointError, match=r"outside sam2 \(os.system\)"):
        build_sam2_predictor(config, tmp_path / "unused.pt")


def test_predictor_is_the_one_sam2s_video_builder_makes(tmp_path: Path) -> None:
    from sam2.build_sam import build_sam2_video_predictor

    from geomotion_core.weights import package_dir

    config = "configs/sam2.1/sam2.1_hiera_t.yaml"
    torch.manual_seed(0)
    official = build_sam2_video_predictor(config, None, device="cpu", hydra_overrides_extra=["++model.image_size=128"])
    checkpoint = tmp_path / "tiny.pt"
    torch.save({"model": official.state_dict()}, checkpoint)
    ours = build_sam2_predictor(package_dir("sam2") / config, checkpoint, "cpu", image_size=128,
                                cache_clip_features=False)
    assert type(ours) is type(official) and not ours.training
    for name in ("image_size", "fill_hole_area", "binarize_mask_from_pts_for_mem_enc", "multimask_output_in_sam",
                 "use_obj_ptrs_in_encoder", "num_maskmem"):
        assert getattr(ours, name) == getattr(official, name), name
    decoder_ours, decoder_official = ours.sam_mask_decoder, official.sam_mask_decoder
    assert decoder_ours.dynamic_multimask_via_stability and decoder_official.dynamic_multimask_via_stability
    assert decoder_ours.dynamic_multimask_stability_delta == decoder_official.dynamic_multimask_stability_delta
    assert decoder_ours.dynamic_multimask_stability_thresh == decoder_official.dynamic_multimask_stability_thresh
    expected = official.state_dict()
    assert all(torch.equal(value, expected[key]) for key, value in ours.state_dict().items())
    assert ours.state_dict().keys() == expected.keys()
