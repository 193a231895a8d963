"""TensorRT engines from exported ONNX files: build, the --format engine step, implicit INT8."""
