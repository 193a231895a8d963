"""Roofline estimate of ms-per-query on a device we do not have: an estimate, never a measurement.

time = max(FLOPs / peak compute, bytes / peak bandwidth), per query, from ``model_cost``.
Why this is only a floor: peak rates are never reached (tensor-core GEMMs at batch 1 run far
below peak), the 48 selective scans per branch are sequential recurrences of L steps whose
latency is bound by the step chain rather than by FLOPs or bytes, kernel-launch overheads
are ignored, and the bytes assume every tensor goes through DRAM once (no cache reuse).
Real latencies are usually several times higher; the estimate says which bound dominates.
"""

from __future__ import annotations

from typing import Any

from cvgl_edge.bench.devices import DEVICES, peak_for_precision
from cvgl_edge.errors import CvglError
from cvgl_edge.models.cost import PRECISIONS

ESTIMATE_KIND = "estimate (roofline)"
ASSUMPTIONS = (
    "vendor peak dense throughput and DRAM bandwidth (no sparsity)",
    "all counted FLOPs at the precision's peak (fp16/int8: tensor cores); uncounted elementwise ops free",
    "bytes = weights + fused activations (elementwise ops fused into matmul/conv/scan), each moved once",
    "no launch overhead, no cache reuse, compute and memory fully overlapped",
    "the selective scan's sequential dependency over L is ignored (a real lower bound is higher)",
)


def check_device(device: str) -> str:
    """A DEVICES key, or a one-line CvglError listing the choices."""
    if device not in DEVICES:
        raise CvglError(f"unknown device {device!r} for --estimate; choose one of: {', '.join(DEVICES)}")
    return device


def estimate(cost: dict[str, Any], device: str, precision: str) -> dict[str, Any]:
    """Roofline ms-per-query of a ``model_cost`` result on ``device`` at ``precision``."""
    spec = DEVICES[check_device(device)]
    if precision not in PRECISIONS:
        raise CvglError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    flops = float(cost["flops"])
    fused = float(cost["bytes_per_query"][precision])
    unfused = float(cost["bytes_per_query_unfused"][precision])
    peak = peak_for_precision(spec, precision)
    bandwidth = spec["mem_bandwidth_gbs"] * 1e9
    compute_ms = flops / peak * 1e3
    memory_ms = fused / bandwidth * 1e3
    bound = "compute" if compute_ms >= memory_ms else "memory"
    return {
        "kind": ESTIMATE_KIND,
        "device": device,
        "device_name": spec["name"],
        "precision": precision,
        "view": cost.get("view"),
        "ms_per_query": max(compute_ms, memory_ms),
        "compute_ms": compute_ms,
        "memory_ms": memory_ms,
        "memory_ms_unfused": unfused / bandwidth * 1e3,
        "bound": bound,
        "arithmetic_intensity": flops / fused if fused else float("inf"),
        "ridge_point": peak / bandwidth,
        "peak_tflops": peak / 1e12,
        "mem_bandwidth_gbs": spec["mem_bandwidth_gbs"],
        "flops": flops,
        "bytes": fused,
        "assumptions": list(ASSUMPTIONS),
        "source": spec["source"],
    }


def device_table() -> list[dict[str, Any]]:
    """Rows for a report: key, name, peaks, bandwidth, source."""
    return [
        {"device": key, "name": d["name"], "fp32_tflops": d["fp32_tflops"], "fp16_tflops": d["fp16_tflops"],
         "int8_tops": d["int8_tops"], "mem_bandwidth_gbs": d["mem_bandwidth_gbs"], "source": d["source"]}
        for key, d in DEVICES.items()
    ]
