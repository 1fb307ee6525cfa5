# SPDX-License-Identifier: Apache-2.0
"""Dense optical flow: torchvision RAFT-large (the official estimator) and OpenCV DIS (no weights).

The estimators are imported lazily so that importing this package stays cheap.
"""
from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

import torch

from geomotion_core.errors import ConfigError
from geomotion_core.flow.base import FlowEstimator

if TYPE_CHECKING:
    from geomotion_core.flow.dis import DISFlowEstimator
    from geomotion_core.flow.raft import RaftFlowEstimator

__all__ = ["FlowEstimator", "RaftFlowEstimator", "DISFlowEstimator", "build_flow_estimator"]

_LAZY_EXPORTS = {
    "RaftFlowEstimator": "geomotion_core.flow.raft",
    "DISFlowEstimator": "geomotion_core.flow.dis",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY_EXPORTS:
        return getattr(importlib.import_module(_LAZY_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_flow_estimator(
    method: str,
    raft_weights: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    **raft_options: Any,
) -> FlowEstimator:
    """The flow estimator named ``method``.

    Args:
        method: ``raft`` (official; needs the C_T_SKHT_V2 weight file) or ``dis`` (OpenCV, CPU).
        raft_weights: explicit RAFT weight file; otherwise the one in GEOMOTION_HOME.
        device: where RAFT runs (DIS always runs on the CPU).
        raft_options: ``precision``, ``batch_size``, ``num_flow_updates`` of RaftFlowEstimator.
    """
    if method == "raft":
        from geomotion_core.flow.raft import RaftFlowEstimator

        return RaftFlowEstimator.from_weights(raft_weights, device=device, **raft_options)
    if method == "dis":
        from geomotion_core.flow.dis import DISFlowEstimator

        return DISFlowEstimator()
    raise ConfigError(f"flow method must be 'raft' or 'dis', got {method!r}")
