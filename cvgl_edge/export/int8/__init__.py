"""INT8 as explicit QDQ ONNX: calibration recipes, quantization, placement checks, the int8 pipeline."""
