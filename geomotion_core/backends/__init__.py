# SPDX-License-Identifier: Apache-2.0
"""The one factory of motion backends, and the adapters from ``BackendOptions`` to each backend.

The CLI, the streaming engine (and so the ROS node) and the bag evaluator all build their backend
with :func:`build_backend` from one :class:`~geomotion_core.backend.BackendOptions`. Each backend
is registered in ``BUILDERS`` under its name; its module is imported only when it is built, so
that building the weight-free backend never loads the network, its checkpoint code or SAM2.
"""
from __future__ import annotations

from typing import Callable

from geomotion_core.backend import BACKENDS, BackendOptions, MotionBackend

__all__ = ["BACKENDS", "BUILDERS", "BackendOptions", "MotionBackend", "build_backend"]


def _network(options: BackendOptions) -> MotionBackend:
    from geomotion_core.backends.network import network_backend

    return network_backend(options)


def _geometric(options: BackendOptions) -> MotionBackend:
    from geomotion_core.backends.geometric import geometric_backend

    return geometric_backend(options)


# backend name (one of BACKENDS) -> the adapter that builds it from BackendOptions
BUILDERS: dict[str, Callable[[BackendOptions], MotionBackend]] = {"geomotion": _network, "geometric": _geometric}


def build_backend(options: BackendOptions) -> MotionBackend:
    """Build the backend named by ``options.backend`` (``ConfigError`` on an invalid option)."""
    options.validate()
    return BUILDERS[options.backend](options)
