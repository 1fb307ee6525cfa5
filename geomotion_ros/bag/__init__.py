"""Rosbag tools: write benchmark sequences as bags, replay bags through the node, score them."""
