# SPDX-License-Identifier: Apache-2.0
"""Rosbag tools: write benchmark sequences as bags, replay bags through the node, score them."""
