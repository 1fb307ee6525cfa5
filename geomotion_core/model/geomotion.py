# SPDX-License-Identifier: Apache-2.0
"""The GeoMotion network: Pi3 geometry backbone + motion-aware fusion + motion decoder."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, fields
from typing import Iterator, Mapping, Sequence

import torch
from torch import nn

from geomotion_core.model import state_dict as names
from geomotion_core.model.aggregator import Aggregator
from geomotion_core.model.camera_head import CameraHead
from geomotion_core.model.config import GeoMotionConfig
from geomotion_core.model.encoder import DinoEncoder
from geomotion_core.model.heads import HeadDecoder, PixelShuffleHead
from geomotion_core.model.inputs import check_flow, check_images, check_tokens
from geomotion_core.model.layers import patch_positions, rotary_tables
from geomotion_core.model.motion import MotionFusion

# Trained by the official recipe; everything else stays frozen.
TRAINABLE_MODULES = ("motion_fusion", "motion_decoder", "motion_head")


@dataclass
class GeoMotionOutput:
    """Network outputs (also readable as ``out["motion_mask"]``)."""

    motion_mask: torch.Tensor  # [B, N, H, W] sigmoid(conf)
    conf: torch.Tensor  # [B, N, H, W, 1] motion logits
    camera_poses: torch.Tensor  # [B, N, 4, 4] camera-to-world
    local_points: torch.Tensor  # [B, N, H, W, 3] camera-frame points
    points: torch.Tensor  # [B, N, H, W, 3] world points

    def __getitem__(self, key: str) -> torch.Tensor:
        if key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)

    def keys(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self))

    def items(self) -> Iterator[tuple[str, torch.Tensor]]:
        return ((key, getattr(self, key)) for key in self.keys())


def _unflatten(x: torch.Tensor, clip: tuple[int, int]) -> torch.Tensor:
    """``[B*N, ...]`` -> ``[B, N, ...]``."""
    return x.reshape(*clip, *x.shape[1:])


class GeoMotion(nn.Module):
    """GeoMotion: frames ``[B, N, 3, H, W]`` (+ flow magnitudes) -> motion masks, poses, points.

    ``forward = decode(encode(images), flow_magnitude, image_size)``. ``encode`` is per frame (so a
    streaming caller may cache its tokens); ``decode`` mixes the frames of a clip. Pass
    ``device="meta"`` to build without allocating weights.
    """

    def __init__(
        self, config: GeoMotionConfig | None = None, *, device: torch.device | str | None = None
    ) -> None:
        super().__init__()
        self.config = config = config or GeoMotionConfig.official()
        head_in = 2 * config.dec_embed_dim
        head_args = dict(
            dim=config.head_dec_embed_dim,
            depth=config.head_dec_depth,
            num_heads=config.head_dec_num_heads,
            mlp_ratio=config.head_mlp_ratio,
        )
        with torch.device(device) if device is not None else contextlib.nullcontext():
            self.register_buffer("image_mean", torch.tensor(config.image_mean).reshape(1, 3, 1, 1))
            self.register_buffer("image_std", torch.tensor(config.image_std).reshape(1, 3, 1, 1))
            self.encoder = DinoEncoder(config)
            self.aggregator = Aggregator(config)
            self.motion_fusion = MotionFusion(config)
            self.point_decoder = HeadDecoder(head_in, out_dim=config.point_out_dim, **head_args)
            self.point_head = PixelShuffleHead(config.point_out_dim, 3, config.patch_size)
            self.motion_decoder = HeadDecoder(
                config.motion_hidden_dim, out_dim=config.point_out_dim, **head_args
            )
            self.motion_head = PixelShuffleHead(config.point_out_dim, 1, config.patch_size)
            self.camera_decoder = HeadDecoder(head_in, out_dim=config.camera_out_dim, **head_args)
            self.camera_head = CameraHead(config.camera_out_dim)

    # -- forward -------------------------------------------------------------------------------

    def forward(self, images: torch.Tensor, flow_magnitude: torch.Tensor | None = None) -> GeoMotionOutput:
        """Run the network on one or more clips.

        Args:
            images: ``[B, N, 3, H, W]`` float, normalised here with ``image_mean``/``image_std``
                (``[N, 3, H, W]`` gains a batch dim); H and W multiples of the patch size.
            flow_magnitude: ``[B, N, H, W]`` optical-flow magnitudes in pixels (``[N, H, W]`` gains
                a batch dim), or ``None`` for Pi3's plain confidence path.
        """
        images = check_images(images, self.config.patch_size)
        size = (images.shape[-2], images.shape[-1])
        if flow_magnitude is not None:
            flow_magnitude = check_flow(flow_magnitude, images.shape[0], images.shape[1], size)
        return self.decode(self.encode(images), flow_magnitude, size)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Per-frame encoder tokens ``[B, N, h*w, C]`` of images ``[B, N, 3, H, W]`` in [0, 1]."""
        images = check_images(images, self.config.patch_size)
        batch, frames = images.shape[:2]
        normalised = (images - self.image_mean) / self.image_std
        tokens = self.encoder(normalised.flatten(0, 1))
        return tokens.reshape(batch, frames, *tokens.shape[1:])

    def decode(
        self,
        tokens: torch.Tensor,
        flow_magnitude: torch.Tensor | None,
        image_size: Sequence[int],
    ) -> GeoMotionOutput:
        """Encoder tokens ``[B, N, h*w, C]`` of one clip (+ flow ``[B, N, H, W]``) -> outputs."""
        config = self.config
        tokens = check_tokens(tokens, config.dec_embed_dim, tuple(image_size), config.patch_size)
        batch, frames = tokens.shape[:2]
        height, width = int(image_size[0]), int(image_size[1])
        grid_h, grid_w = height // config.patch_size, width // config.patch_size
        positions = patch_positions(grid_h, grid_w, config.num_register_tokens, tokens.device)
        rope = rotary_tables(positions, config.dec_head_dim, config.rope_freq, tokens.dtype)
        aggregated = self.aggregator(tokens, rope)
        head_rope = rotary_tables(positions, config.head_dec_head_dim, config.rope_freq, aggregated.high.dtype)
        camera_hidden = self.camera_decoder(aggregated.high, head_rope)
        motion_hidden = aggregated.high
        if flow_magnitude is not None:
            flow = check_flow(flow_magnitude, batch, frames, (height, width)).flatten(0, 1)
            motion_hidden = self.motion_fusion(aggregated.low, aggregated.high, flow, camera_hidden)
        point_hidden = self.point_decoder(aggregated.high, head_rope)
        motion_hidden = self.motion_decoder(motion_hidden, head_rope)
        return self._heads(point_hidden, motion_hidden, camera_hidden, (batch, frames), (grid_h, grid_w))

    def _heads(
        self,
        point_hidden: torch.Tensor,
        motion_hidden: torch.Tensor,
        camera_hidden: torch.Tensor,
        clip: tuple[int, int],
        grid: tuple[int, int],
    ) -> GeoMotionOutput:
        """Dense and camera heads in at least float32, with autocast off (as officially)."""
        start = self.config.num_register_tokens
        dtype = torch.promote_types(point_hidden.dtype, torch.float32)
        with torch.autocast(device_type=point_hidden.device.type, enabled=False):
            raw_points = self.point_head(point_hidden[:, start:].to(dtype), *grid)
            xy, log_depth = raw_points.split([2, 1], dim=-1)
            depth = log_depth.exp()
            local_points = torch.cat([xy * depth, depth], dim=-1)
            conf = self.motion_head(motion_hidden[:, start:].to(dtype), *grid)
            poses = self.camera_head(camera_hidden[:, start:].to(dtype))
            rotation, translation = poses[:, :3, :3], poses[:, None, None, :3, 3]
            points = torch.einsum("bij,bhwj->bhwi", rotation, local_points) + translation
        return GeoMotionOutput(
            motion_mask=_unflatten(torch.sigmoid(conf[..., 0]), clip),
            conf=_unflatten(conf, clip),
            camera_poses=_unflatten(poses, clip),
            local_points=_unflatten(local_points, clip),
            points=_unflatten(points, clip),
        )

    # -- official weights and training -----------------------------------------------------------

    def to_official_state_dict(self) -> dict[str, torch.Tensor]:
        """The state dict under the official key names, in the official order."""
        return names.to_official(self.state_dict())

    def official_shapes(self) -> dict[str, tuple[int, ...]]:
        """Official key -> shape of every state-dict entry (works on the meta device)."""
        return {key: tuple(value.shape) for key, value in self.to_official_state_dict().items()}

    def load_official_state_dict(
        self,
        state: Mapping[str, torch.Tensor],
        *,
        allow_missing: Sequence[str] = (),
        source: str = "state dict",
        assign: bool = False,
    ) -> names.KeyReport:
        """Load an official-named state dict; raise ``CheckpointError`` unless every key fits.

        ``allow_missing``: official key prefixes that may be absent (they keep their current
        values). ``assign`` replaces the parameters instead of copying (for meta-built models).
        """
        state = names.strip_prefix(state)
        report = names.compare(self.official_shapes(), state, allow_missing)
        names.require_exact(report, source)
        ours = {names.from_official_key(key): value for key, value in state.items()}
        self.load_state_dict(ours, strict=False, assign=assign)
        return report

    def freeze_backbone(self) -> None:
        """Freeze everything but the motion branch (fusion, motion decoder and head), as officially."""
        for name, parameter in self.named_parameters():
            parameter.requires_grad_(name.startswith(TRAINABLE_MODULES))

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters with ``requires_grad`` (after ``freeze_backbone``: the motion branch)."""
        return [p for p in self.parameters() if p.requires_grad]
