"""The CUDA selective-scan kernel, executed on the CPU under HIP-CPU, against a float64 reference.

The very export/csrc/selective_scan_kernel.cu is translated and built at test time
(tests/support/native_build.py), so no hand-kept copy can drift. What this proves: indexing, strides,
data flow between shared memory, shuffles and registers, ``__syncthreads`` placement, both
directions, every flag and dtype, the tail of L and of the channel blocks, and the error codes.
What it cannot prove: warp-level timing races, CUDA's fast-math intrinsics, speed (HIP-CPU
runs blocks as fibers and shuffles through barriers). Skipped without HIP-CPU (a user's clone).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.support import native_build
from tests.support.scan_float64 import (
    CpuKernel, ScanCase, make_inputs, params_for, reference, scaled_error, tolerance, with_flags,
)

pytestmark = pytest.mark.skipif(native_build.hip_cpu_missing_reason() is not None,
                                reason=str(native_build.hip_cpu_missing_reason()))

#: Shapes with L not a multiple of the 64-step chunk, Dc not a multiple of the 8 channels
#: per block, N below 16, batch > 1; each appears with several dtypes below.
SHAPES = [(2, 13, 16, 257), (1, 8, 16, 64), (3, 20, 5, 130), (2, 17, 16, 65), (1, 9, 8, 1), (2, 24, 15, 63)]
DTYPES = [("fp32", "fp32"), ("fp16", "fp32"), ("fp16", "fp16"), ("bf16", "fp32"), ("bf16", "bf16")]
FLAGS = ["sDzb", "", "sDb", "zD"]


def _matrix() -> list[ScanCase]:
    cases, i = [], 0
    for dtype, param in DTYPES:
        for reverse in (False, True):
            for flags in FLAGS:
                b, c, n, length = SHAPES[i % len(SHAPES)]
                i += 1
                cases.append(with_flags(ScanCase(b, c, n, length, dtype, param, reverse), flags))
    return cases


MATRIX = _matrix()


@pytest.fixture(scope="session")
def kernel(tmp_path_factory) -> CpuKernel:
    shared = tmp_path_factory.getbasetemp().parent  # one folder for every xdist worker
    return CpuKernel(native_build.cached_cpu_kernel(shared / "cvgl-native-cache"))


def _check(kernel: CpuKernel, case: ScanCase, seed: int = 0) -> float:
    tensors = make_inputs(case, seed)
    got = kernel.run(case, tensors)
    ref = reference(case, tensors)
    bad = np.abs(got - ref) > tolerance(case, ref)
    assert not bad.any(), (f"{case.name}: {int(bad.sum())} of {bad.size} elements off, first at "
                           f"{np.argwhere(bad)[0].tolist()}; scaled error {scaled_error(case, got, ref):.2e}")
    return scaled_error(case, got, ref)


@pytest.mark.parametrize("case", MATRIX, ids=lambda c: c.name)
def test_kernel_matches_float64_reference(kernel, case):
    _check(kernel, case)


@pytest.mark.parametrize("dstate", range(1, 17))
def test_every_state_size_from_1_to_16(kernel, dstate):
    _check(kernel, ScanCase(2, 11, dstate, 70, reverse=dstate % 2 == 0))


@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16"])
@pytest.mark.parametrize("reverse", [False, True])
def test_strided_views_are_scanned_and_nothing_outside_is_written(kernel, dtype, reverse):
    case = ScanCase(2, 10, 7, 75, dtype, reverse=reverse, pad=3)
    tensors = make_inputs(case, seed=5)
    before = tensors.buffers["out"].copy()
    got = kernel.run(case, tensors)
    ref = reference(case, tensors)
    assert (np.abs(got - ref) <= tolerance(case, ref)).all()
    outside = np.ones(before.shape, bool)
    outside[:, case.pad:case.pad + case.dim] = False
    assert np.array_equal(tensors.buffers["out"][outside].view(np.uint8), before[outside].view(np.uint8))
    for name in ("u", "delta", "z", "B", "C"):  # inputs are read only
        assert np.isfinite(tensors.buffers[name].astype(np.float32)).all()


def test_vim_small_scan_shape(kernel):
    """Dc 768, L 257, N 16: the Vim-S scan the plugin serves 48 times per image."""
    _check(kernel, ScanCase(1, 768, 16, 257, "fp16", softplus=True))


def test_inputs_are_not_modified(kernel):
    case = ScanCase(2, 9, 16, 100)
    tensors = make_inputs(case, seed=2)
    copies = {k: v.copy() for k, v in tensors.buffers.items() if k != "out"}
    kernel.run(case, tensors)
    assert all(np.array_equal(copies[k], tensors.buffers[k]) for k in copies)


# ----------------------------------------------------------------------------- the C ABI's error codes
def _params(case: ScanCase = ScanCase(1, 8, 16, 4)):
    tensors = make_inputs(case)
    return tensors, params_for(case, tensors)


def test_null_params_is_refused(kernel):
    assert kernel.forward(None) == -1


@pytest.mark.parametrize("field", ["u", "delta", "B", "C", "out", "A", "D", "z", "delta_bias"])
def test_a_missing_required_pointer_is_refused(kernel, field):
    tensors, p = _params()
    setattr(p, field, None)
    assert kernel.forward(p) == -1
    assert np.all(tensors.views["out"].astype(np.float64) == np.float32(7777.0))  # nothing ran


@pytest.mark.parametrize("flag,field", [("has_D", "D"), ("has_z", "z"), ("has_delta_bias", "delta_bias")])
def test_an_unused_input_may_be_null(kernel, flag, field):
    case = ScanCase(1, 8, 16, 4, has_D=flag != "has_D", has_z=flag != "has_z", has_bias=flag != "has_delta_bias")
    tensors = make_inputs(case)
    p = params_for(case, tensors)
    assert getattr(p, field) is None and getattr(p, flag) == 0
    assert kernel.forward(p) == 0


@pytest.mark.parametrize("field,value", [("abi_version", 2), ("dstate", 0), ("dstate", 17), ("batch", -1),
                                         ("dim", -1), ("seqlen", -1)])
def test_bad_shapes_and_abi_version_are_refused(kernel, field, value):
    _, p = _params()
    setattr(p, field, value)
    assert kernel.forward(p) == -2


def test_a_grid_too_large_for_cuda_is_refused_before_launch(kernel):
    _, p = _params()
    p.dim, p.batch = 2**31 - 1, 16  # 2^28 channel blocks x 16 > 2^31 - 1 blocks
    assert kernel.forward(p) == -2


@pytest.mark.parametrize("field", ["dtype", "param_dtype"])
def test_unknown_dtypes_are_refused(kernel, field):
    _, p = _params()
    setattr(p, field, 3)
    assert kernel.forward(p) == -3


@pytest.mark.parametrize("field", ["batch", "dim", "seqlen"])
def test_an_empty_scan_launches_nothing(kernel, field):
    tensors, p = _params()
    setattr(p, field, 0)
    assert kernel.forward(p) == 0
    assert np.all(tensors.views["out"].astype(np.float64) == np.float32(7777.0))


def test_every_error_code_has_its_text(kernel):
    assert kernel.error_string(0) == "success"
    assert "NULL" in kernel.error_string(-1)
    assert "dstate" in kernel.error_string(-2)
    assert "dtype" in kernel.error_string(-3)
    assert kernel.error_string(1000 + 1) not in ("", "unknown error")  # CUDA_BASE + a runtime error
    assert kernel.error_string(-99) == "unknown error"
