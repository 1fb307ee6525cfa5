# SPDX-License-Identifier: Apache-2.0
"""SAM2 refinement of motion probabilities, following the official GeoMotion recipe.

Official recipe (docs/flow_and_refine.md, "SAM2 refinement"): the frames are resized to the
mask size (PIL bilinear) and handed to SAM2 as a folder of JPEGs; the probability maps binarised at
0.8 are mask prompts of one object (id 1); two passes by frame parity — pass 1 prompts the odd
frames and keeps SAM2's masks for the even frames, pass 2 the reverse — each propagating forward
from frame 0; the output is ``mask_logits > 0``; bf16 autocast on CUDA; inference mode.

Where the official code crashes on a pass without any prompt, this one keeps the unrefined masks
(probability above ``fallback_threshold``) for that pass's frames and logs it.
"""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch

from geomotion_core.errors import ConfigError, InputError
from geomotion_core.pipeline.preprocessing import resize_pil
from geomotion_core.refine.sam2_loading import build_sam2_predictor, resolve_sam2_files

if TYPE_CHECKING:
    from sam2.sam2_video_predictor import SAM2VideoPredictor

LOGGER = logging.getLogger(__name__)

OBJECT_ID = 1


@dataclass(frozen=True)
class Sam2RefinerOptions:
    """How refinement prompts SAM2 and what it keeps where it cannot.

    Attributes:
        prompt_threshold: probability above which a pixel is part of a mask prompt (official 0.8).
        fallback_threshold: threshold of the unrefined masks kept for a pass without prompts.
        jpeg_quality: quality of the frames handed to SAM2 (95, OpenCV's default, as official).
        image_size: SAM2's input side; None keeps the config's (1024 for the official models).
        offload_video_to_cpu: keep SAM2's decoded frames in CPU memory (long videos on a GPU).
        cache_clip_features: run SAM2's image encoder once per frame and keep the features of the
            whole clip (about 17 MB per frame at 1024 in fp32) instead of about three times.
    """

    prompt_threshold: float = 0.8
    fallback_threshold: float = 0.5
    jpeg_quality: int = 95
    image_size: int | None = None
    offload_video_to_cpu: bool = False
    cache_clip_features: bool = True

    def __post_init__(self) -> None:
        for name in ("prompt_threshold", "fallback_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ConfigError(f"jpeg_quality must lie in [1, 100], got {self.jpeg_quality}")


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``[N, H, W, 3]`` uint8 frames resized to ``size`` with PIL ``BILINEAR``, as the official refinement."""
    from PIL import Image

    return resize_pil(frames, *size, Image.Resampling.BILINEAR)


def write_jpeg_folder(frames: np.ndarray, folder: Path, quality: int) -> None:
    """Write RGB frames as ``00000.jpg, 00001.jpg, ...``, the layout SAM2's ``init_state`` reads."""
    parameters = [cv2.IMWRITE_JPEG_QUALITY, quality]
    for index, frame in enumerate(frames):
        path = folder / f"{index:05d}.jpg"
        if not cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), parameters):
            raise OSError(f"could not write {path}")


class Sam2Refiner:
    """Refines per-frame motion probabilities into masks with a SAM2 video predictor."""

    def __init__(self, predictor: SAM2VideoPredictor, options: Sam2RefinerOptions | None = None) -> None:
        self.predictor = predictor
        self.options = options or Sam2RefinerOptions()

    @classmethod
    def from_files(
        cls,
        config: str | os.PathLike | None = None,
        checkpoint: str | os.PathLike | None = None,
        device: str | torch.device = "cpu",
        options: Sam2RefinerOptions | None = None,
    ) -> Sam2Refiner:
        """Build from a SAM2 config (a YAML path or a name bundled with ``sam2``) and checkpoint.

        Defaults: the bundled ``sam2.1_hiera_l.yaml`` and ``sam2.1_hiera_large.pt`` from
        GEOMOTION_HOME. A missing, corrupt or mismatched file raises CheckpointError.
        """
        options = options or Sam2RefinerOptions()
        config_path, checkpoint_path = resolve_sam2_files(config, checkpoint)
        predictor = build_sam2_predictor(
            config_path, checkpoint_path, device, options.image_size, options.cache_clip_features
        )
        return cls(predictor, options)

    @property
    def device(self) -> torch.device:
        return self.predictor.device

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def refine(self, frames: np.ndarray, probability: np.ndarray | torch.Tensor) -> np.ndarray:
        """Refined masks ``[N, h, w]`` bool from frames ``[N, H, W, 3]`` uint8 RGB and probabilities ``[N, h, w]``."""
        probability = _as_numpy(probability)
        _check_inputs(frames, probability)
        masks = np.zeros(probability.shape, dtype=bool)
        if len(masks) == 0:
            return masks
        prompts = probability > self.options.prompt_threshold
        has_prompt = prompts.reshape(len(prompts), -1).any(axis=1)
        parity = np.arange(len(masks)) % 2
        with torch.inference_mode(), self._autocast():
            state = self._init_state(frames, probability.shape[1:])
            for prompt_parity in (1, 0):
                kept = np.flatnonzero(parity != prompt_parity)
                prompt_frames = np.flatnonzero(has_prompt & (parity == prompt_parity))
                if kept.size == 0:
                    continue
                if prompt_frames.size == 0:
                    LOGGER.warning(
                        "SAM2 pass prompting the %s frames has no prompt above %.2f; keeping the unrefined "
                        "masks of %d frame(s)",
                        "odd" if prompt_parity else "even",
                        self.options.prompt_threshold,
                        kept.size,
                    )
                    masks[kept] = probability[kept] > self.options.fallback_threshold
                else:
                    self._propagate(state, prompts, prompt_frames, 1 - prompt_parity, masks)
        return masks

    def _init_state(self, frames: np.ndarray, size: tuple[int, int]) -> dict:
        """SAM2's state of the clip: frames resized to ``size``, passed through a temporary JPEG folder."""
        with tempfile.TemporaryDirectory(prefix="geomotion-sam2-") as folder:
            write_jpeg_folder(resize_frames(frames, size), Path(folder), self.options.jpeg_quality)
            return self.predictor.init_state(folder, offload_video_to_cpu=self.options.offload_video_to_cpu)

    def _propagate(
        self, state: dict, prompts: np.ndarray, prompt_frames: np.ndarray, kept_parity: int, masks: np.ndarray
    ) -> None:
        """One pass: prompt ``prompt_frames``, propagate from frame 0, write the kept parity into ``masks``."""
        self.predictor.reset_state(state)
        for index in prompt_frames:
            mask = torch.from_numpy(prompts[index])
            self.predictor.add_new_mask(state, frame_idx=int(index), obj_id=OBJECT_ID, mask=mask)
        for frame_index, _, mask_logits in self.predictor.propagate_in_video(state, start_frame_idx=0):
            if frame_index % 2 == kept_parity:
                masks[frame_index] = (mask_logits[0, 0] > 0).cpu().numpy()


def _as_numpy(probability: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(probability, torch.Tensor):
        return probability.detach().float().cpu().numpy()
    return np.asarray(probability, dtype=np.float32)


def _check_inputs(frames: np.ndarray, probability: np.ndarray) -> None:
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3:
        raise InputError(
            f"SAM2 refinement needs frames [N, H, W, 3] uint8 RGB, got {type(frames).__name__} of shape "
            f"{getattr(frames, 'shape', None)} and dtype {getattr(frames, 'dtype', None)}"
        )
    if probability.ndim != 3 or probability.shape[0] != frames.shape[0]:
        raise InputError(
            f"SAM2 refinement needs one probability map [N, h, w] per frame: {frames.shape[0]} frames, "
            f"probability of shape {probability.shape}"
        )
