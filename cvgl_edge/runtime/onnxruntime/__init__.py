"""The ONNX Runtime backend: sessions, the metadata an exported file carries, the .onnx Encoder."""
