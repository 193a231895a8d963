"""Selective scan: parity between every CPU backend, gradients, dtypes, edge cases.

The oracle is ``selective_scan_reference`` (the step loop) and, for gradients,
autograd through it. Sizes are tiny: the whole file runs in seconds on 2 cores,
plus the one-time C++ build (~2-4 s, cached afterwards).
"""

from __future__ import annotations

import itertools

import pytest
import torch

from cvgl_edge.errors import CvglError
from cvgl_edge.ops import available_backends, selective_scan, selective_scan_reference, use_backend
from cvgl_edge.ops import chunked, cpu_kernel
from cvgl_edge.ops.testing import random_scan_inputs

CPU_BACKENDS = ["reference", "chunked", "cpp"]
NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors gain nothing from threads, and on a shared 2-core box extra
    OpenMP threads can slow these tests by 10x; restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _backend_or_skip(name: str) -> str:
    if name == "cpp" and not cpu_kernel.is_available():
        pytest.skip(f"C++ kernel unavailable: {cpu_kernel.failure_reason()}")
    return name


def _run(backend: str, inputs: dict, **flags) -> torch.Tensor:
    with use_backend(backend):
        return selective_scan(**inputs, **flags)


def _grads(out: torch.Tensor, inputs: dict, grad: torch.Tensor) -> dict:
    present = {k: v for k, v in inputs.items() if v is not None}
    values = torch.autograd.grad(out, list(present.values()), grad)
    return dict(zip(present.keys(), values))


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).abs().max() / (b.double().abs().max() + 1e-12)).item()


# (batch, channels, length, nstate): L=1, L below/at/above chunk multiples, channel
# counts below, at and off a multiple of the C++ kernel's 16 lanes, N=16 and N!=16.
SHAPES = [(1, 4, 1, 16), (2, 3, 7, 4), (2, 20, 33, 16), (1, 32, 16, 16), (3, 17, 40, 8)]


@pytest.mark.parametrize("backend", ["chunked", "cpp"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("reverse", [False, True])
def test_forward_backward_match_reference(backend, shape, reverse):
    _backend_or_skip(backend)
    inputs = random_scan_inputs(*shape, seed=sum(shape), requires_grad=True)
    flags = dict(delta_softplus=True, reverse=reverse)
    expected = selective_scan_reference(**inputs, **flags)
    got = _run(backend, inputs, **flags)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)

    grad = torch.randn_like(expected)
    want = _grads(expected, inputs, grad)
    have = _grads(got, inputs, grad)
    for name in want:
        assert _rel_err(have[name], want[name]) < 1e-4, name


@pytest.mark.parametrize("backend", ["chunked", "cpp"])
@pytest.mark.parametrize("optional", [False, True], ids=["bare", "D-z-bias"])
def test_optional_inputs_and_no_softplus(backend, optional):
    _backend_or_skip(backend)
    inputs = random_scan_inputs(
        2, 5, 12, 16, with_D=optional, with_z=optional, with_bias=optional, seed=3
    )
    inputs["delta"] = inputs["delta"].abs()  # positive steps without softplus
    expected = selective_scan_reference(**inputs)
    torch.testing.assert_close(_run(backend, inputs), expected, rtol=1e-5, atol=1e-5)


def test_all_backends_agree_with_each_other():
    inputs = random_scan_inputs(2, 24, 29, 16, seed=11)
    outs = {b: _run(b, inputs, delta_softplus=True) for b in available_backends() if b in CPU_BACKENDS}
    for a, b in itertools.combinations(outs, 2):
        torch.testing.assert_close(outs[a], outs[b], rtol=1e-5, atol=1e-5, msg=f"{a} vs {b}")


FLAG_COMBOS = list(itertools.product([False, True], [False, True], [False, True]))
GRADCHECK_CASES = [
    *(("chunked", *flags) for flags in FLAG_COMBOS),
    *(("cpp", *flags) for flags in FLAG_COMBOS),
    # reference = forward loop + chunked backward: two cases suffice
    ("reference", False, False, False),
    ("reference", True, True, True),
]


@pytest.mark.parametrize("backend,reverse,softplus,optional", GRADCHECK_CASES)
def test_gradcheck_float64(backend, reverse, softplus, optional):
    _backend_or_skip(backend)
    inputs = random_scan_inputs(
        2, 3, 7, 4, with_D=optional, with_z=optional, with_bias=optional,
        dtype=torch.float64, seed=5, requires_grad=True,
    )
    if not softplus:  # raw steps must be positive, else exp(delta*A) explodes
        inputs["delta"] = (inputs["delta"].detach().abs() + 0.05).requires_grad_()
    names = [k for k, v in inputs.items() if v is not None]

    def fn(*tensors):
        with use_backend(backend):
            return selective_scan(
                **dict(zip(names, tensors)), delta_softplus=softplus, reverse=reverse
            )

    assert torch.autograd.gradcheck(fn, tuple(inputs[k] for k in names))


def test_gradcheck_cpp_state16_float64():
    """The C++ kernel specialises N=16 (state kept in registers): check that path too."""
    _backend_or_skip("cpp")
    inputs = random_scan_inputs(1, 9, 5, 16, dtype=torch.float64, seed=8, requires_grad=True)
    tensors = tuple(inputs[k] for k in NAMES)

    def fn(*ts):
        with use_backend("cpp"):
            return selective_scan(*ts, delta_softplus=True, reverse=True)

    assert torch.autograd.gradcheck(fn, tensors)


def test_cpp_multithreaded_reduction_matches_reference():
    """Several threads split (batch, channel-block) work; dB/dC/dA partials are summed."""
    _backend_or_skip("cpp")
    threads = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        for batch in (1, 2):
            inputs = random_scan_inputs(batch, 40, 21, 16, seed=batch, requires_grad=True)
            expected = selective_scan_reference(**inputs, delta_softplus=True)
            got = _run("cpp", inputs, delta_softplus=True)
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
            grad = torch.randn_like(expected)
            want, have = _grads(expected, inputs, grad), _grads(got, inputs, grad)
            for name in want:
                assert _rel_err(have[name], want[name]) < 1e-4, name
    finally:
        torch.set_num_threads(threads)


def test_reverse_equals_flipped_forward():
    inputs = random_scan_inputs(2, 6, 11, 16, seed=2)
    flip = lambda t: None if t is None else t.flip(-1)  # noqa: E731
    flipped = {k: (flip(v) if k in ("u", "delta", "B", "C", "z") else v) for k, v in inputs.items()}
    for backend in ("chunked", "cpp") if cpu_kernel.is_available() else ("chunked",):
        rev = _run(backend, inputs, delta_softplus=True, reverse=True)
        fwd_of_flipped = _run(backend, flipped, delta_softplus=True)
        torch.testing.assert_close(rev, fwd_of_flipped.flip(-1), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("backend", ["chunked", "cpp"])
def test_half_inputs_computed_in_fp32(backend, dtype):
    _backend_or_skip(backend)
    inputs = random_scan_inputs(2, 8, 13, 16, dtype=dtype, seed=4, requires_grad=True)
    out = _run(backend, inputs, delta_softplus=True)
    assert out.dtype == dtype
    upcast = {k: (None if v is None else v.detach().float()) for k, v in inputs.items()}
    expected = selective_scan_reference(**upcast, delta_softplus=True)
    # The only low-precision step is the final cast: errors are one rounding of the output.
    torch.testing.assert_close(out.float(), expected.to(dtype).float(), rtol=1e-2, atol=1e-2)
    grads = _grads(out, inputs, torch.ones_like(out))
    for name, g in grads.items():
        assert g.dtype == inputs[name].dtype and torch.isfinite(g).all(), name


def test_fp32_outputs_from_fp64_params_not_required():
    """fp32 activations with fp32 A/D/bias stay fp32 end to end."""
    inputs = random_scan_inputs(1, 4, 6, 16, seed=9)
    assert _run("chunked", inputs).dtype == torch.float32


@pytest.mark.parametrize("backend", ["chunked", "cpp"])
def test_large_decay_is_stable(backend):
    """delta*A down to -1e4 and long sequences: no overflow, no NaN (no exp(-cumsum))."""
    _backend_or_skip(backend)
    inputs = random_scan_inputs(1, 4, 300, 16, seed=6)
    inputs["delta"] = inputs["delta"] * 20 + 10  # softplus(delta) up to ~60; A down to -17
    expected = selective_scan_reference(**inputs, delta_softplus=True)
    got = _run(backend, inputs, delta_softplus=True)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_chunked_recurrence_matches_loop_for_ragged_lengths():
    gen = torch.Generator().manual_seed(0)
    for length in (1, 2, 3, 4, 5, 15, 16, 17, 50):
        a = torch.rand(length, 3, 2, generator=gen)
        b = torch.randn(length, 3, 2, generator=gen)
        h, expected = torch.zeros(3, 2), []
        for t in range(length):
            h = a[t] * h + b[t]
            expected.append(h)
        got = chunked.linear_recurrence(a.clone(), b.clone())
        torch.testing.assert_close(got, torch.stack(expected), rtol=1e-6, atol=1e-6)


def test_bad_shapes_raise_cvgl_error():
    inputs = random_scan_inputs(1, 4, 6, 16)
    with pytest.raises(CvglError, match="B must have shape"):
        selective_scan(**{**inputs, "B": inputs["B"][:, :8]})
    with pytest.raises(CvglError, match="A must be"):
        selective_scan(**{**inputs, "A": inputs["A"][:3]})
    with pytest.raises(CvglError, match="u must be"):
        selective_scan(**{**inputs, "u": inputs["u"][0]})
    empty = random_scan_inputs(1, 4, 0, 16)
    with pytest.raises(CvglError, match="empty input"):
        selective_scan(**empty)
