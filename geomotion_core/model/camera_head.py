"""Camera head: pooled patch features -> camera-to-world pose with an SVD-orthogonalised rotation."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ResidualMlpBlock(nn.Module):
    """``x + relu(l3(relu(l2(relu(l1(x))))))`` (Pi3's ``ResConvBlock`` with equal widths)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.res_conv1 = nn.Linear(dim, dim)
        self.res_conv2 = nn.Linear(dim, dim)
        self.res_conv3 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.res_conv1(x))
        y = F.relu(self.res_conv2(y))
        return x + F.relu(self.res_conv3(y))


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
        self.res_conv = nn.ModuleList([ResidualMlpBlock(dim), ResidualMlpBlock(dim)])
        self.more_mlps = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim), nn.ReLU())
        self.fc_t = nn.Linear(dim, 3)
        self.fc_rot = nn.Linear(dim, 9)

    def forward(self, patch_tokens: torch.Tensor) -> torch.Tensor:
        """``patch_tokens`` ``[B*N, P, dim]`` -> camera-to-world poses ``[B*N, 4, 4]``."""
        x = patch_tokens
        for block in self.res_conv:
            x = block(x)
        feature = self.more_mlps(x.mean(dim=1))
        translation = self.fc_t(feature)
        rotation = closest_rotation(self.fc_rot(feature).reshape(-1, 3, 3))
        pose = torch.zeros(feature.shape[0], 4, 4, dtype=rotation.dtype, device=rotation.device)
        pose[:, :3, :3] = rotation
        pose[:, :3, 3] = translation
        pose[:, 3, 3] = 1.0
        return pose
