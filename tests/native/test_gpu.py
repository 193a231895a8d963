"""GPU parity of the native kernel (export/csrc) against selective_scan_reference.

Marked ``gpu``; skipped without CUDA or nvcc. Builds the kernel for the current GPU with the
``native`` backend's binding (cvgl_edge.ops.native_cuda, ctypes over the C ABI) once per module,
and checks that the automatic choice on CUDA without mamba_ssm is that kernel.
"""

from __future__ import annotations

import pytest
import torch

from cvgl_edge.native_tools import find_nvcc
from cvgl_edge.ops import active_backend, selective_scan, selective_scan_reference, use_backend
from cvgl_edge.ops import cuda_mamba, native_cuda
from cvgl_edge.ops.testing import random_scan_inputs

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
    pytest.mark.skipif(find_nvcc() is None, reason="needs nvcc to build the kernel"),
]


@pytest.fixture(scope="module")
def native(tmp_path_factory):
    return native_cuda.NativeScan(native_cuda.build_library(tmp_path_factory.mktemp("cvgl_scan")))


TOL = {torch.float32: (2e-4, 2e-4), torch.float16: (1e-2, 1e-2), torch.bfloat16: (5e-2, 5e-2)}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("flags", [(True, True, True, True), (False, False, False, False), (True, False, True, False)])
@pytest.mark.parametrize("shape", [(2, 64, 257, 16), (3, 13, 1, 16), (1, 20, 130, 8)])
def test_native_matches_reference(native, dtype, reverse, flags, shape):
    with_D, with_z, with_bias, softplus = flags
    batch, channels, length, nstate = shape
    kw = random_scan_inputs(batch, channels, length, nstate, with_D=with_D, with_z=with_z,
                            with_bias=with_bias, dtype=dtype, device="cuda", seed=3)
    if not softplus:  # keep delta positive without softplus, as a real model would
        kw["delta"] = kw["delta"].float().abs().mul(0.3).to(dtype)
    got = native(**kw, delta_softplus=softplus, reverse=reverse)
    torch.cuda.synchronize()
    ref = selective_scan_reference(**{k: (v.float() if v is not None else None) for k, v in kw.items()},
                                   delta_softplus=softplus, reverse=reverse)
    rtol, atol = TOL[dtype]
    torch.testing.assert_close(got.float(), ref, rtol=rtol, atol=atol * max(1.0, ref.abs().max().item()))


def test_native_vim_small_shape_runs(native):
    kw = random_scan_inputs(1, 768, 257, 16, dtype=torch.float16, device="cuda", seed=1)
    out = native(**kw, delta_softplus=True)
    torch.cuda.synchronize()
    assert out.shape == kw["u"].shape and torch.isfinite(out).all()


def test_the_native_backend_builds_and_is_chosen_without_mamba_ssm():
    assert native_cuda.is_available(), native_cuda.failure_reason()
    expected = "cuda" if cuda_mamba.scan_fn() is not None else "native"
    assert active_backend("cuda") == expected


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_selective_scan_on_the_native_backend_matches_reference_and_trains(dtype):
    kw = random_scan_inputs(2, 40, 130, 16, dtype=dtype, device="cuda", seed=4, requires_grad=True)
    with use_backend("native"):
        out = selective_scan(**kw, delta_softplus=True, reverse=True)
    ref = selective_scan_reference(**{k: v.detach().float() for k, v in kw.items()}, delta_softplus=True,
                                   reverse=True)
    rtol, atol = TOL[dtype]
    torch.testing.assert_close(out.float(), ref, rtol=rtol, atol=atol * max(1.0, ref.abs().max().item()))
    out.float().sum().backward()  # the gradient comes from chunked
    assert all(torch.isfinite(v.grad).all() for v in kw.values() if v is not None)
