"""The FP16 export model: a half-precision copy of a GeoSSM whose code keeps FP32 islands.

Method (why a PyTorch-side conversion and not an ONNX graph converter)
-----------------------------------------------------------------------
The FP16 ONNX file is traced from a copy of the model converted in PyTorch: weights and
activations fp16, and the places where fp16 would lose accuracy computed in fp32 *by the
model code itself*, so the exporter writes one Cast at the entry and one at the exit of
each fp32 island and nothing else:

* RMSNorm (``models/norm.py``): mean of squares, rsqrt and the weight in fp32; its input
  is the fp32 residual stream, its output is cast to the mixer's dtype (fp16).
* The residual stream (``models/vim.py``): kept in fp32 (fp16 mixer output is promoted
  at each residual add), as Vim does with ``residual_in_fp32``.
* The selective scan: the ``cvgl.SelectiveScan`` node takes its data (u, delta, B, C, z)
  in fp16 and its parameters (A, D, delta_bias) in fp32 (``scan.contract``,
  ``scan.translation``), as the CUDA kernel does; its body (``scan.function``) casts
  every input to fp32, runs softplus, exp, the recurrence (the ONNX ``Scan`` state) and
  the D skip / gate in fp32, and casts the result back to fp16 (``CastLike``).
* ``A = -exp(A_log)``, D and the dt bias stay fp32 from the parameters
  (``FP32_PARAMETERS``) into the scan, never rounded to fp16: earlier exports rounded
  them at the scan node, which on a Vim-S scan raised the mean relative error 1.6-2x and
  the worst elements' to 10-19 %; with fp32 parameters what is left is the rounding of
  the fp16 output, <= 0.05 % (benchmarks/scan_fp16_params.py).
* The final norm, the readout (CGA / mean pooling sums) and the L2 normalisation run in
  fp32 (``norm_f(..., out_dtype=float32)``; ``readout`` and ``encode`` call ``.float()``).

The model has no softmax; the only reductions are the norms and the pooling, all fp32.

Other models (VimGeo is a GeoSSM and needs nothing more): a module may name parameters to
keep in fp32 with a ``fp32_parameters`` attribute (a tuple of its own parameter names, or
"all"), and does its fp32 work in its own code, as RMSNorm does. LRFR uses it for the
ConvNeXt LayerNorms (``LayerNormFP32``: statistics and affine in fp32) and for SALAD (the
dustbin score; the score matrix is cast to fp32 before the log-domain Sinkhorn, whose
log-sum-exp over hundreds of positions and exp would lose too much in fp16, and the
aggregation and both L2 normalisations stay fp32). ``fp32_islands(model)`` lists what
applies to a model for the report and the metadata.

Graph inputs/outputs stay float32 (``images`` -> Cast fp16 -> patch conv; the descriptor
is fp32 already), so a user feeds an FP16 file exactly like the FP32 one.

Tried and not chosen: converting the FP32 ONNX graph with ``onnxconverter_common``
(1.16) ``float16.convert_float_to_float16(keep_io_types=True, op_block_list=...)``. It
copes with our file (checker and ONNX Runtime pass; the SelectiveScan node becomes fp16
and the local function body is left as it is), but it decides op type by op type: the
residual stream's Adds cannot be told apart from the others and end up fp16, and
blocking the norm ops (Pow, ReduceMean, Sqrt, Reciprocal, ReduceL2, Clip) gave 23 Casts
on the 2-layer test model against 6 here (1 at the entry, 2 per layer, 1 at the end).
Converting in PyTorch puts the fp32 islands where the model code says, gives a small,
readable graph, keeps one source of truth for "what runs in fp32", and needs no extra
dependency.

Measured here (CPU, ONNX Runtime 1.31): FP16 vs FP32 PyTorch descriptor cosine min
0.9999998 on a trained geossm-nano (200 synthetic val pairs, R@1 98.5 -> 98.5, drop 0.0
per branch and with both branches FP16) and 0.99999995 on an untrained geossm-small
(24 layers, 4 images). How ONNX Runtime's CPU provider runs the file: it has no fp16
kernels for Conv, MatMul, Add/Mul/Div, Sigmoid, Softplus, Exp, Sqrt or ReduceMean, so it
inserts Casts itself and computes those in fp32 (fp16 tensors in between); data movement
(Transpose, Reshape, Slice, Split, Concat, Expand) runs in fp16. Nothing fails, no graph
change is needed, but the CPU figure holds fp16 weights and storage, not fp16
arithmetic. The PyTorch half model (fp16 rounding after every op) gave the same recall
(cosine min 0.9999994). Not run here: a TensorRT FP16 engine on a GPU (verification
records "not run"), where fp16 arithmetic applies.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from cvgl_edge.models.mixer import BiMambaMixer
from cvgl_edge.models.norm import RMSNorm

#: Mixer parameters that stay fp32 in the FP16 model, up to and into the scan node.
FP32_PARAMETERS = ("A_log", "A_b_log", "D", "D_b", "dt_proj.bias", "dt_proj_b.bias")
#: Export parity gate (ONNX Runtime FP16 vs FP32 PyTorch, a few synthetic images): catches a
#: broken graph; the accuracy bound is verify's R@1 drop. Measured: cosine min 0.99999995 on
#: the tiny test model and a trained geossm-nano.
FP16_MIN_COSINE = 0.999
#: Where the FP16 graph computes in fp32 (written to the ONNX metadata and the report).
FP32_ISLANDS = (
    "RMSNorm (mean of squares, rsqrt, weight)",
    "residual stream",
    "SelectiveScan body (softplus, exp, recurrence state, D skip, gate)",
    "scan parameters A = -exp(A_log), D, dt bias",
    "final norm, readout pooling and L2 normalisation",
)
#: The same for models without a Mamba trunk (LRFR: ConvNeXt + GSRA + SALAD).
FP32_ISLANDS_CNN = (
    "LayerNorm (statistics and affine)",
    "SALAD score matrix, dustbin and log-domain Sinkhorn (log-sum-exp, exp)",
    "SALAD aggregation, per-cluster and final L2 normalisation",
)


def fp32_islands(model: nn.Module) -> tuple[str, ...]:
    """Where the FP16 graph of ``model`` computes in fp32 (for reports and metadata)."""
    if any(isinstance(m, BiMambaMixer) for m in model.modules()):
        return FP32_ISLANDS
    return FP32_ISLANDS_CNN


def _fp32_parameter_ids(model: nn.Module) -> set[int]:
    kept = {id(p) for m in model.modules() if isinstance(m, RMSNorm) for p in m.parameters()}
    for mixer in (m for m in model.modules() if isinstance(m, BiMambaMixer)):
        kept.update(id(mixer.get_parameter(name)) for name in FP32_PARAMETERS)
    for module in model.modules():
        names = getattr(module, "fp32_parameters", None)
        if names == "all":
            kept.update(id(p) for p in module.parameters())
        elif names:
            kept.update(id(module.get_parameter(name)) for name in names)
    return kept


def half_model(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` in fp16, except the parameters listed above (eval mode, CPU).

    The original model is left untouched (its fp32 weights are the reference the FP16
    export is checked against, and what ``model_sha256`` identifies).
    """
    half = copy.deepcopy(model).eval().cpu()
    kept = _fp32_parameter_ids(half)
    with torch.no_grad():
        for param in half.parameters():
            if param.is_floating_point() and id(param) not in kept:
                param.data = param.data.half()
        for buffer in half.buffers():
            if buffer.is_floating_point():
                buffer.data = buffer.data.half()
    return half
