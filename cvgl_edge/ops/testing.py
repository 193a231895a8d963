"""Random, Mamba-like selective-scan inputs for tests and benchmarks.

One generator shared by tests/ops/test_*.py and benchmarks/scan_cpu.py, so parity
tests and timings use inputs in the same range as a real Vim layer: A = -(1..N) per
channel (the Mamba init), step sizes around softplus(-1) ~ 0.3, unit-variance u, B, C.
"""

from __future__ import annotations

import torch


def random_scan_inputs(
    batch: int,
    channels: int,
    length: int,
    nstate: int = 16,
    *,
    with_D: bool = True,
    with_z: bool = True,
    with_bias: bool = True,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    seed: int = 0,
    requires_grad: bool = False,
) -> dict[str, torch.Tensor | None]:
    """Keyword arguments (u, delta, A, B, C, D, z, delta_bias) for selective_scan.

    A, D and delta_bias are fp32 unless dtype is fp64 (Mamba keeps them fp32 under
    mixed precision); the others are in ``dtype``.
    """
    gen = torch.Generator().manual_seed(seed)
    param_dtype = torch.float64 if dtype == torch.float64 else torch.float32

    def randn(*shape: int, scale: float = 1.0, shift: float = 0.0, dt=dtype) -> torch.Tensor:
        t = torch.randn(*shape, generator=gen, dtype=torch.float64) * scale + shift
        return t.to(dtype=dt, device=device)

    ramp = torch.arange(1, nstate + 1, dtype=torch.float64).expand(channels, nstate)
    A = (-ramp * (1 + 0.1 * torch.rand(channels, nstate, generator=gen, dtype=torch.float64)))
    inputs: dict[str, torch.Tensor | None] = {
        "u": randn(batch, channels, length),
        "delta": randn(batch, channels, length, scale=0.5, shift=-1.0),
        "A": A.to(dtype=param_dtype, device=device),
        "B": randn(batch, nstate, length),
        "C": randn(batch, nstate, length),
        "D": randn(channels, dt=param_dtype) if with_D else None,
        "z": randn(batch, channels, length) if with_z else None,
        "delta_bias": randn(channels, scale=0.3, dt=param_dtype) if with_bias else None,
    }
    if requires_grad:
        for t in inputs.values():
            if t is not None:
                t.requires_grad_(True)
    return inputs
