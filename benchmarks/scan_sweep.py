"""CPU selective-scan sweep over sequence length: step loop vs C++ kernel vs chunked PyTorch.

Shape: B=1, Dc=768, N=16 (one Vim-S scan direction) at L = 65, 129, 257, 513, 1025 by default
(Vim-S at 128x512 / 256x256 is L=257 with the cls token), with D, z, delta_bias and softplus,
forward only, under torch.no_grad. Each backend's output is checked against the step loop
before it is timed.

Achieved bandwidth = the bytes a scan must move at least once / median time:
u, delta, z read and y written (B*Dc*L each), B and C read (B*N*L each), A (Dc*N), D and
delta_bias (Dc) read, all at the element size (fp32 here). Intermediates (the state h,
softplus(delta)) are not counted: a fused kernel keeps them on chip. On a CPU this is a
figure of merit, not a memory-bound ceiling: the step loop is latency-bound.

Writes benchmarks/results/scan_sweep_<host>_<date>.json and .md (or --json PATH and the .md
beside it) with the machine, thread count, load average and the exact command.

    python benchmarks/scan_sweep.py --repeats 10
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for path in (REPO, HERE):  # run from a checkout without installing; reuse scan_cpu's helpers
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import torch  # noqa: E402

from cvgl_edge.bench.machine import load_average, machine_info, result_stem  # noqa: E402
from cvgl_edge.timing import percentile, time_ms  # noqa: E402
from cvgl_edge.io import atomic_write, atomic_write_json  # noqa: E402
from cvgl_edge.ops import selective_scan_reference  # noqa: E402
from cvgl_edge.ops.scan_op import SCAN_FLOPS_PER_ELEMENT  # noqa: E402
from cvgl_edge.ops.testing import random_scan_inputs  # noqa: E402
from scan_cpu import build_kernel, make_step  # noqa: E402

DEFAULT_LENGTHS = "65,129,257,513,1025"


def scan_io_bytes(batch: int, channels: int, length: int, nstate: int, elem_bytes: int = 4,
                  param_bytes: int = 4) -> int:
    """Minimum bytes one scan moves: u, delta, z, y (B*Dc*L), B, C (B*N*L), A (Dc*N), D, bias (Dc)."""
    activations = 4 * batch * channels * length + 2 * batch * nstate * length
    params = channels * nstate + 2 * channels
    return activations * elem_bytes + params * param_bytes


def run_length(length: int, channels: int, nstate: int, backends: list[str], warmup: int,
               repeats: int) -> dict:
    inputs = random_scan_inputs(1, channels, length, nstate, seed=0)
    with torch.no_grad():
        expected = selective_scan_reference(**inputs, delta_softplus=True)
    nbytes = scan_io_bytes(1, channels, length, nstate)
    results = {}
    for backend in backends:
        step = make_step(backend, inputs, backward=False)
        max_diff = (step() - expected).abs().max().item()
        times = time_ms(step, warmup, repeats)
        median = percentile(times, 50)
        results[backend] = {
            "median_ms": round(median, 4),
            "p90_ms": round(percentile(times, 90), 4),
            "min_ms": round(min(times), 4),
            "achieved_gbs": round(nbytes / (median * 1e-3) / 1e9, 3),
            "max_abs_diff_vs_reference": max_diff,
        }
        print(f"  L={length:5d} {backend:10s} median {median:9.3f} ms  "
              f"{results[backend]['achieved_gbs']:7.2f} GB/s", flush=True)
    ref = results.get("reference", {}).get("median_ms")
    for res in results.values():
        res["speedup_vs_reference"] = round(ref / res["median_ms"], 2) if ref else None
    return {"length": length, "bytes_moved": nbytes,
            "scan_flops_mamba_count": SCAN_FLOPS_PER_ELEMENT * length * channels * nstate,
            "results": results}


def write_markdown(path: Path, report: dict) -> None:
    m = report["machine"]
    lines = [
        f"# CPU selective-scan sweep over L ({report['date']})",
        "",
        f"- Command: `{report['command']}`",
        f"- Machine: {m['cpu_model']}, {m['logical_cores']} logical cores ({m['usable_cores']} usable), "
        f"host `{m['host']}`, {m['os']}",
        f"- torch {m['torch']} ({m['torch_threads']} threads), Python {m['python']}",
        f"- Shape: B=1, Dc={report['channels']}, N={report['nstate']}, fp32, D + z + delta_bias + softplus, "
        "forward, no grad",
        f"- Warm-up {report['warmup']}, repeats {report['repeats']}; load average before/after: "
        f"{report['load_before']} / {report['load_after']}",
        "- Bytes = u, delta, z, y (Dc*L each) + B, C (N*L each) + A, D, delta_bias, fp32; "
        "GB/s = bytes / median time (a figure of merit on a CPU: the scan is latency-bound)",
        f"- Note: {report['note']}",
        "",
        "| L | MB moved | backend | median ms | p90 ms | GB/s | speed-up vs step loop | max abs diff |",
        "|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in report["sweep"]:
        for backend, r in row["results"].items():
            lines.append(
                f"| {row['length']} | {row['bytes_moved'] / 1e6:.2f} | {backend} | {r['median_ms']:.3f} | "
                f"{r['p90_ms']:.3f} | {r['achieved_gbs']:.2f} | {r['speedup_vs_reference']}x | "
                f"{r['max_abs_diff_vs_reference']:.1e} |"
            )
    atomic_write(path, lambda tmp: tmp.write_text("\n".join(lines) + "\n"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None,
                        help="output JSON path (default benchmarks/results/scan_sweep_<host>_<date>.json)")
    parser.add_argument("--lengths", default=DEFAULT_LENGTHS, help="comma-separated sequence lengths")
    parser.add_argument("--channels", type=int, default=768, help="Dc (Vim-S: 768)")
    parser.add_argument("--nstate", type=int, default=16, help="N (Mamba: 16)")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per backend and length")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs per backend and length")
    parser.add_argument("--threads", type=int, default=None, help="torch/OpenMP threads")
    parser.add_argument("--backends", default="reference,chunked,cpp",
                        help="comma-separated subset of reference,chunked,cpp")
    parser.add_argument("--note", default="", help="free text stored with the results")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    command = shlex.join(["python", *([sys.argv[0]] if argv is None else ["benchmarks/scan_sweep.py"]),
                          *(sys.argv[1:] if argv is None else argv)])
    load_before = load_average()
    build = build_kernel(fresh=False)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if "cpp" in backends and not build["available"]:
        print(f"C++ kernel unavailable ({build['failure']}); skipping cpp")
        backends.remove("cpp")
    lengths = [int(x) for x in args.lengths.split(",") if x.strip()]

    today = dt.datetime.now()
    report = {
        "benchmark": "scan_sweep",
        "date": today.isoformat(timespec="seconds"),
        "command": command,
        "machine": machine_info(),
        "cpp_build": build,
        "channels": args.channels,
        "nstate": args.nstate,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "load_before": load_before,
        "note": args.note or "shared machine: other jobs may have been running; see load average",
        "sweep": [run_length(length, args.channels, args.nstate, backends, args.warmup, args.repeats)
                  for length in lengths],
    }
    report["load_after"] = load_average()

    out = args.json or result_stem(REPO / "benchmarks" / "results", "scan_sweep").with_suffix(".json")
    atomic_write_json(report, out)
    write_markdown(out.with_suffix(".md"), report)
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
