# SPDX-License-Identifier: Apache-2.0
"""``GeoMotionConfig``: every size of the network, with the official preset and validation."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from geomotion_core.errors import ConfigError
from geomotion_core.options.loader import load

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class GeoMotionConfig:
    """Sizes of the GeoMotion network; field names are the keys of ``config.json["model"]``.

    The defaults are the official (full-size) network: DINOv2 ViT-L/14 with 4 registers, 36
    alternating frame/global blocks, three 5-block head decoders and the motion-aware fusion.
    """

    patch_size: int = 14
    image_mean: tuple[float, float, float] = IMAGENET_MEAN
    image_std: tuple[float, float, float] = IMAGENET_STD
    # DINOv2 encoder
    enc_img_size: int = 518
    enc_embed_dim: int = 1024
    enc_depth: int = 24
    enc_num_heads: int = 16
    enc_mlp_ratio: float = 4.0
    enc_num_register_tokens: int = 4
    enc_layerscale_init: float = 1.0
    enc_interpolate_antialias: bool = True
    enc_interpolate_offset: float = 0.0
    # alternating frame/global decoder ("aggregator")
    dec_embed_dim: int = 1024
    dec_depth: int = 36
    dec_num_heads: int = 16
    dec_mlp_ratio: float = 4.0
    dec_layerscale_init: float = 0.01
    num_register_tokens: int = 5
    rope_freq: float = 100.0
    tapped_low_layers: tuple[int, ...] = (5, 15)
    # point / motion / camera head decoders
    head_dec_embed_dim: int = 1024
    head_dec_num_heads: int = 16
    head_dec_depth: int = 5
    head_mlp_ratio: float = 4.0
    point_out_dim: int = 1024
    camera_out_dim: int = 512
    # motion-aware fusion
    motion_hidden_dim: int = 2048
    flow_channels: tuple[int, ...] = field(default=(32, 64, 128))

    def __post_init__(self) -> None:
        for name in ("image_mean", "image_std", "tapped_low_layers", "flow_channels"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        self.validate()

    @classmethod
    def official(cls) -> "GeoMotionConfig":
        """The full-size network of the official GeoMotion weights."""
        return cls()

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "GeoMotionConfig":
        """Build from a mapping such as ``config.json["model"]``; unknown keys and values of the
        wrong type are a ConfigError."""
        return load(cls, values, noun="model config key")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping that ``from_dict`` reads back."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @property
    def enc_head_dim(self) -> int:
        return self.enc_embed_dim // self.enc_num_heads

    @property
    def dec_head_dim(self) -> int:
        return self.dec_embed_dim // self.dec_num_heads

    @property
    def head_dec_head_dim(self) -> int:
        return self.head_dec_embed_dim // self.head_dec_num_heads

    @property
    def tapped_high_layers(self) -> tuple[int, int]:
        """The last two decoder blocks, whose outputs feed the heads."""
        return (self.dec_depth - 2, self.dec_depth - 1)

    @property
    def enc_pos_grid(self) -> int:
        """Side of the encoder's stored position-embedding grid."""
        return self.enc_img_size // self.patch_size

    def validate(self) -> None:
        """Raise ``ConfigError`` naming the first inconsistent field."""
        positive = (
            "patch_size", "enc_img_size", "enc_embed_dim", "enc_depth", "enc_num_heads",
            "dec_embed_dim", "dec_depth", "dec_num_heads", "head_dec_embed_dim",
            "head_dec_num_heads", "head_dec_depth", "point_out_dim", "camera_out_dim",
            "motion_hidden_dim", "enc_mlp_ratio", "dec_mlp_ratio", "head_mlp_ratio", "rope_freq",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)!r}")
        for name in ("enc_num_register_tokens", "num_register_tokens"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if len(self.image_mean) != 3 or len(self.image_std) != 3:
            raise ConfigError("image_mean and image_std must have 3 entries (RGB)")
        if min(self.image_std) <= 0:
            raise ConfigError(f"image_std entries must be positive, got {self.image_std}")
        if self.enc_img_size % self.patch_size:
            raise ConfigError(
                f"enc_img_size ({self.enc_img_size}) must be a multiple of patch_size ({self.patch_size})"
            )
        if self.enc_interpolate_offset != 0.0:
            raise ConfigError(
                f"enc_interpolate_offset must be 0.0 (the official value: the position grid is resized "
                f"to exactly h x w), got {self.enc_interpolate_offset}"
            )
        for dim, heads, label in (
            ("enc_embed_dim", "enc_num_heads", "encoder"),
            ("dec_embed_dim", "dec_num_heads", "decoder"),
            ("head_dec_embed_dim", "head_dec_num_heads", "head decoder"),
        ):
            if getattr(self, dim) % getattr(self, heads):
                raise ConfigError(
                    f"{dim} ({getattr(self, dim)}) must be divisible by {heads} ({getattr(self, heads)})"
                )
            if label != "encoder" and (getattr(self, dim) // getattr(self, heads)) % 4:
                raise ConfigError(f"{label} head dimension must be divisible by 4 for 2-D RoPE")
        if self.enc_embed_dim != self.dec_embed_dim:
            raise ConfigError(
                f"enc_embed_dim ({self.enc_embed_dim}) must equal dec_embed_dim ({self.dec_embed_dim}):"
                " encoder tokens enter the decoder without projection"
            )
        if self.motion_hidden_dim != 2 * self.dec_embed_dim:
            raise ConfigError(
                f"motion_hidden_dim ({self.motion_hidden_dim}) must be 2 * dec_embed_dim "
                f"({2 * self.dec_embed_dim}): it replaces the last-two-layer features in the motion decoder"
            )
        if self.dec_depth < 2:
            raise ConfigError(
                f"dec_depth must be >= 2 (the heads read the last two blocks), got {self.dec_depth}"
            )
        if not self.tapped_low_layers:
            raise ConfigError("tapped_low_layers must name at least one decoder block")
        if len(set(self.tapped_low_layers)) != len(self.tapped_low_layers):
            raise ConfigError(f"tapped_low_layers must be distinct, got {list(self.tapped_low_layers)}")
        for layer in self.tapped_low_layers:
            if not 0 <= layer < self.dec_depth:
                raise ConfigError(
                    f"tapped low layer {layer} does not exist: the decoder has blocks 0..{self.dec_depth - 1}"
                )
        if len(self.flow_channels) < 1 or min(self.flow_channels) <= 0:
            raise ConfigError(f"flow_channels must be positive widths, got {list(self.flow_channels)}")
        if 2 + 2 * len(self.flow_channels) > self.patch_size:
            raise ConfigError(
                f"{len(self.flow_channels)} flow convolutions reach beyond a {self.patch_size}-pixel patch"
            )


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
