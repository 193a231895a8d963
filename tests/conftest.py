"""Suite-wide set-up: one compute thread per pytest-xdist worker.

Why: with ``pytest -n 2`` on a 2-core machine, two workers that each run torch and ONNX Runtime
with a thread per core (and spawn CLI subprocesses that do the same) oversubscribe the cores, and
OpenMP's spin-waiting then slows every test several times over. Set before torch is imported, the
variables reach the workers' own kernels and every subprocess they start.
"""

from __future__ import annotations

import os

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(name, "1")

# The shared helpers (tests/support/) assert too: their failures show the values, as a test's own do.
pytest.register_assert_rewrite("tests.support")
