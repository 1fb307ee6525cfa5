# SPDX-License-Identifier: Apache-2.0
"""Deployment: the network exported to ONNX, and the engines that run it (onnxruntime, TensorRT)."""
