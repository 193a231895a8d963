"""The TensorRT backend: tensorrt package, engine sidecar checks, CUDA buffers, the engine Encoder."""
