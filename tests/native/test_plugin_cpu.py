"""The TensorRT plugin object, driven through TensorRT's interfaces on the CPU, per TensorRT header set.

tests/native/plugin_driver.cpp is compiled with the plugin source against each TensorRT
header set (CI: 10.3 = JetPack 6, 10.16, 11.1; warnings are errors in our files) and linked to
the CUDA kernel built for the CPU (HIP-CPU); no libnvinfer is involved. It plays TensorRT's
part: creator, fields as the ONNX parser passes them, build-phase calls, serialization,
runtime-phase calls, and enqueue, whose output is compared here with the float64 reference.
Skipped without the headers or HIP-CPU (a user's clone has neither; .ci/run provides both).
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from tests.support import native_build
from tests.support.scan_float64 import ScanCase, load, make_inputs, reference, tolerance

_reason = native_build.tensorrt_missing_reason() or native_build.hip_cpu_missing_reason()
if _reason is None and native_build.cuda_include() is None:
    _reason = "CUDA headers not found (nvcc's toolkit include/)"
pytestmark = pytest.mark.skipif(_reason is not None, reason=str(_reason))

HEADER_SETS = native_build.tensorrt_header_sets()
ENQUEUE_CASES = [
    ScanCase(2, 13, 16, 130, "fp32"),
    ScanCase(1, 20, 16, 257, "fp16", reverse=True),
    ScanCase(2, 9, 5, 65, "bf16", "bf16"),
    ScanCase(1, 24, 16, 64, "fp16", "fp16", softplus=False, has_D=False, has_z=False, has_bias=False),
    ScanCase(3, 8, 1, 1, "fp32", reverse=True, has_z=False),
]


@pytest.fixture(scope="module", params=HEADER_SETS, ids=lambda h: f"trt{h.version}")
def driver(request, tmp_path_factory):
    shared = tmp_path_factory.getbasetemp().parent / "cvgl-native-cache"
    kernel = native_build.cached_cpu_kernel(shared)
    return native_build.build_plugin_driver(tmp_path_factory.mktemp("driver"), request.param, kernel)


def test_the_plugin_passes_every_interface_check(driver):
    run = subprocess.run([str(driver), "checks"], capture_output=True, text=True, timeout=120)
    failures = [line for line in run.stdout.splitlines() if line.startswith("FAIL")]
    assert run.returncode == 0 and not failures, "\n".join(failures) or run.stderr
    passed = [line for line in run.stdout.splitlines() if line.startswith("PASS")]
    assert len(passed) >= 40, run.stdout  # every check ran, none was skipped silently


def test_a_refused_shape_is_printed_to_stderr_when_tensorrt_gave_no_logger(driver):
    run = subprocess.run([str(driver), "stderr-log"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, "configurePlugin accepted A of the wrong N"
    assert "[cvgl] ERROR: cvgl SelectiveScan: A must be (Dc, N)" in run.stderr


def _write_case(case: ScanCase, folder) -> dict:
    """case.txt and one .bin per input, as the driver reads them; unused inputs as (1,) fp32 placeholders."""
    tensors = make_inputs(case, seed=11)
    used = {"D": case.has_D, "z": case.has_z, "delta_bias": case.has_bias}
    for name, view in tensors.views.items():
        if name == "out":
            continue
        data = view if used.get(name, True) else np.zeros(1, np.float32)
        np.ascontiguousarray(data).tofile(folder / f"{name}.bin")
    flags = (int(case.reverse), int(case.softplus), int(case.has_D), int(case.has_z), int(case.has_bias))
    (folder / "case.txt").write_text(" ".join(map(str, (case.dtype, case.param_dtype, case.batch, case.dim,
                                                         case.dstate, case.seqlen, *flags))) + "\n")
    return tensors


@pytest.mark.parametrize("case", ENQUEUE_CASES, ids=lambda c: c.name)
def test_enqueue_runs_the_kernel_and_matches_the_float64_reference(driver, case, tmp_path):
    tensors = _write_case(case, tmp_path)
    run = subprocess.run([str(driver), "enqueue", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"driver step {run.returncode} failed: {run.stderr}"
    storage = np.float32 if case.dtype == "fp32" else np.float16 if case.dtype == "fp16" else np.uint16
    got = load(np.fromfile(tmp_path / "out.bin", storage).reshape(case.batch, case.dim, case.seqlen), case.dtype)
    ref = reference(case, tensors)
    assert (np.abs(got - ref) <= tolerance(case, ref)).all(), float(np.abs(got - ref).max())
