"""The scan is one operator to tracers: torch.export sees one node per scan, and
FlopCounterMode counts it with the Mamba authors' 9*B*L*Dc*N formula."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from cvgl_edge.ops import selective_scan
from cvgl_edge.ops.testing import random_scan_inputs

SCAN_OP = torch.ops.cvgl.selective_scan.default


class BidirectionalScan(torch.nn.Module):
    """Forward and reverse scan, as a Vim bimamba mixer does (two scans per call)."""

    def __init__(self, channels: int, nstate: int) -> None:
        super().__init__()
        self.A_log = torch.nn.Parameter(torch.log(torch.arange(1, nstate + 1.0)).repeat(channels, 1))
        self.D = torch.nn.Parameter(torch.ones(channels))
        self.dt_bias = torch.nn.Parameter(torch.zeros(channels))

    def forward(self, u, delta, B, C, z):
        A = -torch.exp(self.A_log)
        kw = dict(D=self.D, z=z, delta_bias=self.dt_bias, delta_softplus=True)
        y_f = selective_scan(u, delta, A, B, C, **kw)
        y_b = selective_scan(u, delta, A, B, C, **kw, reverse=True)
        return (y_f + y_b) / 2


def _example(batch=1, channels=8, length=10, nstate=16):
    x = random_scan_inputs(batch, channels, length, nstate, seed=1)
    return (x["u"], x["delta"], x["B"], x["C"], x["z"])


def test_export_has_one_node_per_scan():
    module = BidirectionalScan(8, 16)
    args = _example()
    program = torch.export.export(module, args)
    scans = [n for n in program.graph.nodes if n.op == "call_function" and n.target == SCAN_OP]
    assert len(scans) == 2
    reverse_flags = sorted(bool(n.args[9]) for n in scans)
    assert reverse_flags == [False, True]
    torch.testing.assert_close(program.module()(*args), module(*args))


def test_flop_counter_uses_mamba_formula():
    batch, channels, length, nstate = 2, 8, 10, 16
    x = random_scan_inputs(batch, channels, length, nstate)
    with FlopCounterMode(display=False) as counter:
        selective_scan(**x, delta_softplus=True)
    counts = counter.get_flop_counts()["Global"]
    assert counts[torch.ops.cvgl.selective_scan] == 9 * batch * length * channels * nstate


def test_opcheck_forward_and_backward_registrations():
    """torch.library.opcheck: schema, fake impl, autograd registration, AOT tracing."""
    for optional in (True, False):
        x = random_scan_inputs(
            1, 4, 6, 16, with_D=optional, with_z=optional, with_bias=optional, requires_grad=True
        )
        args = (x["u"], x["delta"], x["A"], x["B"], x["C"], x["D"], x["z"], x["delta_bias"], True, True)
        torch.library.opcheck(SCAN_OP, args)
        detached = tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args)
        grad = torch.randn(1, 4, 6)
        torch.library.opcheck(
            torch.ops.cvgl.selective_scan_backward.default, (grad, *detached, "chunked")
        )
