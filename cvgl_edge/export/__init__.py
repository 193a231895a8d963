"""Export of trained encoders to deployable files.

Now: one GeoSSM branch -> FP32 ONNX with one ``cvgl.SelectiveScan`` node per scan and
a standard-op local function of that name (runs in onnxruntime; TensorRT >= 10.7 picks
a plugin of the same name instead); INT8 as explicit QDQ ONNX (MatMul/Gemm/Conv quantized,
scan and norms float) calibrated from a recipe in calibration/. VimGeo exports like GeoSSM;
LRFR (ConvNeXt + GSRA + SALAD) has no scan: its files are standard ops only (no function,
no plugin). FP16 graphs and TensorRT engines: onnx/fp16.py, tensorrt/build.py.
Nothing heavy (onnx, onnxscript, onnxruntime) is imported until a submodule is used.

Layout: the ``cvgl-edge export`` / ``verify`` pipeline is at this level (pipeline.py,
verify.py, auto_verify.py, recall.py, sample_images.py); each technology has a subpackage:
onnx/ (ONNX files), scan/ (the SelectiveScan op), int8/ (QDQ INT8), tensorrt/ (engines),
plugin/ (the TensorRT plugin build). onnx_export.py, trt_build.py and trt_backend.py only
keep old import paths working.
"""
