"""Export of trained encoders to deployable files.

Now: one GeoSSM branch -> FP32 ONNX with one ``cvgl.SelectiveScan`` node per scan and
a standard-op local function of that name (runs in onnxruntime; TensorRT >= 10.7 picks
a plugin of the same name instead). Next: TensorRT engines (FP16 / INT8).
Nothing heavy (onnx, onnxscript, onnxruntime) is imported until a submodule is used.
"""
