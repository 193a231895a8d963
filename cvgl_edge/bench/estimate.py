"""Roofline estimate of ms-per-query on a device we do not have: an estimate, never a measurement.

time = max(FLOPs / peak compute, bytes / peak bandwidth), per query, from ``model_cost``.
The selective scans are recurrences that this roofline cannot time (their bound is the exp2
unit, the issue rate or the step chain, not FLOPs): where the model lists its scans (``scans``
from models/cost.py) and the device has core figures, their FLOPs and bytes leave the roofline
and the scan-kernel model (bench/scan_roofline.py) adds their time, for the current kernel
(``scan_ms``) and, for comparison, the previous one (``scan_ms_old``).
Why this is only a floor: peak rates are never reached (tensor-core GEMMs at batch 1 run far
below peak), kernel-launch overheads are ignored, and the bytes assume every tensor goes
through DRAM once (no cache reuse). Real latencies are usually several times higher; the
estimate says which bound dominates.
"""

from __future__ import annotations

from typing import Any

from cvgl_edge.bench import scan_roofline
from cvgl_edge.bench.devices import DEVICES, peak_for_precision
from cvgl_edge.errors import CvglError
from cvgl_edge.models.cost import PRECISIONS

ESTIMATE_KIND = "estimate (roofline)"
ASSUMPTIONS = (
    "vendor peak dense throughput and DRAM bandwidth (no sparsity)",
    "all counted FLOPs at the precision's peak (fp16/int8: tensor cores); uncounted elementwise ops free",
    "bytes = weights + fused activations (elementwise ops fused into matmul/conv/scan), each moved once",
    "no launch overhead, no cache reuse, compute and memory fully overlapped",
    "selective scans: the scan-kernel model (SASS instruction counts, 16 exp2 per SM per clock, one "
    "warp instruction per scheduler per clock, the step chain, one DRAM latency per tile), added after "
    "the rest; without scan shapes or core figures the scans stay in the roofline",
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
    scans = scan_times(cost, device, precision)
    if scans is not None:  # the scans leave the roofline and come back as the kernel model's time
        flops -= float(cost.get("scan_flops", 0))
        fused = max(fused - scans["bytes_per_query"], 0.0)
    peak = peak_for_precision(spec, precision)
    bandwidth = spec["mem_bandwidth_gbs"] * 1e9
    compute_ms = flops / peak * 1e3
    memory_ms = fused / bandwidth * 1e3
    bound = "compute" if compute_ms >= memory_ms else "memory"
    scan_ms = scans["ms_per_query"]["new"] if scans else 0.0
    if scans and scan_ms > max(compute_ms, memory_ms):
        bound = "scans"
    return {
        "kind": ESTIMATE_KIND,
        "device": device,
        "device_name": spec["name"],
        "precision": precision,
        "view": cost.get("view"),
        "ms_per_query": max(compute_ms, memory_ms) + scan_ms,
        "scan_ms": scan_ms if scans else None,
        "scan_ms_old": scans["ms_per_query"]["old"] if scans else None,
        "scan_kernels": scans["kernels"] if scans else [],
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


def scan_times(cost: dict[str, Any], device: str, precision: str) -> dict[str, Any] | None:
    """Per-query time and bytes of the model's scans on ``device`` (fp16 storage for fp16/int8
    engines, fp32 for fp32), for both kernels; None without scan shapes or core figures."""
    if not cost.get("scans") or device not in scan_roofline.GPU_CORES:
        return None
    batch = max(int(cost.get("batch", 1)), 1)
    width = 4 if precision == "fp32" else 2
    totals = {name: 0.0 for name in scan_roofline.KERNELS}
    kernels, moved = [], 0.0
    for scan in cost["scans"]:
        shape = scan_roofline.ScanShape(scan["batch"], scan["dim"], scan["seqlen"], scan["dstate"], width)
        moved += scan["calls"] * shape.io_bytes / batch
        for name, model in scan_roofline.KERNELS.items():
            one = model(shape, device)
            totals[name] += scan["calls"] * one.us / 1e3 / batch
            kernels.append({**one.to_dict(), "calls": scan["calls"]})
    return {"ms_per_query": totals, "bytes_per_query": moved, "kernels": kernels}


def device_table() -> list[dict[str, Any]]:
    """Rows for a report: key, name, peaks, bandwidth, source."""
    return [
        {"device": key, "name": d["name"], "fp32_tflops": d["fp32_tflops"], "fp16_tflops": d["fp16_tflops"],
         "int8_tops": d["int8_tops"], "mem_bandwidth_gbs": d["mem_bandwidth_gbs"], "source": d["source"]}
        for key, d in DEVICES.items()
    ]
