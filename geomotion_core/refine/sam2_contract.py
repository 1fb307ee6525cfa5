# SPDX-License-Identifier: Apache-2.0
"""What GeoMotion relies on in the ``sam2`` package beyond its public API, and the checks of it.

* the supported versions (``SAM2_REQUIREMENT``, also in setup.py);
* the private methods the refinement hooks into (``PRIVATE_SIGNATURES``): the per-frame feature
  lookup :class:`~geomotion_core.refine.sam2_predictor.ClipFeatureCachePredictor` overrides and
  the memory attention the CPU dtype hook wraps;
* the post-processing settings sam2's video builder applies (``VIDEO_PREDICTOR_SETTINGS``),
  repeated here because the predictor is built from the config without that builder.

:func:`check_sam2` runs when a predictor is built and raises ``Sam2ContractError`` naming what
changed; tests/test_sam2_contract.py checks the installed sam2 against the same expectations.
"""
from __future__ import annotations

import importlib
import inspect
import re
from importlib.metadata import PackageNotFoundError, version

from geomotion_core.errors import ConfigError

SAM2_REQUIREMENT = "sam2>=1.1,<1.2"
SUPPORTED_VERSIONS = ((1, 1), (1, 2))  # [lowest, first unsupported) as (major, minor)

# "module:Class.method" -> its parameter names, as the code that hooks into it expects them
PRIVATE_SIGNATURES: dict[str, tuple[str, ...]] = {
    "sam2.sam2_video_predictor:SAM2VideoPredictor._get_image_feature": (
        "self", "inference_state", "frame_idx", "batch_size",
    ),
    "sam2.modeling.memory_attention:MemoryAttention.forward": (
        "self", "curr", "memory", "curr_pos", "memory_pos", "num_obj_ptr_tokens",
    ),
}

# dotted model-config key -> value: sam2.build_sam.build_sam2_video_predictor's default post-processing
VIDEO_PREDICTOR_SETTINGS: dict[str, str] = {
    "sam_mask_decoder_extra_args.dynamic_multimask_via_stability": "true",
    "sam_mask_decoder_extra_args.dynamic_multimask_stability_delta": "0.05",
    "sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh": "0.98",
    "binarize_mask_from_pts_for_mem_enc": "true",
    "fill_hole_area": "8",
}


class Sam2ContractError(ConfigError):
    """The installed sam2 is not a version, or does not behave as, GeoMotion was written for."""


def check_version(installed: str) -> None:
    """Raise ``Sam2ContractError`` unless ``installed`` (e.g. ``1.1.0``) is a supported version."""
    match = re.match(r"(\d+)\.(\d+)", installed)
    low, high = SUPPORTED_VERSIONS
    if match is None or not low <= (int(match[1]), int(match[2])) < high:
        raise Sam2ContractError(
            f"sam2 {installed} is installed; SAM2 refinement supports {SAM2_REQUIREMENT} "
            f"(pip install '{SAM2_REQUIREMENT}')"
        )


def parameter_names(target: str) -> tuple[str, ...]:
    """Parameter names of ``module:Class.method``."""
    module, _, path = target.partition(":")
    owner: object = importlib.import_module(module)
    for name in path.split("."):
        owner = getattr(owner, name)
    return tuple(inspect.signature(owner).parameters)


def check_private_api() -> None:
    """Raise ``Sam2ContractError`` if a private sam2 method the hooks rely on changed its parameters."""
    for target, expected in PRIVATE_SIGNATURES.items():
        try:
            found = parameter_names(target)
        except (ImportError, AttributeError) as exc:
            raise Sam2ContractError(f"sam2 has no {target} any more ({exc}); SAM2 refinement supports "
                                    f"{SAM2_REQUIREMENT}") from exc
        if found != expected:
            raise Sam2ContractError(f"sam2's {target} takes ({', '.join(found)}), GeoMotion expects "
                                    f"({', '.join(expected)}); SAM2 refinement supports {SAM2_REQUIREMENT}")


def check_sam2() -> None:
    """The installed sam2 is supported and its private methods are as expected."""
    try:
        installed = version("sam2")
    except PackageNotFoundError as exc:
        raise Sam2ContractError(f"SAM2 refinement needs the sam2 package (pip install '{SAM2_REQUIREMENT}')") from exc
    check_version(installed)
    check_private_api()
