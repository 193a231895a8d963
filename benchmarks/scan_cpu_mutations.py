"""Does the CPU-emulated parity suite catch a broken kernel? And how close is the real one?

1. Runs the kernel (built for the CPU with HIP-CPU, as tests/native/test_kernel_cpu.py does)
   over the suite's case matrix and prints the largest error per data dtype, as
   max |kernel - float64 reference| / max |reference| per case.
2. Builds broken copies of export/csrc/selective_scan_kernel.cu (one edit each: the time-split
   scan's combine, exclusive shift and carry, the reverse tile range, a run's start, the
   16-byte window alignment, each __syncthreads() removed) and runs the
   whole suite against each (CVGL_SCAN_KERNEL_SOURCE); a mutant must fail tests.

Needs what the suite needs: CVGL_HIP_CPU_ROOT, CVGL_HIPIFY_PERL and libtbb-dev. CPU only.

    python benchmarks/scan_cpu_mutations.py --out benchmarks/results/scan_cpu_emulation_vm_20261201
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tests package (tests/support/, tests/native/)

from tests.native.test_kernel_cpu import MATRIX  # noqa: E402
from tests.support import native_build  # noqa: E402
from tests.support.scan_float64 import CpuKernel, make_inputs, reference, scaled_error  # noqa: E402

SUITE = ROOT / "tests" / "native" / "test_kernel_cpu.py"
SYNC = "__syncthreads();"
#: name -> (text to find, replacement, which occurrence); each must match.
MUTATIONS = {
    "phase 2: a run's start ignores the runs before it": (
        "if (lane_k >= offset) h[n] = fmaf(mufu_exp2(a[n] * run_dt), left, h[n]);", "", 0),
    "phase 2: the first run keeps its neighbour's state": ("if (lane_k == 0) before = 0.f;", "", 0),
    "phase 2: the carried-in state decays over the wrong run": (
        "mufu_exp2(a[n] * before_dt), carry[n]", "mufu_exp2(a[n] * run_dt), carry[n]", 0),
    "the next tile starts from the first run's state": ("__shfl_sync(kAll, h[n], K - 1, K)",
                                                        "__shfl_sync(kAll, h[n], 0, K)", 0),
    "reverse tile's physical range one step short": ("s.hi = reverse ? L - t0 : end;",
                                                     "s.hi = reverse ? L - t0 - 1 : end;", 0),
    "a run starts one step late": ("const int ls0 = lane_k * steps;", "const int ls0 = lane_k * steps + 1;", 0),
    "16-byte window loads start past the range": ("const int start = tile.lo - skew + w * kVec;",
                                                   "const int start = tile.lo + skew + w * kVec;", 0),
    "__syncthreads() after zeroing shared memory removed": (SYNC, "", 0),
    "__syncthreads() after staging removed": (SYNC, "", 1),
    "__syncthreads() after the recurrence removed": (SYNC, "", 2),
    "__syncthreads() before the next tile removed": (SYNC, "", 3),
}
#: Mutants that are not bugs, and why (the suite is right to pass them).
NOT_BUGS: dict[str, str] = {}


def mutate(source: str, find: str, replace: str, occurrence: int) -> str:
    spans = [m.start() for m in re.finditer(re.escape(find), source)]
    assert len(spans) > occurrence, f"mutation target not found: {find!r}"
    start = spans[occurrence]
    return source[:start] + replace + source[start + len(find):]


def error_figures(cache: Path) -> dict[str, float]:
    kernel = CpuKernel(native_build.cached_cpu_kernel(cache))
    worst: dict[str, float] = {}
    for case in MATRIX:
        tensors = make_inputs(case)
        got = kernel.run(case, tensors)
        key = f"{case.dtype} data, {case.param_dtype} params"
        worst[key] = max(worst.get(key, 0.0), scaled_error(case, got, reference(case, tensors)))
    return worst


def run_suite(source: Path, timeout: int) -> dict[str, object]:
    env = {**os.environ, native_build.ENV_KERNEL: str(source)}
    start = time.perf_counter()
    try:
        out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                              str(SUITE)], capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT)
        tail = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr[-300:]
        if out.returncode < 0:  # the kernel read or wrote out of bounds and took pytest down with it
            tail = f"crashed (signal {-out.returncode}) during the suite"
        return {"failed": out.returncode != 0, "summary": tail, "seconds": round(time.perf_counter() - start, 1)}
    except subprocess.TimeoutExpired:
        return {"failed": True, "summary": f"timed out after {timeout} s (hang)", "seconds": timeout}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write OUT.json and OUT.md")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per mutant suite run")
    args = parser.parse_args()
    reason = native_build.hip_cpu_missing_reason()
    if reason:
        sys.exit(f"error: {reason}")
    original = native_build.KERNEL_SOURCE.read_text()
    with tempfile.TemporaryDirectory(prefix="cvgl-mutants-") as tmp:
        work = Path(tmp)
        errors = error_figures(work / "cache")
        results = {"original kernel": run_suite(native_build.KERNEL_SOURCE, args.timeout)}
        for name, (find, replace, occurrence) in MUTATIONS.items():
            mutant = work / f"mutant{len(results)}.cu"
            mutant.write_text(mutate(original, find, replace, occurrence))
            results[name] = run_suite(mutant, args.timeout)
            print(f"{name}: {results[name]['summary']}", flush=True)
    gxx = subprocess.run(["g++", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    command = " ".join(["python", *sys.argv])
    record = {"command": command, "date": time.strftime("%Y-%m-%d"), "machine": platform.node(),
              "cpu": f"{platform.machine()}, {os.cpu_count()} cores", "python": platform.python_version(),
              "g++": gxx, "cases": len(MATRIX), "max_scaled_error": errors, "suite": results, "not_bugs": NOT_BUGS}
    lines = [f"# CUDA selective-scan kernel under HIP-CPU: parity errors and mutants ({record['date']})", "",
             f"Command: `{command}` (CVGL_HIP_CPU_ROOT, CVGL_HIPIFY_PERL set as .ci/run sets them).",
             f"Machine: {record['cpu']}, no GPU; Python {record['python']}; {gxx}.", "",
             "| kernel | suite result | s |", "|---|---|---:|"]
    lines += [f"| {name} | {r['summary']} | {r['seconds']} |" for name, r in results.items()]
    lines += [""] + [f"- {name}: {why}." for name, why in NOT_BUGS.items()]
    lines += ["", f"Largest error over the suite's {len(MATRIX)}-case matrix, per data and parameter dtype:", "",
              "| data / params | max abs error / max abs reference |", "|---|---:|"]
    lines += [f"| {k} | {v:.2e} |" for k, v in errors.items()]
    print("\n".join(lines))
    if args.out:
        args.out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
        args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
