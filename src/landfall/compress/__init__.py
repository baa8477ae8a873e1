"""Compression: ONNX export and quantisation (more methods: pruning, distillation)."""
