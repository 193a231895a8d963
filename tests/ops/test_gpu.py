"""GPU scan paths: chunked on CUDA and mamba_ssm's kernel, both against the reference.

Our own CUDA kernel (the ``native`` backend) is checked on a GPU in tests/native/test_gpu.py.

Marked ``gpu``; skipped with a reason on machines without CUDA (or without mamba_ssm
for the mamba tests).
"""

from __future__ import annotations

import pytest
import torch

from cvgl_edge.ops import active_backend, selective_scan, selective_scan_reference, use_backend
from cvgl_edge.ops import cuda_mamba, native_cuda
from cvgl_edge.ops.testing import random_scan_inputs

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
needs_mamba = pytest.mark.skipif(
    cuda_mamba.scan_fn() is None, reason="mamba_ssm is not installed (pip install cvgl-edge[cuda])"
)


def _inputs(dtype=torch.float32, requires_grad=False, **kw):
    return random_scan_inputs(
        2, 64, 257, 16, dtype=dtype, device="cuda", seed=7, requires_grad=requires_grad, **kw
    )


def _reference(inputs, **flags):
    cpu = {k: (None if v is None else v.detach().cpu().float()) for k, v in inputs.items()}
    return selective_scan_reference(**cpu, **flags)


@pytest.mark.parametrize("reverse", [False, True])
def test_chunked_on_cuda_matches_reference(reverse):
    inputs = _inputs(requires_grad=True)
    with use_backend("chunked"):
        out = selective_scan(**inputs, delta_softplus=True, reverse=reverse)
    assert out.is_cuda
    torch.testing.assert_close(out.cpu(), _reference(inputs, delta_softplus=True, reverse=reverse),
                               rtol=1e-4, atol=1e-4)
    out.sum().backward()
    assert all(torch.isfinite(v.grad).all() for v in inputs.values() if v is not None)


def test_default_cuda_backend():
    """mamba_ssm's kernel first, then ours (export/csrc, built with nvcc), then chunked."""
    if cuda_mamba.scan_fn() is not None:
        expected = "cuda"
    else:
        expected = "native" if native_cuda.is_available() else "chunked"
    assert active_backend("cuda") == expected


@needs_mamba
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_mamba_backend_matches_reference(reverse, dtype):
    inputs = _inputs(dtype=dtype)
    with use_backend("cuda"):
        out = selective_scan(**inputs, delta_softplus=True, reverse=reverse)
    assert out.dtype == dtype
    tol = 1e-3 if dtype == torch.float32 else 3e-2
    torch.testing.assert_close(out.float().cpu(), _reference(inputs, delta_softplus=True, reverse=reverse),
                               rtol=tol, atol=tol)


@needs_mamba
def test_mamba_backend_gradients_match_chunked():
    inputs = _inputs(requires_grad=True)
    grads = {}
    for backend in ("cuda", "chunked"):
        for v in inputs.values():
            if v is not None:
                v.grad = None
        with use_backend(backend):
            selective_scan(**inputs, delta_softplus=True).sum().backward()
        grads[backend] = {k: v.grad.clone() for k, v in inputs.items() if v is not None}
    for name, g in grads["cuda"].items():
        torch.testing.assert_close(g, grads["chunked"][name], rtol=1e-3, atol=1e-3, msg=name)
