"""Compression: ONNX export and int8 quantisation, structured pruning, distillation, and
`compress`, which tries them under an accuracy budget."""
