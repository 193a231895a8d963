"""The selective scan as one PyTorch operator: ``torch.ops.cvgl.selective_scan``.

Why a custom op: traced or exported graphs (torch.export, ONNX, torch.compile) then hold
one ``cvgl.selective_scan`` node per scan instead of L unrolled steps, which the export
side maps to a single SelectiveScan node / TensorRT plugin. The op picks its backend at
run time (cvgl_edge.ops.backends); its gradient is a second op,
``cvgl.selective_scan_backward``, run on the backend chosen when the forward ran.

FLOPs: FlopCounterMode counts 9 * B * L * Dc * N per forward scan, the count the Mamba
authors give for the selective scan (discretisation, state update and readout per
state element); the FLOP convention is theirs, not re-derived here. The backward op
is not counted.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch.utils.flop_counter import register_flop_formula

from cvgl_edge.ops import backends
from cvgl_edge.ops.common import ScanGrads, cast_grads, check_scan_args, compute_dtype

SCAN_FLOPS_PER_ELEMENT = 9  # Mamba authors' count per (batch, time, channel, state)


@torch.library.custom_op("cvgl::selective_scan", mutates_args=())
def selective_scan_op(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Optional[Tensor],
    z: Optional[Tensor],
    delta_bias: Optional[Tensor],
    delta_softplus: bool,
    reverse: bool,
) -> Tensor:
    """Run the scan on the active backend; output (B, Dc, L) in u's dtype."""
    name = backends.resolve(u.device, compute_dtype(u, delta, A, B, C, D, z, delta_bias))
    out = backends.forward_impl(name)(u, delta, A, B, C, D, z, delta_bias, delta_softplus, reverse)
    return out.to(u.dtype).contiguous()


@selective_scan_op.register_fake
def _selective_scan_fake(u, delta, A, B, C, D, z, delta_bias, delta_softplus, reverse):
    return u.new_empty(u.shape)


def _grad_or_empty(grad: Tensor | None, ref: Tensor) -> Tensor:
    """Custom ops cannot return None: absent inputs get an empty placeholder gradient."""
    return ref.new_empty(0) if grad is None else grad.contiguous()


@torch.library.custom_op("cvgl::selective_scan_backward", mutates_args=())
def selective_scan_backward_op(
    grad: Tensor,
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Optional[Tensor],
    z: Optional[Tensor],
    delta_bias: Optional[Tensor],
    delta_softplus: bool,
    reverse: bool,
    backend: str,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Gradients for (u, delta, A, B, C, D, z, delta_bias); empty where an input is None."""
    grads = backends.backward_impl(backend)(
        grad, u, delta, A, B, C, D, z, delta_bias, delta_softplus, reverse
    )
    grads = cast_grads(grads, (u, delta, A, B, C, D, z, delta_bias))
    return tuple(_grad_or_empty(g, u) for g in grads)  # type: ignore[return-value]


@selective_scan_backward_op.register_fake
def _selective_scan_backward_fake(
    grad, u, delta, A, B, C, D, z, delta_bias, delta_softplus, reverse, backend
):
    def like(t: Tensor | None) -> Tensor:
        return u.new_empty(0) if t is None else t.new_empty(t.shape)

    return tuple(like(t) for t in (u, delta, A, B, C, D, z, delta_bias))


def _setup_context(ctx, inputs, output) -> None:
    u, delta, A, B, C, D, z, delta_bias, delta_softplus, reverse = inputs
    ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias)
    ctx.flags = (delta_softplus, reverse)
    # Fixed now, so the gradient comes from the same backend as the forward.
    ctx.backend = backends.resolve(u.device, compute_dtype(u, delta, A, B, C, D, z, delta_bias))


def _backward(ctx, grad: Tensor):
    u, delta, A, B, C, D, z, delta_bias = ctx.saved_tensors
    delta_softplus, reverse = ctx.flags
    grads = ScanGrads(
        *torch.ops.cvgl.selective_scan_backward(
            grad, u, delta, A, B, C, D, z, delta_bias, delta_softplus, reverse, ctx.backend
        )
    )
    present = (u, delta, A, B, C, D, z, delta_bias)
    out = [g if t is not None else None for g, t in zip(grads, present)]
    return (*out, None, None)


selective_scan_op.register_autograd(_backward, setup_context=_setup_context)


@register_flop_formula(torch.ops.cvgl.selective_scan)
def _selective_scan_flops(u_shape, delta_shape, A_shape, *args, out_shape=None, **kwargs) -> int:
    batch, channels, length = u_shape
    return SCAN_FLOPS_PER_ELEMENT * batch * length * channels * A_shape[1]


def selective_scan(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    reverse: bool = False,
) -> Tensor:
    """Mamba selective scan as one operator (semantics: docs/export.md, "The selective scan").

    u, delta, z: (B, Dc, L); A: (Dc, N); B, C: (B, N, L); D, delta_bias: (Dc,).
    Computed in fp32 (fp64 if an input is fp64); returned in u's dtype.
    reverse=True scans from t = L-1 down to 0, the same as flipping u, delta, z, B, C
    along L, scanning, and flipping the result back. Differentiable in every tensor.
    Raises CvglError on malformed shapes.
    """
    check_scan_args(u, delta, A, B, C, D, z, delta_bias)
    return torch.ops.cvgl.selective_scan(
        u, delta, A, B, C, D, z, delta_bias, bool(delta_softplus), bool(reverse)
    )
