"""Bidirectional Mamba mixer ("bimamba v2") of Vision Mamba.

One input projection feeds two selective-scan branches: a forward one (causal conv,
scan left to right) and a backward one with its own parameters (anti-causal conv, scan
right to left via ``reverse=True``). Their gated outputs are averaged and projected back.
Parameter names and shapes follow the official Vim checkpoints so ImageNet weights load
without renaming.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cvgl_edge import ops


def depthwise_conv1d(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, reverse: bool = False
) -> torch.Tensor:
    """Depthwise 1-D conv that sees only the past (or, with ``reverse``, only the future).

    x: (B, C, L); weight: (C, 1, K). The reverse form equals flip -> causal conv -> flip,
    done without flipping the activations: pad on the right and flip the (tiny) kernel.
    """
    k = weight.shape[-1]
    if reverse:
        return F.conv1d(F.pad(x, (0, k - 1)), weight.flip(-1), bias, groups=x.shape[1])
    return F.conv1d(F.pad(x, (k - 1, 0)), weight, bias, groups=x.shape[1])


#: how the backward branch's dt_proj bias starts: "zero" as the official Vim code leaves it
#: (its _init_weights zeroes every Linear bias but the forward dt_proj's), or "dt-range"
#: like the forward one (cvgl-edge before 0.2; kept for reproducing older runs)
BACKWARD_DT_BIAS = ("zero", "dt-range")


def inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    """x such that softplus(x) = y (y > 0), used to initialise the dt bias."""
    return y + torch.log(-torch.expm1(-y))


class BiMambaMixer(nn.Module):
    """Vim's bidirectional mixer: (B, L, D) -> (B, L, D)."""

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | None = None,
        n_layers: int = 1,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        dt_floor: float = 1e-4,
        backward_dt_bias: str = "zero",
    ) -> None:
        super().__init__()
        if backward_dt_bias not in BACKWARD_DT_BIAS:
            raise ValueError(f"backward_dt_bias must be one of {BACKWARD_DT_BIAS}, got {backward_dt_bias!r}")
        self.backward_dt_bias = backward_dt_bias
        self.d_model = d_model
        self.d_state = d_state
        self.d_inner = expand * d_model
        self.dt_rank = dt_rank if dt_rank is not None else math.ceil(d_model / 16)
        di, r, n = self.d_inner, self.dt_rank, d_state

        self.in_proj = nn.Linear(d_model, 2 * di, bias=False)
        # forward-direction parameters
        self.conv1d = nn.Conv1d(di, di, d_conv, groups=di, bias=True)
        self.x_proj = nn.Linear(di, r + 2 * n, bias=False)
        self.dt_proj = nn.Linear(r, di, bias=True)
        self.A_log = nn.Parameter(torch.empty(di, n))
        self.D = nn.Parameter(torch.empty(di))
        # backward-direction parameters (same shapes, independent values)
        self.conv1d_b = nn.Conv1d(di, di, d_conv, groups=di, bias=True)
        self.x_proj_b = nn.Linear(di, r + 2 * n, bias=False)
        self.dt_proj_b = nn.Linear(r, di, bias=True)
        self.A_b_log = nn.Parameter(torch.empty(di, n))
        self.D_b = nn.Parameter(torch.empty(di))

        self.out_proj = nn.Linear(di, d_model, bias=False)
        self.reset_ssm_parameters(n_layers, dt_min, dt_max, dt_floor)

    @torch.no_grad()
    def reset_ssm_parameters(
        self, n_layers: int, dt_min: float = 1e-3, dt_max: float = 1e-1, dt_floor: float = 1e-4
    ) -> None:
        """The official Vim initialisation (``mamba_simple.Mamba`` then ``models_mamba._init_weights``).

        Both branches: A_log = log(1..N) (S4D-real), D = 1, dt_proj.weight ~ U(+-dt_rank^-0.5) (the
        backward one gets nn.Linear's default, the same distribution). The forward dt_proj.bias is
        softplus^-1 of dt ~ log-uniform [dt_min, dt_max]: Mamba marks it no-reinit. The backward
        dt_proj_b.bias is not marked, so Vim's _init_weights zeroes it (softplus(0) = 0.693 for
        every channel); ``backward_dt_bias="dt-range"`` initialises it like the forward one instead.
        out_proj: kaiming-uniform(a=sqrt 5) / sqrt(depth). Convs and x_proj keep PyTorch's defaults,
        as in Vim. Why it matters: a model trained from scratch starts from these values."""
        di, n = self.d_inner, self.d_state
        a_log = torch.log(torch.arange(1, n + 1, dtype=torch.float32)).repeat(di, 1)
        dt_std = self.dt_rank**-0.5
        for a_param, d_param, dt_proj in (
            (self.A_log, self.D, self.dt_proj),
            (self.A_b_log, self.D_b, self.dt_proj_b),
        ):
            a_param.copy_(a_log)
            d_param.fill_(1.0)
            nn.init.uniform_(dt_proj.weight, -dt_std, dt_std)
            dt = torch.exp(
                torch.rand(di) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
            ).clamp(min=dt_floor)
            dt_proj.bias.copy_(inverse_softplus(dt))
        if self.backward_dt_bias == "zero":
            nn.init.zeros_(self.dt_proj_b.bias)
        # out_proj: default kaiming-uniform init, shrunk by 1/sqrt(depth)
        nn.init.kaiming_uniform_(self.out_proj.weight, a=math.sqrt(5))
        self.out_proj.weight.div_(math.sqrt(n_layers))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        xz = self.in_proj(h).transpose(1, 2)  # (B, 2*Di, L)
        x, z = xz.chunk(2, dim=1)
        y_f = self._branch(x, z, reverse=False)
        y_b = self._branch(x, z, reverse=True)
        return self.out_proj(((y_f + y_b) / 2).transpose(1, 2))

    def _branch(self, x: torch.Tensor, z: torch.Tensor, reverse: bool) -> torch.Tensor:
        """One scan direction: conv -> SiLU -> input-dependent (dt, B, C) -> gated scan."""
        if reverse:
            conv, x_proj, dt_proj = self.conv1d_b, self.x_proj_b, self.dt_proj_b
            a_log, d_skip = self.A_b_log, self.D_b
        else:
            conv, x_proj, dt_proj = self.conv1d, self.x_proj, self.dt_proj
            a_log, d_skip = self.A_log, self.D
        u = F.silu(depthwise_conv1d(x, conv.weight, conv.bias, reverse=reverse))
        x_dbl = x_proj(u.transpose(1, 2))  # (B, L, R + 2N)
        dt, b_ssm, c_ssm = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.linear(dt, dt_proj.weight).transpose(1, 2)  # (B, Di, L); bias goes to the scan
        return ops.selective_scan(
            u,
            delta,
            -torch.exp(a_log.float()),
            b_ssm.transpose(1, 2).contiguous(),
            c_ssm.transpose(1, 2).contiguous(),
            D=d_skip.float(),
            z=z,
            delta_bias=dt_proj.bias.float(),
            delta_softplus=True,
            reverse=reverse,
        )
