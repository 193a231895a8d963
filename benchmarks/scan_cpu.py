"""CPU selective-scan benchmark: reference loop vs chunked PyTorch vs C++ kernel.

Cases (shapes as in docs/export.md, "The selective scan"):
  forward  Vim-Small, one scan direction: B=1, Dc=768, L=257, N=16, with D, z,
           delta_bias and softplus (what one mixer branch runs per image).
  fwd+bwd  training-like: B=8, Dc=384, L=65, N=16, same options; "reference" here is
           autograd through the step loop (the plain PyTorch path the others replace).

Each backend: warm-up runs, then --repeats timed runs; median and p90 in ms and the
speed-up of the median against the reference. Before timing, every backend's output is
checked against the reference (max abs difference is recorded).

Writes benchmarks/results/scan_cpu_<host>_<date>.json and .md (or --json PATH and the
.md beside it), with the machine, torch/python versions, thread count, load average
and the exact command. The C++ build time is recorded too: with --fresh-build the kernel
is compiled into an empty temporary directory, so the figure is a full build.

    python benchmarks/scan_cpu.py --repeats 20
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from cvgl_edge.bench.machine import load_average, machine_info, result_stem  # noqa: E402
from cvgl_edge.timing import percentile, time_ms  # noqa: E402
from cvgl_edge.ops import selective_scan, selective_scan_reference, use_backend  # noqa: E402
from cvgl_edge.ops import cpu_kernel  # noqa: E402
from cvgl_edge.ops.scan_op import SCAN_FLOPS_PER_ELEMENT  # noqa: E402
from cvgl_edge.ops.testing import random_scan_inputs  # noqa: E402

CASES = {
    "forward_vim_s": dict(shape=(1, 768, 257, 16), backward=False),
    "fwd_bwd_train": dict(shape=(8, 384, 65, 16), backward=True),
}
SCANS_PER_IMAGE = 48  # Vim-S: 24 layers x 2 directions, one branch


def make_step(backend: str, inputs: dict, backward: bool) -> Callable[[], torch.Tensor]:
    """One timed unit of work for a backend: a forward scan, or forward + backward."""
    flags = dict(delta_softplus=True)
    grad = None

    def forward() -> torch.Tensor:
        if backend == "reference":
            return selective_scan_reference(**inputs, **flags)
        with use_backend(backend):
            return selective_scan(**inputs, **flags)

    def forward_backward() -> torch.Tensor:
        nonlocal grad
        for t in inputs.values():
            if t is not None:
                t.grad = None
        out = forward()
        if grad is None:
            grad = torch.randn_like(out)
        out.backward(grad)
        return out

    if not backward:
        return lambda: _no_grad(forward)
    return forward_backward


def _no_grad(fn: Callable[[], torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return fn()


def run_case(name: str, spec: dict, backends: list[str], warmup: int, repeats: int) -> dict:
    batch, channels, length, nstate = spec["shape"]
    inputs = random_scan_inputs(
        batch, channels, length, nstate, seed=0, requires_grad=spec["backward"]
    )
    with torch.no_grad():
        expected = selective_scan_reference(**inputs, delta_softplus=True)
    results = {}
    for backend in backends:
        step = make_step(backend, inputs, spec["backward"])
        out = step()
        max_diff = (out.detach() - expected).abs().max().item()
        times = time_ms(step, warmup, repeats)
        results[backend] = {
            "median_ms": round(percentile(times, 50), 3),
            "p90_ms": round(percentile(times, 90), 3),
            "min_ms": round(min(times), 3),
            "max_abs_diff_vs_reference": max_diff,
            "times_ms": [round(t, 3) for t in times],
        }
        print(f"  {name:15s} {backend:10s} median {results[backend]['median_ms']:9.3f} ms"
              f"  p90 {results[backend]['p90_ms']:9.3f} ms", flush=True)
    ref = results.get("reference", {}).get("median_ms")
    for res in results.values():
        res["speedup_vs_reference"] = round(ref / res["median_ms"], 2) if ref else None
    return {
        "shape": {"batch": batch, "channels": channels, "length": length, "nstate": nstate},
        "options": {"D": True, "z": True, "delta_bias": True, "delta_softplus": True},
        "backward": spec["backward"],
        "scan_flops_mamba_count": SCAN_FLOPS_PER_ELEMENT * batch * length * channels * nstate,
        "results": results,
    }


def build_kernel(fresh: bool) -> dict:
    if fresh:
        os.environ["CVGL_EXTENSIONS_DIR"] = tempfile.mkdtemp(prefix="cvgl_scan_build_")
    available = cpu_kernel.is_available()
    return {
        "available": available,
        "fresh_build": fresh,
        "seconds": round(cpu_kernel.LIBRARY.seconds or 0.0, 2),
        "failure": cpu_kernel.failure_reason(),
    }


def write_markdown(path: Path, report: dict) -> None:
    m = report["machine"]
    lines = [
        f"# CPU selective-scan benchmark ({report['date']})",
        "",
        f"- Command: `{report['command']}`",
        f"- Machine: {m['cpu_model']}, {m['logical_cores']} logical cores "
        f"({m['usable_cores']} usable), host `{m['host']}`, {m['os']}",
        f"- torch {m['torch']} ({m['torch_threads']} threads), Python {m['python']}",
        f"- C++ kernel: {'built' if report['cpp_build']['available'] else 'unavailable'}"
        f" in {report['cpp_build']['seconds']} s"
        f" ({'fresh build' if report['cpp_build']['fresh_build'] else 'cache may have been warm'})",
        f"- Warm-up {report['warmup']}, repeats {report['repeats']}; "
        f"load average before/after: {report['load_before']} / {report['load_after']}",
        f"- Note: {report['note']}",
        "",
        "| case | shape (B, Dc, L, N) | backend | median ms | p90 ms | speed-up vs reference |"
        " max abs diff vs reference |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for case, data in report["cases"].items():
        s = data["shape"]
        shape = f"{s['batch']}, {s['channels']}, {s['length']}, {s['nstate']}"
        for backend, r in data["results"].items():
            lines.append(
                f"| {case} | {shape} | {backend} | {r['median_ms']:.3f} | {r['p90_ms']:.3f} |"
                f" {r['speedup_vs_reference']}x | {r['max_abs_diff_vs_reference']:.2e} |"
            )
    fwd = report["cases"].get("forward_vim_s", {}).get("results", {})
    if fwd:
        lines += ["", f"Projected scan time per image ({SCANS_PER_IMAGE} Vim-S scans, one branch):"]
        for backend, r in fwd.items():
            lines.append(f"- {backend}: {r['median_ms'] * SCANS_PER_IMAGE:.0f} ms")
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None,
                        help="output JSON path (default benchmarks/results/scan_cpu_<host>_<date>.json)")
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per backend")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs per backend")
    parser.add_argument("--threads", type=int, default=None, help="torch/OpenMP threads")
    parser.add_argument("--backends", default="reference,chunked,cpp",
                        help="comma-separated subset of reference,chunked,cpp")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of cases")
    parser.add_argument("--fresh-build", action="store_true",
                        help="build the C++ kernel in an empty directory (times a full build)")
    parser.add_argument("--note", default="", help="free text stored with the results")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    command = shlex.join(["python", *([sys.argv[0]] if argv is None else ["scan_cpu.py"]),
                          *(sys.argv[1:] if argv is None else argv)])
    load_before = load_average()
    build = build_kernel(args.fresh_build)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if "cpp" in backends and not build["available"]:
        print(f"C++ kernel unavailable ({build['failure']}); skipping cpp")
        backends.remove("cpp")

    today = dt.datetime.now()
    report = {
        "benchmark": "scan_cpu",
        "date": today.isoformat(timespec="seconds"),
        "command": command,
        "machine": machine_info(),
        "cpp_build": build,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "load_before": load_before,
        "note": args.note or "shared machine: other jobs may have been running; see load average",
        "cases": {},
    }
    for name in [c.strip() for c in args.cases.split(",") if c.strip()]:
        report["cases"][name] = run_case(name, CASES[name], backends, args.warmup, args.repeats)
    report["load_after"] = load_average()

    out = args.json or result_stem(REPO / "benchmarks" / "results", "scan_cpu").with_suffix(".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    write_markdown(out.with_suffix(".md"), report)
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
