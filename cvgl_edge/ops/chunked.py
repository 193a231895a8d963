"""Vectorised pure-PyTorch scan: runs on any device, no compiler needed.

Why chunked: the recurrence h_t = a_t * h_{t-1} + b_t is sequential in t, and a
Python loop over all L steps costs ~L kernel launches. Here the L axis is cut into
chunks of T steps. One loop of T steps runs inside every chunk at once (each chunk
starting from 0), one loop of L/T steps carries the state across chunk boundaries,
and one vectorised correction adds each chunk's incoming state times the running
product of decays. About 2*sqrt(L) Python steps instead of L.

Numerically stable for any delta*A: only products of decays exp(delta*A) in [0, 1]
(for A < 0) appear, never exp(-cumsum(delta*A)), which overflows for long or
strongly decaying sequences.

Work tensors are laid out (L, batch, channels, N) so every step touches one
contiguous slab.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from cvgl_edge.ops.common import (
    ScanGrads,
    compute_dtype,
    flip_time,
    softplus_grad,
    step_sizes,
)


def chunk_length(length: int) -> int:
    """Chunk size T ~ sqrt(L): balances the in-chunk and the carry loops."""
    return max(1, math.isqrt(max(length, 1)))


def linear_recurrence(
    a: torch.Tensor, b: torch.Tensor, *, overwrite_a: bool = False
) -> torch.Tensor:
    """Solve h_t = a_t * h_{t-1} + b_t (h_{-1} = 0) along dim 0 of contiguous tensors.

    b is overwritten with h and returned; a is overwritten too (with running products)
    when overwrite_a, which saves a copy when the caller no longer needs it. a[0] only
    multiplies the zero initial state but must still be finite (0 * inf is NaN).
    """
    length = a.shape[0]
    T = chunk_length(length)
    n_chunks = length // T
    if n_chunks <= 1 or T == 1:
        for t in range(1, length):
            b[t].addcmul_(a[t], b[t - 1])
        return b
    body = n_chunks * T  # whole chunks; the ragged tail (< T steps) runs sequentially
    inner = a.shape[1:]
    h = b[:body].view(n_chunks, T, *inner)
    decay = (a[:body] if overwrite_a else a[:body].clone()).view(n_chunks, T, *inner)
    for t in range(1, T):  # local scan inside every chunk at once, from state 0
        h[:, t].addcmul_(decay[:, t], h[:, t - 1])
        decay[:, t].mul_(decay[:, t - 1])  # product of decays since the chunk's start
    carry = h.new_zeros((n_chunks, *inner))  # true state entering each chunk
    for c in range(1, n_chunks):
        torch.addcmul(h[c - 1, -1], decay[c - 1, -1], carry[c - 1], out=carry[c])
    h.addcmul_(decay, carry.unsqueeze(1))
    for t in range(body, length):
        b[t].addcmul_(a[t], b[t - 1])
    return b


def _lbdn(a: torch.Tensor, b: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """a * b broadcast into a new contiguous (L, batch, channels, N) tensor.

    Spelled with out= because a plain product of permuted views inherits their
    permuted memory order, which makes every later per-step slice strided.
    """
    return torch.mul(a, b, out=torch.empty(shape, dtype=a.dtype, device=a.device))


def _time_major(t: torch.Tensor) -> torch.Tensor:
    """(batch, X, L) -> contiguous (L, batch, X)."""
    return t.permute(2, 0, 1).contiguous()


def _states(
    u: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, keep_decay: bool
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Decays exp(dt*A) (None unless keep_decay) and states h, both (L, batch, channels, N)."""
    batch, channels, length = u.shape
    shape = torch.Size((length, batch, channels, A.shape[1]))
    decay = _lbdn(_time_major(dt).unsqueeze(-1), A, shape).exp_()
    drive = _lbdn(_time_major(dt * u).unsqueeze(-1), _time_major(B).unsqueeze(2), shape)
    h = linear_recurrence(decay, drive, overwrite_a=not keep_decay)
    return (decay if keep_decay else None), h


def _contract_n(big: torch.Tensor, vec_lbn: torch.Tensor) -> torch.Tensor:
    """sum_n big[l, b, d, n] * vec[l, b, n] -> (batch, channels, L), as one batched GEMM."""
    length, batch, channels, nstate = big.shape
    rows = vec_lbn.reshape(length * batch, 1, nstate)
    out = torch.bmm(rows, big.view(length * batch, channels, nstate).transpose(1, 2))
    return out.view(length, batch, channels).permute(1, 2, 0)


def _contract_d(big: torch.Tensor, vec_bdl: torch.Tensor) -> torch.Tensor:
    """sum_d big[l, b, d, n] * vec[b, d, l] -> (batch, N, L), as one batched GEMM."""
    length, batch, channels, nstate = big.shape
    rows = _time_major(vec_bdl).view(length * batch, 1, channels)
    out = torch.bmm(rows, big.view(length * batch, channels, nstate))
    return out.view(length, batch, nstate).permute(1, 2, 0)


def _readout(h: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """y[b, d, t] = sum_n C[b, n, t] * h[t, b, d, n]."""
    return _contract_n(h, _time_major(C))


def _to(dtype: torch.dtype, *tensors: torch.Tensor | None) -> list[torch.Tensor | None]:
    return [None if t is None else t.to(dtype) for t in tensors]


def forward(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    reverse: bool = False,
) -> torch.Tensor:
    """Scan; returns (B, Dc, L) in the compute dtype (fp32, or fp64 for fp64 inputs)."""
    dtype = compute_dtype(u, delta, A, B, C, D, z, delta_bias)
    u, delta, A, B, C, D, z, delta_bias = _to(dtype, u, delta, A, B, C, D, z, delta_bias)
    if reverse:
        u, delta, B, C, z = map(flip_time, (u, delta, B, C, z))
    _, dt = step_sizes(delta, delta_bias, delta_softplus)
    _, h = _states(u, dt, A, B, keep_decay=False)
    y = _readout(h, C)
    if D is not None:
        y = y + D[None, :, None] * u
    if z is not None:
        y = y * F.silu(z)
    return flip_time(y) if reverse else y


def backward(
    grad: torch.Tensor,
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    reverse: bool = False,
) -> ScanGrads:
    """Explicit gradients for every tensor input (compute dtype), by the adjoint recursion.

    lam_t = exp(dt_{t+1} A) * lam_{t+1} + dy_t * C_t is the same kind of linear
    recurrence as the forward, run backwards in time, so it reuses linear_recurrence.
    """
    dtype = compute_dtype(u, delta, A, B, C, D, z, delta_bias)
    grad, u, delta, A, B, C, D, z, delta_bias = _to(
        dtype, grad, u, delta, A, B, C, D, z, delta_bias
    )
    if reverse:
        grad, u, delta, B, C, z = map(flip_time, (grad, u, delta, B, C, z))
    raw, dt = step_sizes(delta, delta_bias, delta_softplus)
    decay, h = _states(u, dt, A, B, keep_decay=True)
    assert decay is not None
    length = u.shape[-1]

    dz = None
    dy = grad
    if z is not None:
        y = _readout(h, C)
        if D is not None:
            y = y + D[None, :, None] * u
        sz = torch.sigmoid(z)
        dz = grad * y * sz * (1 + z * (1 - sz))
        dy = grad * z * sz
    dD = None if D is None else (dy * u).sum(dim=(0, 2))
    du = dy * D[None, :, None] if D is not None else torch.zeros_like(u)

    # Adjoint lam_t = decay_{t+1} * lam_{t+1} + dy_t * C_t, solved in reversed time
    # s = L-1-t, where it reads lam_s = decay'_s * lam_{s-1} + input'_s with
    # decay'_s = flip(decay)[s-1]: build flip(decay) one row down so a view lines it up.
    shifted = torch.empty((length + 1, *decay.shape[1:]), dtype=decay.dtype, device=decay.device)
    shifted[1:] = torch.flip(decay, dims=(0,))
    shifted[0].zero_()  # multiplies the zero initial state; must not be garbage (0*NaN)
    dy_rev = _time_major(dy.flip(-1)).unsqueeze(-1)  # (L, b, d, 1), small flips only
    C_rev = _time_major(C.flip(-1)).unsqueeze(2)  # (L, b, 1, N)
    lam = linear_recurrence(shifted[:length], _lbdn(dy_rev, C_rev, decay.shape), overwrite_a=True)
    lam = torch.flip(lam, dims=(0,))

    dC = _contract_d(h, dy)
    # g1 = lam_t * h_{t-1} * decay_t: gradient through the decay; zero at t = 0.
    g1 = torch.mul(lam, decay, out=decay)  # decay is not needed any more
    g1[1:].mul_(h[:-1])
    g1[0].zero_()
    dt_l = _time_major(dt)
    dA = torch.einsum("lbdn,lbd->dn", g1, dt_l)
    lam_B = _contract_n(lam, _time_major(B))  # (b, d, L)
    ddt = g1.mul_(A).sum(-1).permute(1, 2, 0) + u * lam_B
    du = du + dt * lam_B
    dB = _contract_d(lam, dt * u)
    ddelta = ddt * softplus_grad(raw) if delta_softplus else ddt
    dbias = None if delta_bias is None else ddelta.sum(dim=(0, 2))

    if reverse:
        du, ddelta, dB, dC, dz = map(flip_time, (du, ddelta, dB, dC, dz))
    return ScanGrads(du, ddelta, dA, dB, dC, dD, dz, dbias)
