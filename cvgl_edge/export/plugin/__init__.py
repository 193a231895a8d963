"""The SelectiveScan TensorRT plugin on the user's machine: native toolchain, build, cache."""
