# SPDX-License-Identifier: Apache-2.0
"""GeoMotion core: the network, flow, refinement, streaming engine, evaluation and training.

Nothing in this package imports ROS; `geomotion_ros` adapts it to ROS 2.
"""

__version__ = "0.1.0"
