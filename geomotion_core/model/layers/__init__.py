# SPDX-License-Identifier: Apache-2.0
"""Building blocks of the GeoMotion network."""
from geomotion_core.model.layers.attention import Attention
from geomotion_core.model.layers.block import Block
from geomotion_core.model.layers.layer_scale import LayerScale
from geomotion_core.model.layers.mlp import Mlp
from geomotion_core.model.layers.patch_embed import PatchEmbed
from geomotion_core.model.layers.rope2d import RotaryTables, apply_rotary, patch_positions, rotary_tables

__all__ = [
    "Attention", "Block", "LayerScale", "Mlp", "PatchEmbed", "RotaryTables", "apply_rotary",
    "patch_positions", "rotary_tables",
]
