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
    CpuKernel, ScanCase, load, make_inputs, params_for, reference, scaled_error, tolerance, with_flags,
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
    p.dim, p.batch = 2**31 - 1, 1024  # >= 2^24 channel blocks (128 channels each) x 1024 > 2^31 - 1 blocks
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


# ----------------------------------------------------------------------------- the time split
# The kernel splits time over `split` lanes per channel (phase 1: each run from h = 0; phase 2: a
# shuffle scan over the runs; phase 3: each run again from its true start). Every split and run
# length must give the same scan; cvgl_selective_scan_forward_split forces them.
def _run_split(kernel: CpuKernel, case: ScanCase, split: int, steps: int, seed: int = 0) -> None:
    tensors = make_inputs(case, seed)
    rc = kernel.native.forward_split_raw(params_for(case, tensors), 0, split, steps)
    assert rc == 0, f"split {split} steps {steps}: {kernel.error_string(rc)}"
    assert kernel.native.lib.cvgl_emulation_synchronize() == 0
    got, ref = load(tensors.views["out"], case.dtype), reference(case, tensors)
    bad = np.abs(got - ref) > tolerance(case, ref)
    assert not bad.any(), (f"{case.name} split {split} steps {steps}: {int(bad.sum())} of {bad.size} off, "
                           f"first at {np.argwhere(bad)[0].tolist()}; scaled error {scaled_error(case, got, ref):.2e}")


@pytest.mark.parametrize("split", [1, 2, 4, 8, 16, 32])
@pytest.mark.parametrize("reverse", [False, True])
def test_every_split_gives_the_same_scan(kernel, split, reverse):
    # 131 steps: several tiles at every split (runs of at most 9..33 steps), the last one partial
    _run_split(kernel, ScanCase(2, 37, 16, 131, "fp16", reverse=reverse), split, 0)


@pytest.mark.parametrize("split,steps", [(1, 1), (1, 2), (2, 7), (4, 16), (8, 3), (16, 1), (32, 9), (32, 2)])
def test_any_run_length_gives_the_same_scan(kernel, split, steps):
    # even run lengths too (bank conflicts, not errors), runs of one step, a tile longer than L
    _run_split(kernel, ScanCase(1, 21, 13, 97, "bf16", "fp32", reverse=steps % 2 == 0), split, steps, seed=4)


@pytest.mark.parametrize("split,steps", [(3, 0), (64, 0), (-1, 0), (0, 5), (1, -1), (32, 10), (1, 34)])
def test_a_split_or_run_length_out_of_range_is_refused(kernel, split, steps):
    tensors, p = _params()
    assert kernel.native.forward_split_raw(p, 0, split, steps) == -2
    assert np.all(tensors.views["out"].astype(np.float64) == np.float32(7777.0))  # nothing ran


@pytest.mark.parametrize("batch,dim,seqlen,sms,split", [
    (64, 768, 257, 132, 1),   # 49152 channels >= 132 SMs x 256 threads: no split, no rescan
    (1, 768, 257, 132, 32),   # batch 1 on an H100: 768 x 32 = 24576 < 33792, capped at 32 lanes
    (1, 768, 257, 16, 8),     # AGX Orin: 768 x 4 = 3072 < 4096 -> 8 (6144)
    (1, 768, 257, 8, 4),      # Orin Nano: 768 x 2 = 1536 < 2048 -> 4 (3072)
    (8, 768, 257, 132, 8),    # 6144 x 4 = 24576 < 33792 -> 8
    (1, 768, 40, 132, 4),     # 40 steps: 4 lanes give runs of 10; 8 lanes would give runs of 5 < 8
    (1, 768, 15, 132, 1),     # 15 steps: no split
])
def test_the_automatic_split_fills_the_gpu_without_short_runs(kernel, batch, dim, seqlen, sms, split):
    assert kernel.native.choose_split(batch, dim, seqlen, sms) == split


def test_z_aligned_differently_from_out_is_read_element_by_element(kernel):
    # 64 fp16 steps: out's rows are 16-byte aligned (vector stores); z one element off is not
    case = ScanCase(2, 9, 16, 64, "fp16")
    tensors = make_inputs(case, seed=6)
    z = tensors.views["z"]
    shifted = np.empty(z.size + 1, z.dtype)[1:].reshape(z.shape)
    shifted[...] = z
    assert shifted.ctypes.data % 16 != tensors.views["out"].ctypes.data % 16
    tensors.views["z"] = shifted
    got, ref = kernel.run(case, tensors), reference(case, tensors)
    assert (np.abs(got - ref) <= tolerance(case, ref)).all()



def test_the_roofline_models_split_rule_is_the_kernels(kernel):
    """bench/scan_roofline.py times the kernel with a Python copy of its launch rule: same answers."""
    from cvgl_edge.bench.scan_roofline import choose_split

    for batch in (1, 2, 7, 64):
        for dim in (1, 96, 768, 1536):
            for seqlen in (1, 15, 16, 40, 257, 1025):
                for sms in (1, 8, 16, 132):
                    assert choose_split(batch, dim, seqlen, sms) == kernel.native.choose_split(batch, dim, seqlen, sms)
