# SPDX-License-Identifier: Apache-2.0
"""The network as exportable graphs: an encoder graph and a decoder graph (or one whole graph).

ONNX has no SVD, so the graphs stop just before the camera head's rotation projection: they
return the camera head's raw 3x3 rotation (with the translation, as a ``[.., 4, 4]`` matrix) and the
camera-frame points; :func:`finish_camera` projects the rotation onto SO(3) with the model's own
:func:`closest_rotation` and applies the poses to the points, on whatever device the outputs are.
Everything else is the model's own ``encode`` / ``decode``, unchanged.
"""
from __future__ import annotations

import copy
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from geomotion_core.model import GeoMotion
from geomotion_core.model.camera_head import CameraHead, closest_rotation
from geomotion_core.model.geomotion import GeoMotionOutput

ENCODER_INPUTS = ("images",)
ENCODER_OUTPUTS = ("tokens",)
DECODER_INPUTS = ("tokens", "flow_magnitude")
WHOLE_INPUTS = ("images", "flow_magnitude")
GRAPH_OUTPUTS = ("motion_mask", "conf", "camera_raw", "local_points")


class RawCameraHead(nn.Module):
    """The camera head's layers (shared, not copied) without the SVD: ``[B*N, 4, 4]`` with the raw
    ``fc_rot`` 3x3 in place of the rotation."""

    def __init__(self, head: CameraHead) -> None:
        super().__init__()
        self.head = head

    def forward(self, patch_tokens: torch.Tensor) -> torch.Tensor:
        feature = self.head.features(patch_tokens)
        translation = self.head.fc_t(feature)[:, :, None]
        rotation = self.head.fc_rot(feature).reshape(-1, 3, 3)
        top = torch.cat([rotation, translation], dim=-1)
        bottom = F.pad(torch.ones_like(translation[:, :1]), (3, 0))  # [0, 0, 0, 1]
        return torch.cat([top, bottom], dim=1)


def without_rotation_projection(model: GeoMotion) -> GeoMotion:
    """A shallow copy of ``model`` (same parameters) whose camera head stops before the SVD."""
    clone = copy.copy(model)
    clone._modules = dict(model._modules)
    clone._modules["camera_head"] = RawCameraHead(model.camera_head)
    return clone


class GraphOutputs(NamedTuple):
    """What a decoder graph returns (all float32)."""

    motion_mask: torch.Tensor  # [B, N, H, W]
    conf: torch.Tensor  # [B, N, H, W, 1]
    camera_raw: torch.Tensor  # [B, N, 4, 4]: raw 3x3 rotation, translation
    local_points: torch.Tensor  # [B, N, H, W, 3]


def finish_camera(outputs: GraphOutputs) -> GeoMotionOutput:
    """Graph outputs -> the network's outputs: rotation projected onto SO(3), world points."""
    raw = outputs.camera_raw
    rotation = closest_rotation(raw[..., :3, :3])
    translation = raw[..., :3, 3]
    poses = torch.cat([torch.cat([rotation, translation[..., None]], dim=-1), raw[..., 3:, :]], dim=-2)
    points = torch.einsum("bnij,bnhwj->bnhwi", rotation, outputs.local_points) + translation[:, :, None, None]
    return GeoMotionOutput(
        motion_mask=outputs.motion_mask,
        conf=outputs.conf,
        camera_poses=poses,
        local_points=outputs.local_points,
        points=points,
    )


class EncoderGraph(nn.Module):
    """``images [F, 3, H, W]`` in [0, 1] -> encoder tokens ``[F, h*w, C]`` (per frame)."""

    def __init__(self, model: GeoMotion) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.encode(images[None])[0]


class DecoderGraph(nn.Module):
    """``tokens [1, N, h*w, C]`` + ``flow_magnitude [1, N, H, W]`` -> :class:`GraphOutputs`."""

    def __init__(self, model: GeoMotion, image_size: tuple[int, int]) -> None:
        super().__init__()
        self.model = without_rotation_projection(model)
        self.image_size = image_size

    def forward(self, tokens: torch.Tensor, flow_magnitude: torch.Tensor) -> GraphOutputs:
        return _graph_outputs(self.model.decode(tokens, flow_magnitude, self.image_size))


class WholeGraph(nn.Module):
    """``images [1, N, 3, H, W]`` + ``flow_magnitude [1, N, H, W]`` -> :class:`GraphOutputs`."""

    def __init__(self, model: GeoMotion) -> None:
        super().__init__()
        self.model = without_rotation_projection(model)

    def forward(self, images: torch.Tensor, flow_magnitude: torch.Tensor) -> GraphOutputs:
        return _graph_outputs(self.model(images, flow_magnitude))


def _graph_outputs(output: GeoMotionOutput) -> GraphOutputs:
    return GraphOutputs(output.motion_mask, output.conf, output.camera_poses, output.local_points)
