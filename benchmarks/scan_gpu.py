"""GPU selective-scan benchmark: our CUDA kernel vs mamba-ssm's kernel vs the PyTorch paths.

Backends (each skipped with its reason when it cannot run):
  cvgl_cuda    export/csrc/selective_scan_kernel.cu through export/torch_binding/scan_ctypes.py
               (compiled here with nvcc for the visible GPU; --library to reuse a built .so)
  mamba_ssm    mamba_ssm.ops.selective_scan_interface.selective_scan_fn, when it imports
  chunked      cvgl_edge.ops.chunked (vectorised PyTorch, on the GPU)
  reference    cvgl_edge.ops.selective_scan_reference (the step loop, on the GPU)

Shapes: the Vim-S scan (B=1, Dc=768, L=257, N=16) and a sweep of L (65..1025) at B=1, for each
--batches value (B=1 is the per-image latency case: 96 thread blocks, far from filling an H100;
a larger batch shows the bandwidth the kernel can reach). Forward only, D + z + delta_bias +
softplus, fp32 and/or fp16 storage (fp32 state and accumulation everywhere).

Timing: CUDA events around each call on the current stream (warm-up first), median / p90.
Achieved bandwidth = minimum bytes a scan moves (u, delta, z, y, B, C at the storage dtype; A,
D, delta_bias fp32: see benchmarks/scan_sweep.py:scan_io_bytes) / median time, and its fraction
of the GPU's peak DRAM bandwidth (cvgl_edge.bench.devices by GPU name, or --peak-gbs).
Every output is checked against the fp32 step loop before timing.

Exits with a one-line message (code 2) when no CUDA GPU is visible. Written against the
documented torch.cuda / mamba_ssm APIs and our ctypes binding; it has not been run on a GPU
in this repository's CI (no GPU there).

    python benchmarks/scan_gpu.py --dtypes fp32,fp16 --batches 1,32
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for path in (REPO, HERE, REPO / "export" / "torch_binding"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import torch  # noqa: E402

from cvgl_edge.bench.devices import DEVICES, device_for_gpu_name  # noqa: E402
from cvgl_edge.bench.machine import load_average, machine_info, result_stem  # noqa: E402
from cvgl_edge.timing import percentile  # noqa: E402
from cvgl_edge.io import atomic_write, atomic_write_json  # noqa: E402
from cvgl_edge.ops import chunked, cuda_mamba, selective_scan_reference  # noqa: E402
from cvgl_edge.ops.testing import random_scan_inputs  # noqa: E402
from scan_sweep import DEFAULT_LENGTHS, scan_io_bytes  # noqa: E402

BACKENDS = ("cvgl_cuda", "mamba_ssm", "chunked", "reference")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
VIM_S = (1, 768, 257, 16)
ScanFn = Callable[[dict], torch.Tensor]


def cuda_events_ms(fn: Callable[[], object], warmup: int, repeats: int) -> list[float]:
    """Per-call GPU time from CUDA events recorded on the current stream."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(repeats)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(repeats)]
    for start, end in zip(starts, ends):
        start.record()
        fn()
        end.record()
    torch.cuda.synchronize()
    return [start.elapsed_time(end) for start, end in zip(starts, ends)]


def load_backends(wanted: list[str], library: Path | None) -> tuple[dict[str, ScanFn], dict[str, str]]:
    """Callables taking the input dict, and a reason for each backend that cannot run."""
    fns: dict[str, ScanFn] = {}
    skipped: dict[str, str] = {}
    if "cvgl_cuda" in wanted:
        try:
            import scan_ctypes

            lib = library or scan_ctypes.build_library(tempfile.mkdtemp(prefix="cvgl_scan_gpu_"))
            native = scan_ctypes.NativeScan(lib)
            fns["cvgl_cuda"] = lambda x: native(**x, delta_softplus=True)
        except Exception as exc:  # nvcc missing, compile error, ABI mismatch: report, go on
            skipped["cvgl_cuda"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}"
    if "mamba_ssm" in wanted:
        fn = cuda_mamba.scan_fn()
        if fn is None:
            skipped["mamba_ssm"] = "mamba_ssm not importable (pip install mamba-ssm builds it for this GPU)"
        else:
            fns["mamba_ssm"] = lambda x: fn(x["u"], x["delta"], x["A"], x["B"], x["C"], x["D"], x["z"],
                                            x["delta_bias"], True)
    if "chunked" in wanted:
        fns["chunked"] = lambda x: chunked.forward(x["u"], x["delta"], x["A"], x["B"], x["C"], x["D"], x["z"],
                                                   x["delta_bias"], True, False)
    if "reference" in wanted:
        fns["reference"] = lambda x: selective_scan_reference(**x, delta_softplus=True)
    return fns, skipped


def run_shape(shape: tuple[int, int, int, int], dtype: str, fns: dict[str, ScanFn], warmup: int,
              repeats: int, peak_gbs: float | None) -> dict:
    batch, channels, length, nstate = shape
    inputs = random_scan_inputs(batch, channels, length, nstate, dtype=DTYPES[dtype], device="cuda", seed=0)
    ref_inputs = {k: None if v is None else v.float() for k, v in inputs.items()}
    with torch.no_grad():
        expected = selective_scan_reference(**ref_inputs, delta_softplus=True)
        nbytes = scan_io_bytes(batch, channels, length, nstate, elem_bytes=DTYPES[dtype].itemsize)
        results = {}
        for name, fn in fns.items():
            out = fn(inputs)
            max_diff = (out.float() - expected).abs().max().item()
            times = cuda_events_ms(lambda: fn(inputs), warmup, repeats)
            median = percentile(times, 50)
            gbs = nbytes / (median * 1e-3) / 1e9
            results[name] = {
                "median_ms": round(median, 5), "p90_ms": round(percentile(times, 90), 5),
                "min_ms": round(min(times), 5), "achieved_gbs": round(gbs, 2),
                "fraction_of_peak": round(gbs / peak_gbs, 4) if peak_gbs else None,
                "max_abs_diff_vs_fp32_reference": max_diff,
            }
            print(f"  {dtype} B={batch:3d} L={length:5d} {name:10s} {median * 1e3:10.1f} us "
                  f"{gbs:9.1f} GB/s  diff {max_diff:.1e}", flush=True)
    return {"shape": {"batch": batch, "channels": channels, "length": length, "nstate": nstate},
            "dtype": dtype, "bytes_moved": nbytes, "results": results}


def write_markdown(path: Path, report: dict) -> None:
    m = report["machine"]
    lines = [
        f"# GPU selective-scan benchmark ({report['date']})",
        "",
        f"- Command: `{report['command']}`",
        f"- GPU: {m.get('gpu')} (CUDA {m.get('cuda')}), torch {m['torch']}; host `{m['host']}`",
        f"- Peak DRAM bandwidth used for the fraction: {report['peak_gbs']} GB/s ({report['peak_source']})",
        f"- Warm-up {report['warmup']}, repeats {report['repeats']}, CUDA events; forward, D + z + bias + softplus",
        f"- Skipped: {report['skipped'] or 'none'}",
        "",
        "| dtype | B | L | backend | median us | p90 us | GB/s | of peak | max abs diff |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in report["cases"]:
        s = row["shape"]
        for name, r in row["results"].items():
            frac = f"{r['fraction_of_peak']:.1%}" if r["fraction_of_peak"] is not None else "-"
            lines.append(f"| {row['dtype']} | {s['batch']} | {s['length']} | {name} | {r['median_ms'] * 1e3:.1f} | "
                         f"{r['p90_ms'] * 1e3:.1f} | {r['achieved_gbs']:.1f} | {frac} | "
                         f"{r['max_abs_diff_vs_fp32_reference']:.1e} |")
    atomic_write(path, lambda tmp: tmp.write_text("\n".join(lines) + "\n"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None,
                        help="output JSON (default benchmarks/results/scan_gpu_<host>_<date>.json)")
    parser.add_argument("--lengths", default=DEFAULT_LENGTHS, help="comma-separated sequence lengths")
    parser.add_argument("--batches", default="1,32", help="comma-separated batch sizes for the sweep")
    parser.add_argument("--dtypes", default="fp32,fp16", help=f"comma-separated subset of {','.join(DTYPES)}")
    parser.add_argument("--backends", default=",".join(BACKENDS), help=f"subset of {','.join(BACKENDS)}")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--peak-gbs", type=float, default=None,
                        help="peak DRAM bandwidth in GB/s (default: from the device table by GPU name)")
    parser.add_argument("--device", default=None, choices=sorted(DEVICES),
                        help="device-table row for the peak (Jetson: every Orin reports the same name)")
    parser.add_argument("--library", type=Path, default=None, help="prebuilt libcvgl_scan.so to use")
    parser.add_argument("--skip-reference-above", type=int, default=1025,
                        help="skip the step loop for longer L (it launches ~10 kernels per step)")
    args = parser.parse_args(argv)

    if not torch.cuda.is_available():
        print("scan_gpu: no CUDA GPU visible (torch.cuda.is_available() is False); run it on a CUDA "
              "machine (the CPU sweep is benchmarks/scan_sweep.py)", file=sys.stderr)
        return 2
    gpu_name = torch.cuda.get_device_name(0)
    key = args.device or device_for_gpu_name(gpu_name)
    peak = args.peak_gbs or (DEVICES[key]["mem_bandwidth_gbs"] if key else None)
    peak_source = "--peak-gbs" if args.peak_gbs else (f"device table: {key}" if key else "unknown GPU: none")

    wanted = [b.strip() for b in args.backends.split(",") if b.strip()]
    fns, skipped = load_backends(wanted, args.library)
    for name, reason in skipped.items():
        print(f"skipping {name}: {reason}")
    lengths = [int(x) for x in args.lengths.split(",") if x.strip()]
    batches = [int(x) for x in args.batches.split(",") if x.strip()]
    shapes = [VIM_S] + [(b, 768, n, 16) for b in batches for n in lengths if (b, 768, n, 16) != VIM_S]

    cases = []
    for dtype in [d.strip() for d in args.dtypes.split(",") if d.strip()]:
        for shape in shapes:
            use = {k: v for k, v in fns.items()
                   if not (k == "reference" and shape[2] > args.skip_reference_above)}
            cases.append(run_shape(shape, dtype, use, args.warmup, args.repeats, peak))

    today = dt.datetime.now()
    command = shlex.join(["python", "benchmarks/scan_gpu.py", *(sys.argv[1:] if argv is None else argv)])
    report = {
        "benchmark": "scan_gpu", "date": today.isoformat(timespec="seconds"), "command": command,
        "machine": machine_info(), "load_average": load_average(), "peak_gbs": peak,
        "peak_source": peak_source, "warmup": args.warmup, "repeats": args.repeats,
        "skipped": skipped, "cases": cases,
    }
    out = args.json or result_stem(REPO / "benchmarks" / "results", "scan_gpu").with_suffix(".json")
    atomic_write_json(report, out)
    write_markdown(out.with_suffix(".md"), report)
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
