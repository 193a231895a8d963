"""GPU parity of the native kernel (export/csrc) against selective_scan_reference.

Marked ``gpu``; skipped without CUDA or nvcc. Builds the kernel for the current GPU through
export/torch_binding/scan_ctypes.py (ctypes over the C ABI) once per session.
"""

from __future__ import annotations

import sys

import pytest
import torch

from cvgl_edge.ops import selective_scan_reference
from cvgl_edge.ops.testing import random_scan_inputs
from tests.support.paths import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "export" / "torch_binding"))
import scan_ctypes  # noqa: E402

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
    pytest.mark.skipif(scan_ctypes.find_nvcc() is None, reason="needs nvcc to build the kernel"),
]


@pytest.fixture(scope="module")
def native(tmp_path_factory):
    return scan_ctypes.NativeScan(scan_ctypes.build_library(tmp_path_factory.mktemp("cvgl_scan")))


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
