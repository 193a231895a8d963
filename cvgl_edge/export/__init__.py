"""Export of trained encoders to deployable files.

Now: one GeoSSM branch -> FP32 ONNX with one ``cvgl.SelectiveScan`` node per scan and
a standard-op local function of that name (runs in onnxruntime; TensorRT >= 10.7 picks
a plugin of the same name instead); INT8 as explicit QDQ ONNX (MatMul/Gemm/Conv quantized,
scan and norms float) calibrated from a recipe in calibration/. VimGeo exports like GeoSSM;
LRFR (ConvNeXt + GSRA + SALAD) has no scan: its files are standard ops only (no function,
no plugin). FP16 graphs and TensorRT engines: fp16_model.py, trt_build.py.
Nothing heavy (onnx, onnxscript, onnxruntime) is imported until a submodule is used.
"""
