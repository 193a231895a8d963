"""Model cost per query and branch: parameters, FLOPs and bytes moved (for reports and rooflines).

One forward pass of ``model.encode(images, view)`` runs under two PyTorch dispatch modes:

- ``torch.utils.flop_counter.FlopCounterMode`` counts FLOPs. Its formulas count 2 FLOPs per
  multiply-add for matmul/conv ops (``aten.mm``, ``addmm``, ``bmm``, ``convolution``, ...), and
  ``cvgl.selective_scan`` has its own registered formula (``cvgl_edge/ops/scan_op.py``):
  9 * B * L * Dc * N per scan, the count the Mamba authors give per (batch, time, channel,
  state) element: discretisation (delta*A, exp, delta*B*u), the state update h = a*h + b and
  the readout C*h. That formula counts nothing for the O(B*L*Dc) parts of the op (softplus
  of delta, the D skip, the silu(z) gate: ~5 FLOPs per (b, t, channel), i.e. < 4 % of the
  scan's count at N = 16). Elementwise ops outside matmul/conv/scan (RMSNorm, SiLU, exp(A_log),
  residual adds, the readout's means, the L2 norm) have no formula and are not counted.
- ``_ByteCounter`` (a ``TorchDispatchMode``) sees every aten op and sums the bytes of its
  tensor inputs (read) and outputs (written). View/alias ops (transpose, expand, split,
  ...) move no data and are skipped. Tensors that share storage with a parameter are weight
  reads and are kept apart from activation traffic. Two activation figures come out:
  *unfused* (every op's inputs + outputs: what eager PyTorch moves, an upper bound) and
  *fused* (only the inputs + outputs of matmul/conv/scan ops, the model input and the
  descriptor: the traffic left when every elementwise op is fused into its neighbour, as
  TensorRT largely does; an optimistic lower bound). Both ignore caches.

Parameters per branch are the parameters the forward pass of that view actually reads
(found by storage), so shared-weight models and per-view position embeddings are counted
right; the readout is part of the branch (GeoSSM's CGA readout is parameter-free).

Precision scaling: activations were measured in fp32; fp16 halves them; for int8 the
activations stay at fp16 width (our INT8 graphs quantize only MatMul/Gemm/Conv inputs, see
``cvgl_edge/export/int8/quantize.py``). Weights: fp32 4 B, fp16 2 B, int8 1 B for the
matmul/conv weights and 2 B for the rest (norm weights, A_log, D, biases, embeddings).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

from cvgl_edge.errors import CvglError
from cvgl_edge.precisions import ARTIFACT_PRECISIONS

FLOP_CONVENTION = (
    "FLOPs per query counted by torch.utils.flop_counter.FlopCounterMode: 2 FLOPs per "
    "multiply-add for matmul/conv; each selective scan counted as 9*B*L*Dc*N (the Mamba "
    "authors' count, registered for cvgl.selective_scan); elementwise ops (norms, "
    "activations, residual adds, scan D-skip/gating) not counted"
)
BYTES_METHOD = (
    "bytes per query = weights (read once per batch) + activations; activations summed over "
    "the inputs and outputs of every aten op of one forward pass (TorchDispatchMode, views "
    "skipped); 'fused' keeps only matmul/conv/scan inputs/outputs plus model input and output"
)
PRECISIONS = ARTIFACT_PRECISIONS
_ACT_WIDTH = {"fp32": 4, "fp16": 2, "int8": 2}
_WEIGHT_WIDTH = {"fp32": 4, "fp16": 2, "int8": 2}  # int8: only matmul/conv weights drop to 1 B
_COMPUTE_OPS = ("mm", "addmm", "bmm", "baddbmm", "convolution", "_convolution", "selective_scan")


def _storage_key(t: torch.Tensor) -> int | None:
    try:
        return t.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):  # tensors without storage (meta, sparse)
        return None


def _op_name(func: Any) -> str:
    """'aten.mm', 'cvgl.selective_scan' (overload dropped)."""
    packet = getattr(func, "overloadpacket", func)
    return str(packet)


class _ByteCounter(TorchDispatchMode):
    """Sums bytes read/written per aten op; tells weight reads from activation traffic."""

    def __init__(self, params: dict[int, nn.Parameter]) -> None:
        super().__init__()
        self.params = params
        self.used: set[int] = set()  # storage keys of parameters read by some op
        self.quantizable: set[int] = set()  # ... read by a matmul/conv op (int8 candidates)
        self.unfused = 0
        self.fused = 0
        self.by_op: dict[str, int] = defaultdict(int)
        self.scans: dict[tuple[int, int, int, int], int] = defaultdict(int)  # (batch, dim, seqlen, dstate) -> calls

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = _op_name(func)
        if name == "cvgl.selective_scan":  # (u, delta, A, ...): u (B, Dc, L), A (Dc, N)
            (batch, dim, seqlen), dstate = args[0].shape, args[2].shape[1]
            self.scans[(int(batch), int(dim), int(seqlen), int(dstate))] += 1
        inputs = [t for t in tree_flatten((args, kwargs or {}))[0] if isinstance(t, torch.Tensor)]
        for t in inputs:
            key = _storage_key(t)
            if key in self.params:
                self.used.add(key)
                if name.split(".")[-1] in _COMPUTE_OPS[:-1]:
                    self.quantizable.add(key)
        outputs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        if getattr(func, "is_view", False) or _only_aliases(name, inputs, outputs):
            return out
        read = sum(t.nbytes for t in inputs if _storage_key(t) not in self.params)
        written = sum(t.nbytes for t in outputs)
        self.unfused += read + written
        self.by_op[name] += read + written
        if name.split(".")[-1] in _COMPUTE_OPS:
            self.fused += read + written
        return out


def _only_aliases(name: str, inputs: list[torch.Tensor], outputs: list[torch.Tensor]) -> bool:
    """True for ops whose outputs all alias an input and that write nothing (_unsafe_view, ...)."""
    if not outputs or name.endswith("_"):  # in-place ops (add_, copy_) do write their output
        return False
    keys = {_storage_key(t) for t in inputs}
    return all(_storage_key(t) in keys for t in outputs)


def _unique_parameters(module: nn.Module) -> dict[int, nn.Parameter]:
    found: dict[int, nn.Parameter] = {}
    for p in module.parameters():
        key = _storage_key(p)
        if key is not None:
            found.setdefault(key, p)
    return found


def params_total(model: nn.Module) -> int:
    """All parameters of the model, each shared tensor counted once (both branches for GeoSSM)."""
    return sum(p.numel() for p in _unique_parameters(model).values())


def _input_size(model: nn.Module, view: str) -> tuple[int, int]:
    sizes = getattr(model, "input_sizes", None)
    if not isinstance(sizes, dict) or view not in sizes:
        raise CvglError(f"model {type(model).__name__} has no input size for view {view!r}")
    return tuple(sizes[view])  # type: ignore[return-value]


def model_cost(model: nn.Module, view: str, batch: int = 1) -> dict[str, Any]:
    """Params, FLOPs and bytes of one branch (``view``), per query, from one eager forward.

    ``model`` needs ``encode(images, view)`` and ``input_sizes`` (GeoSSM has both). Runs on
    the model's device in its dtype, under ``torch.no_grad`` and ``eval()`` (restored after).
    """
    if batch < 1:
        raise CvglError(f"batch must be >= 1, got {batch}")
    canonical = getattr(model, "canonical_view", None)
    view = canonical(view) if callable(canonical) else view
    height, width = _input_size(model, view)
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    images = torch.randn(batch, 3, height, width, generator=torch.Generator().manual_seed(0))
    images = images.to(device=device, dtype=dtype)

    params = _unique_parameters(model)
    counter = _ByteCounter(params)
    flops = FlopCounterMode(display=False)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), flops, counter:
            descriptor = model.encode(images, view)
    finally:
        model.train(was_training)

    used = [params[k] for k in counter.used]
    n_params = sum(p.numel() for p in used)
    n_quantizable = sum(params[k].numel() for k in counter.quantizable)
    by_op = {_op_name(op): int(n) for op, n in flops.get_flop_counts().get("Global", {}).items()}
    total_flops = sum(by_op.values())

    io_bytes = images.nbytes + descriptor.nbytes  # kept in the fused figure: they must move
    act_unfused = counter.unfused / batch
    act_fused = (counter.fused + io_bytes) / batch
    weight_bytes = {p: n_params * _WEIGHT_WIDTH[p] for p in PRECISIONS}
    weight_bytes["int8"] = n_quantizable + (n_params - n_quantizable) * 2
    # activations were measured at the model's element width: rescale per precision
    measured_width = torch.finfo(dtype).bits // 8 if dtype.is_floating_point else 4
    scale = {p: _ACT_WIDTH[p] / measured_width for p in PRECISIONS}
    activation = {p: int(act_unfused * scale[p]) for p in PRECISIONS}
    activation_fused = {p: int(act_fused * scale[p]) for p in PRECISIONS}
    per_query_weights = {p: weight_bytes[p] / batch for p in PRECISIONS}
    return {
        "view": view,
        "input_size": [height, width],
        "batch": batch,
        "params": n_params,
        "params_quantizable": n_quantizable,
        "flops": total_flops // batch,
        "flops_by_op": {
            name: n // batch for name, n in sorted(by_op.items(), key=lambda kv: -kv[1])
        },
        "scan_flops": by_op.get("cvgl.selective_scan", 0) // batch,
        # every selective scan of one forward: its shape at this batch and how many run (the scan
        # kernel model in bench/scan_roofline.py times them)
        "scans": [{"batch": b, "dim": d, "seqlen": n_steps, "dstate": n, "calls": calls}
                  for (b, d, n_steps, n), calls in sorted(counter.scans.items())],
        "weight_bytes": weight_bytes,
        "activation_bytes": activation,
        "activation_bytes_fused": activation_fused,
        "bytes_per_query": {p: int(per_query_weights[p] + activation_fused[p]) for p in PRECISIONS},
        "bytes_per_query_unfused": {p: int(per_query_weights[p] + activation[p]) for p in PRECISIONS},
        "activation_bytes_by_op": {
            name: int(n / batch) for name, n in sorted(counter.by_op.items(), key=lambda kv: -kv[1])[:12]
        },
        "flop_convention": FLOP_CONVENTION,
        "bytes_method": BYTES_METHOD,
    }
