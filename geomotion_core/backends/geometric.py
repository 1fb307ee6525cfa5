# SPDX-License-Identifier: Apache-2.0
"""``BackendOptions`` -> the weight-free :class:`~geomotion_core.geometric.GeometricBackend`."""
from __future__ import annotations

from geomotion_core.backend import BackendOptions
from geomotion_core.geometric import GeometricBackend, GeometricConfig


def geometric_backend(options: BackendOptions) -> GeometricBackend:
    """The geometric backend with ``options.geometric`` settings over the defaults (other options unused)."""
    return GeometricBackend(GeometricConfig.from_settings(options.geometric))
