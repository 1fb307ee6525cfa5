"""Deployment: the network exported to ONNX, and the engines that run it (onnxruntime, TensorRT)."""
