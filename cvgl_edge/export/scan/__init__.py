"""The cvgl.SelectiveScan ONNX op (contract, standard-op body, lowering), shared by ONNX and TensorRT."""
