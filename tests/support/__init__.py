"""Helpers shared by the tests: import them as ``tests.support.<module>``, never from a test module.

- cli: ``cvgl-edge ARGS`` in a subprocess, its one-line errors, the shared training run;
- tiny: the tiny GeoSSM settings the fast tests share;
- fake_datasets: CVUSA, CVACT, University-1652 and VIGOR trees in the public layouts;
- fake_tensorrt: a stand-in ``tensorrt`` for the engine builder and parser (export);
- fake_trt_runtime: a stand-in ``tensorrt`` runtime and CUDA memory for the TensorRT encoder;
- trt_available: whether a TensorRT Python package is importable;
- localize: a tiny satellite encoder and a small georeferenced map;
- autopilot_sim: simulated ArduPilot / PX4 consumers of the MAVLink stream;
- vim_shapes: the tensor shapes of an official Vim checkpoint;
- native_build, scan_float64: native builds (HIP-CPU kernel, plugin driver) and their float64 reference;
- paths: the repository's folders.

tests/conftest.py registers this package for pytest's assertion rewriting.
"""
