# SPDX-License-Identifier: Apache-2.0
"""A SAM2 video predictor that runs the image encoder once per frame of a clip.

SAM2's predictor keeps the image features of only the most recently used frame. Two-pass
refinement visits every frame several times (as a prompt, when the memory of a prompted frame is
encoded, and once in the propagation of each pass), so with that cache each frame went through the
image encoder about three times. This predictor keeps the features of every frame of the clip in
the inference state, where they are freed with it. The positional encodings, which are the same
for every frame, are stored once. Results are identical; only repeated work is skipped.

The override relies on SAM2's private ``_get_image_feature(inference_state, frame_idx,
batch_size)`` leaving the frame's ``(image, backbone_out)`` in ``inference_state["cached_features"]``
(sam2 1.1); the signature is checked when a predictor is built
(:mod:`geomotion_core.refine.sam2_contract`) and the cache entry on every call.
"""
from __future__ import annotations

from sam2.sam2_video_predictor import SAM2VideoPredictor

from geomotion_core.refine.sam2_contract import Sam2ContractError

CLIP_FEATURES = "geomotion_clip_features"  # inference-state key of the per-frame feature cache


class ClipFeatureCachePredictor(SAM2VideoPredictor):
    """``SAM2VideoPredictor`` whose image-feature cache holds every frame of the clip."""

    def _get_image_feature(self, inference_state: dict, frame_idx: int, batch_size: int) -> tuple:
        clip_features: dict = inference_state.setdefault(CLIP_FEATURES, {})
        if frame_idx in clip_features:
            inference_state["cached_features"] = {frame_idx: clip_features[frame_idx]}
        features = super()._get_image_feature(inference_state, frame_idx, batch_size)
        if frame_idx not in clip_features:
            entry = inference_state.get("cached_features", {}).get(frame_idx)
            if entry is None:
                raise Sam2ContractError(
                    f"SAM2's _get_image_feature left no features of frame {frame_idx} in "
                    "inference_state['cached_features']: this sam2 is not supported"
                )
            image, backbone_out = entry
            if clip_features:
                shared_positions = next(iter(clip_features.values()))[1]["vision_pos_enc"]
                backbone_out = {**backbone_out, "vision_pos_enc": shared_positions}
            clip_features[frame_idx] = (image, backbone_out)
        return features
