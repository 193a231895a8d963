"""ONNX files from a checkpoint (FP32, FP16): the export, its metadata, versions and checks."""
