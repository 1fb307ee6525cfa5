# SPDX-License-Identifier: Apache-2.0
"""Camera head: pooled patch features -> camera-to-world pose with an SVD-orthogonalised rotation."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


NUM_BLOCKS = 2  # residual MLP blocks before the pooling
BLOCK_LAYERS = 3  # linear layers per block


class ResidualMlpBlock(nn.Module):
    """``x + relu(linear3(relu(linear2(relu(linear1(x))))))``.

    Pi3's ``ResConvBlock`` with equal widths; its layers, linear despite the official names
    ``res_conv1..3``, are ``linear1..3`` here (docs/model.md lists every renamed module).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(dim, dim)
        self.linear2 = nn.Linear(dim, dim)
        self.linear3 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.linear1(x))
        y = F.relu(self.linear2(y))
        return x + F.relu(self.linear3(y))


def closest_rotation(matrix: torch.Tensor) -> torch.Tensor:
    """Closest proper rotation ``[..., 3, 3]`` to ``matrix`` after L2-normalising its rows."""
    rows = F.normalize(matrix, dim=-1)
    u, _, vh = torch.linalg.svd(rows)
    det = torch.det(u @ vh)
    u = torch.cat([u[..., :2], u[..., 2:] * det[..., None, None]], dim=-1)
    return u @ vh


class CameraHead(nn.Module):
    """Two residual MLP blocks per token, mean over patches, two more layers, translation + rotation."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(ResidualMlpBlock(dim) for _ in range(NUM_BLOCKS))
        self.more_mlps = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim), nn.ReLU())
        self.fc_t = nn.Linear(dim, 3)
        self.fc_rot = nn.Linear(dim, 9)

    def features(self, patch_tokens: torch.Tensor) -> torch.Tensor:
        """``patch_tokens`` ``[B*N, P, dim]`` -> the pooled camera feature ``[B*N, dim]`` the two
        output layers read."""
        x = patch_tokens
        for block in self.blocks:
            x = block(x)
        return self.more_mlps(x.mean(dim=1))

    def forward(self, patch_tokens: torch.Tensor) -> torch.Tensor:
        """``patch_tokens`` ``[B*N, P, dim]`` -> camera-to-world poses ``[B*N, 4, 4]``."""
        feature = self.features(patch_tokens)
        translation = self.fc_t(feature)
        rotation = closest_rotation(self.fc_rot(feature).reshape(-1, 3, 3))
        pose = torch.zeros(feature.shape[0], 4, 4, dtype=rotation.dtype, device=rotation.device)
        pose[:, :3, :3] = rotation
        pose[:, :3, 3] = translation
        pose[:, 3, 3] = 1.0
        return pose
