"""The test suite, laid out like the package: tests/<subpackage>/ tests cvgl_edge/<subpackage>/.

- tests/core/: the top-level modules (cvgl_edge/*.py: io, model_catalog, ...);
- tests/package/: the package as a whole (import layers, the torch-free deployment install);
- tests/native/: the native export side (export/: CUDA kernel, TensorRT plugin; plugin_driver.cpp);
- tests/support/: helpers shared by tests (no tests in it), imported as ``tests.support.<module>``.

Every folder is a package (an ``__init__.py``), so test files in different folders may share a
name (tests/cli/test_cli.py, tests/localize/test_cli.py): pytest's default import mode imports
them as ``tests.<folder>.<name>`` with the repository root on ``sys.path``.
"""
