# SPDX-License-Identifier: Apache-2.0
"""ROS 2 adapters for GeoMotion: the node, message conversion and bag replay."""
