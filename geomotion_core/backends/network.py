# SPDX-License-Identifier: Apache-2.0
"""``BackendOptions`` -> the GeoMotion :class:`~geomotion_core.pipeline.network_backend.NetworkBackend`."""
from __future__ import annotations

import torch

from geomotion_core.backend import BackendOptions
from geomotion_core.flow import build_flow_estimator
from geomotion_core.pipeline.model_loading import load_network, resolve_checkpoint, resolve_device
from geomotion_core.pipeline.network_backend import NetworkBackend


def network_backend(options: BackendOptions) -> NetworkBackend:
    """Load the network (checkpoint and model config of ``options``) and the flow estimator.

    With an exported engine (onnxruntime, tensorrt) the network is loaded on the CPU only to be
    exported (or matched with its cached export) and runs through that engine on ``options.device``.
    """
    device = resolve_device(options.device)
    checkpoint = resolve_checkpoint(options.checkpoint, options.allow_random_weights)
    network = None
    if options.engine == "torch":
        model = load_network(checkpoint, options.model_config, device)
    else:
        from geomotion_core.export.engines import ExportedNetwork
        from geomotion_core.export.store import weights_identity

        model = load_network(checkpoint, options.model_config, torch.device("cpu"))
        network = ExportedNetwork(options.engine, model, weights_identity(checkpoint), device, options.precision)
    flow = build_flow_estimator(options.flow, options.raft_weights, device)
    return NetworkBackend(
        model, flow, device, options.precision, options.size, options.keep_aspect, options.points,
        network=network, engine=options.engine,
    )
