"""GPU selective-scan benchmark (issue 15): parity, then timing of our CUDA kernel vs mamba-ssm vs chunked.

Run it from the repository root on a CUDA machine (the targets are for H100/H200-class GPUs):

    timeout 480 python benchmarks/scan_gpu.py

(`timeout` only guards against a hung kernel: --budget-s already keeps a normal run short.)

Expected run time on an H100/H200 with the defaults, 1-2 minutes: nvcc build of export/csrc for
the GPU's arch, seconds to 1 min (4 s for sm_90 with nvcc 13.0 on a 2-core VM; cached under
~/.cache/cvgl_edge/torch_extensions, so a second run on the same machine skips it; --library
reuses a built libcvgl_scan.so); start-up (torch, CUDA context, mamba_ssm import) 5-15 s;
parity (48 checks, 36 without mamba_ssm) 5-15 s; timing 24 rows (20 without mamba_ssm) in
10-30 s, most of it making inputs on the host (~1 s per dtype at batch 64). --budget-s (default
420, counted from the start, build included) bounds the timing: a row whose estimated cost
(two probe calls, then warm-up + repeats) would end past it is skipped and named. Rows run in
priority order: fp16 backends, the fp16 split sweep, then fp32. This script was written and
tested without a GPU (tests/bench/test_scan_gpu_script.py runs it on the CPU-built kernel with
stand-ins for torch.cuda); its first GPU run is its first real one.

1. Parity, before any timing. Each backend to be timed, in fp32, fp16 and bf16 storage, forward
   and reverse, with softplus + D + z + delta_bias, at the Vim-S shape (B=1, Dc=768, L=257,
   N=16) and a small odd shape (B=2, Dc=37, L=131, N=13), against the fp32 step loop
   (cvgl_edge.ops.selective_scan_reference) with tests/native/test_gpu.py's tolerances
   (rtol = atol = 2e-4 fp32, 1e-2 fp16, 5e-2 bf16; atol times max(1, max |ref|)); plus the
   native kernel at every forced split (1, 2, 4, 8, 16, 32 lanes per channel) through
   cvgl_selective_scan_forward_split at the Vim-S shape in fp16, both directions. Each timed
   row's first output is checked the same way at its own shape.
2. Timing of the Vim-S scan (Dc=768, L=257, N=16, softplus + D + z + bias, forward) at batch 1
   and 64 (--batches), fp16 and fp32 (--dtypes), for cvgl_cuda (export/csrc through
   cvgl_edge.ops.native_cuda, automatic split), mamba_ssm (selective_scan_fn, when it imports)
   and chunked (cvgl_edge.ops.chunked, vectorised PyTorch on the GPU); `reference` (the step
   loop) on request. Then the split sweep: the native kernel at every forced split (automatic
   run length) at batch 1 and 64 in fp16 (--sweep-batches), beside the split the automatic rule
   picks (cvgl_selective_scan_choose_split with this GPU's SM count, printed), to show whether
   the rule picks the fastest. CUDA events around each call on the current stream: warm-up,
   then median and p90 of --repeats (500; chunked and reference: --slow-repeats, 30). Before
   each call (outside the timed span) a 256 MiB read fills the L2 with clean lines, so inputs
   come from DRAM (--no-flush-l2: warm L2); a spin kernel ahead of the timed calls lets the host
   queue them, so the events time the GPU's work, not the binding's Python overhead (chunked,
   ~100 launches a call, can outrun the queue at batch 1: its gaps then count). `wall us` is the
   host-inclusive time per call of 50 back-to-back calls with a warm L2.
3. Table: backend, dtype, batch, L, split, us per scan (median, p90), wall us, GB/s and % of the
   GPU's peak DRAM bandwidth (cvgl_edge.bench.devices by GPU name, or --peak-gbs), parity, and
   the issue's targets, judged for cvgl_cuda with its automatic split: batch 64 fp16 at >= 70 %
   of peak DRAM bandwidth; batch 1 at <= 8 us per scan (each timed dtype); faster than
   mamba_ssm at the same shape and dtype where mamba_ssm ran, else faster than chunked. Bytes
   per scan = benchmarks/scan_sweep.py:scan_io_bytes: u, delta, z read and out written (B*Dc*L
   each) and B, C read (B*N*L each) at the storage dtype, A (Dc*N), D and delta_bias (Dc) in
   fp32, each once (batch 64 fp16: 102,164,480 bytes; 70 % of an H200's 4800 GB/s = 30.4 us).
4. Writes benchmarks/results/scan_gpu_<gpu>_<YYYYMMDD>.json and .md (_2, _3... when taken; or
   --json PATH and the .md beside it), atomically: GPU, SM count, driver, CUDA (driver, torch),
   torch and nvcc versions, git commit, the exact command, every parity check and the table.

Exit codes: 0 every parity check passed (the targets are reported, not enforced); 1 a parity
failure, an error in a timed call, or cvgl_cuda requested but not built; 2 no CUDA GPU visible
or a bad option (one line on stderr). The table is printed and written in every case but 2.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import math
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for path in (REPO, HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import torch  # noqa: E402

from cvgl_edge import native_tools  # noqa: E402
from cvgl_edge.bench.devices import DEVICES, device_for_gpu_name  # noqa: E402
from cvgl_edge.bench.machine import load_average, machine_info  # noqa: E402
from cvgl_edge.errors import CvglError  # noqa: E402
from cvgl_edge.io import atomic_write, atomic_write_json  # noqa: E402
from cvgl_edge.ops import chunked, cuda_mamba, native_cuda, selective_scan_reference  # noqa: E402
from cvgl_edge.ops.testing import random_scan_inputs  # noqa: E402
from cvgl_edge.timing import percentile  # noqa: E402
from scan_sweep import scan_io_bytes  # noqa: E402

BACKENDS = ("cvgl_cuda", "mamba_ssm", "chunked", "reference")
DEFAULT_BACKENDS = "cvgl_cuda,mamba_ssm,chunked"
SLOW_BACKENDS = ("chunked", "reference")  # many launches per call: fewer repeats
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
SPLITS = (1, 2, 4, 8, 16, 32)
SWEEP_DTYPE = "fp16"
VIM_S = (768, 257, 16)  # channels, length, state size of one Vim-S scan direction
PARITY_SHAPES = ((1, 768, 257, 16), (2, 37, 131, 13))  # (batch, channels, length, nstate)
#: (rtol, atol) per storage dtype, as tests/native/test_gpu.py; atol is scaled by max(1, max |ref|)
TOL = {"fp32": (2e-4, 2e-4), "fp16": (1e-2, 1e-2), "bf16": (5e-2, 5e-2)}
BANDWIDTH_TARGET = 0.70  # batch 64 fp16: fraction of peak DRAM bandwidth
LATENCY_TARGET_US = 8.0  # batch 1: us per scan
WALL_CALLS = 50
FLUSH_BYTES = 256 * 2**20  # read before each timed call: more than any GPU's L2
LEAD_CAP_MS = 500.0
DEVICE = "cuda"  # where inputs live (a test runs main() on the CPU-emulated kernel with "cpu")
ScanFn = Callable[[dict, bool], torch.Tensor]


class OptionError(Exception):
    """A bad command-line option: reported on one line, exit code 2."""


# ----------------------------------------------------------------------------- pure helpers (tested on CPU)
def scan_bytes(batch: int, channels: int, length: int, nstate: int, dtype: str) -> int:
    """Bytes one scan moves at least once (scan_sweep.scan_io_bytes at the storage dtype, params fp32)."""
    return scan_io_bytes(batch, channels, length, nstate, elem_bytes=DTYPES[dtype].itemsize, param_bytes=4)


def achieved_gbs(nbytes: int, median_us: float) -> float:
    return nbytes / (median_us * 1e-6) / 1e9


def compare(got: torch.Tensor, ref: torch.Tensor, dtype: str) -> dict:
    """Elementwise |got - ref| <= atol * max(1, max |ref|) + rtol * |ref| (NaN fails), as the GPU tests."""
    if tuple(got.shape) != tuple(ref.shape):
        return {"ok": False, "max_abs_diff": None, "bad": None,
                "error": f"shape {tuple(got.shape)} != {tuple(ref.shape)}"}
    rtol, atol = TOL[dtype]
    got, ref = got.detach().float(), ref.detach().float()
    scale = max(1.0, ref.abs().max().item()) if ref.numel() else 1.0
    err = (got - ref).abs()
    bad = int((~(err <= atol * scale + rtol * ref.abs())).sum().item())
    worst = err.max().item() if err.numel() else 0.0
    return {"ok": bad == 0, "max_abs_diff": worst if math.isfinite(worst) else None, "bad": bad}


class RowSpec(NamedTuple):
    """One timing row: a backend at one dtype and shape; split = the forced split (sweep rows) or None.

    (NamedTuples, not dataclasses, here: tests load this file without registering it in sys.modules.)
    """

    backend: str
    dtype: str
    batch: int
    length: int
    split: int | None = None

    @property
    def label(self) -> str:
        return self.backend if self.split is None else f"{self.backend} split={self.split}"

    def describe(self) -> str:
        return f"{self.label} {self.dtype} B={self.batch} L={self.length}"


def plan_rows(dtypes: list[str], batches: list[int], lengths: list[int], backends: list[str],
              sweep_batches: list[int]) -> list[RowSpec]:
    """Timing rows in priority order (the budget guard drops from the end): per dtype as given, its
    backends at each length and batch; the fp16 split sweep right after the fp16 rows (at the end when
    fp16 is not timed). No sweep without cvgl_cuda."""
    sweep = [RowSpec("cvgl_cuda", SWEEP_DTYPE, b, VIM_S[1], k) for b in sweep_batches for k in SPLITS] \
        if "cvgl_cuda" in backends else []
    rows: list[RowSpec] = []
    for dtype in dtypes:
        rows += [RowSpec(name, dtype, b, n) for n in lengths for b in batches for name in backends]
        if dtype == SWEEP_DTYPE:
            rows += sweep
            sweep = []
    return rows + sweep


def row_estimate_s(per_call_s: float, warmup: int, repeats: int, per_repeat_extra_s: float = 0.0,
                   fixed_s: float = 0.0) -> float:
    """Wall time a timing row will take: warm-up and repeats at the probed per-call time (plus the
    L2 flush per call), plus fixed costs (the spin lead, the back-to-back wall-time calls)."""
    return (warmup + repeats) * (per_call_s + per_repeat_extra_s) + fixed_s


class Budget:
    """Seconds since the script started against --budget-s; remembers what it skipped and why."""

    def __init__(self, budget_s: float, clock: Callable[[], float] = time.monotonic, start: float | None = None):
        self.budget_s = budget_s
        self.clock = clock
        self.start = clock() if start is None else start
        self.skipped: list[dict] = []

    def elapsed(self) -> float:
        return self.clock() - self.start

    def remaining(self) -> float:
        return self.budget_s - self.elapsed()

    def allows(self, estimate_s: float) -> bool:
        return self.elapsed() + estimate_s <= self.budget_s

    def skip(self, what: str, estimate_s: float | None = None) -> dict:
        need = "" if estimate_s is None else f"needs ~{estimate_s:.1f} s, "
        entry = {"row": what, "reason": f"budget: {need}{max(self.remaining(), 0.0):.1f} s of "
                                        f"--budget-s {self.budget_s:g} left"}
        self.skipped.append(entry)
        return entry


def is_vim_s(row: dict) -> bool:
    return (row["channels"], row["length"], row["nstate"]) == VIM_S


def target_checks(row: dict, rows: Iterable[dict]) -> list[dict]:
    """The issue's targets that apply to a measured row (only cvgl_cuda with its automatic split):
    each {"target", "ok" (True, False, or None when it cannot be judged), "detail"}."""
    if row["backend"] != "cvgl_cuda" or row.get("split_forced") or row.get("median_us") is None:
        return []
    checks = []
    us = row["median_us"]
    if is_vim_s(row) and row["batch"] == 64 and row["dtype"] == "fp16":
        frac = row.get("fraction_of_peak")
        checks.append({"target": f">= {BANDWIDTH_TARGET:.0%} of peak DRAM bandwidth",
                       "ok": None if frac is None else frac >= BANDWIDTH_TARGET,
                       "detail": "peak bandwidth unknown: pass --peak-gbs" if frac is None
                       else f"{frac:.1%} ({row['achieved_gbs']:.0f} GB/s)"})
    if is_vim_s(row) and row["batch"] == 1:
        checks.append({"target": f"<= {LATENCY_TARGET_US:g} us per scan", "ok": us <= LATENCY_TARGET_US,
                       "detail": f"{us:.2f} us"})
    key = ("dtype", "batch", "channels", "length", "nstate")
    peers = {r["backend"]: r for r in rows if r["backend"] in ("mamba_ssm", "chunked")
             and r.get("median_us") is not None and all(r[k] == row[k] for k in key)}
    rival = peers.get("mamba_ssm") or peers.get("chunked")
    if rival is not None:
        checks.append({"target": f"faster than {rival['backend']}", "ok": us < rival["median_us"],
                       "detail": f"{us:.2f} vs {rival['median_us']:.2f} us"})
    return checks


def verdict(checks: list[dict]) -> str:
    """PASS, FAIL (naming what failed), ? (something could not be judged) or - (no target applies)."""
    if not checks:
        return "-"
    failed = [c for c in checks if c["ok"] is False]
    if failed:
        return "FAIL: " + "; ".join(f"{c['target']} ({c['detail']})" for c in failed)
    unknown = [c for c in checks if c["ok"] is None]
    if unknown:
        return "?: " + "; ".join(f"{c['target']} ({c['detail']})" for c in unknown)
    return "PASS"


def split_summary(rows: list[dict], batch: int, auto_split: int | None) -> dict | None:
    """The forced-split rows at one batch: the fastest split against the automatic choice."""
    sweep = [r for r in rows if r.get("split_forced") and r["batch"] == batch and r.get("median_us") is not None]
    if not sweep:
        return None
    best = min(sweep, key=lambda r: r["median_us"])
    auto = next((r for r in sweep if r["split"] == auto_split), None)
    summary = {"batch": batch, "auto_split": auto_split, "best_split": best["split"],
               "best_us": best["median_us"], "auto_us": None if auto is None else auto["median_us"],
               "auto_over_best": None if auto is None else round(auto["median_us"] / best["median_us"], 3)}
    summary["auto_is_best"] = auto is not None and auto["split"] == best["split"]
    return summary


def describe_check(c: dict) -> str:
    """One parity check on one line: what ran, and how it failed."""
    split = "" if c["split"] is None else f" split={c['split']}"
    what = c.get("error") or f"{c['bad']} elements off, max |diff| {c['max_abs_diff']}"
    return f"{c['backend']}{split} {c['dtype']} shape {c['shape']} {'reverse' if c['reverse'] else 'forward'}: {what}"


def exit_code(parity: list[dict], rows: list[dict], errors: list[str]) -> int:
    """1 when any parity check or timed output failed or something errored, else 0 (targets do not count)."""
    if errors or any(not c["ok"] for c in parity) or any(r.get("parity_ok") is False for r in rows):
        return 1
    return 0


def gpu_slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "gpu"


def result_paths(results: Path, gpu_name: str, day: dt.date) -> tuple[Path, Path]:
    """results/scan_gpu_<gpu>_<YYYYMMDD>.json and .md; _2, _3... when either exists (a rerun keeps both)."""
    stem = f"scan_gpu_{gpu_slug(gpu_name)}_{day:%Y%m%d}"
    for n in range(1, 1000):
        base = results / (stem if n == 1 else f"{stem}_{n}")
        if not base.with_suffix(".json").exists() and not base.with_suffix(".md").exists():
            return base.with_suffix(".json"), base.with_suffix(".md")
    raise CvglError(f"too many results named {stem} in {results}")


# ----------------------------------------------------------------------------- options
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        raise OptionError(message)


def _names(text: str, allowed: Iterable[str], option: str) -> list[str]:
    allowed = list(allowed)
    names = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in names if x not in allowed]
    if bad or not names:
        raise OptionError(f"{option}: {','.join(bad) or 'empty'} is not a subset of {','.join(allowed)}")
    return list(dict.fromkeys(names))


def _ints(text: str, option: str, allow_empty: bool = False) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise OptionError(f"{option}: expected comma-separated positive integers, got {text!r}") from None
    if any(v < 1 for v in values) or (not values and not allow_empty):
        raise OptionError(f"{option}: expected comma-separated positive integers, got {text!r}")
    return list(dict.fromkeys(values))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = _Parser(prog="scan_gpu", description=__doc__.splitlines()[0])
    parser.add_argument("--dtypes", default="fp16,fp32", help=f"timed dtypes, subset of {','.join(DTYPES)}")
    parser.add_argument("--batches", default="1,64", help="timed batch sizes (Vim-S: Dc 768, N 16)")
    parser.add_argument("--lengths", default=str(VIM_S[1]), help="timed sequence lengths (257 = Vim-S)")
    parser.add_argument("--backends", default=DEFAULT_BACKENDS, help=f"subset of {','.join(BACKENDS)}")
    parser.add_argument("--sweep-batches", default="1,64",
                        help="batches of the fp16 split sweep of cvgl_cuda ('' for none)")
    parser.add_argument("--repeats", type=int, default=500, help="timed calls per row")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--slow-repeats", type=int, default=30, help="timed calls per chunked / reference row")
    parser.add_argument("--slow-warmup", type=int, default=3)
    parser.add_argument("--budget-s", type=float, default=420.0,
                        help="skip timing rows that would end past this many seconds from the start")
    parser.add_argument("--no-flush-l2", action="store_true", help="time with a warm L2 (no flush per call)")
    parser.add_argument("--peak-gbs", type=float, default=None,
                        help="peak DRAM bandwidth in GB/s (default: the device table by GPU name)")
    parser.add_argument("--device", default=None, choices=sorted(DEVICES), help="device-table row for the peak")
    parser.add_argument("--library", type=Path, default=None, help="a built libcvgl_scan.so (skips nvcc)")
    parser.add_argument("--json", type=Path, default=None,
                        help="output JSON (default benchmarks/results/scan_gpu_<gpu>_<date>.json); .md beside")
    args = parser.parse_args(argv)
    args.dtypes = _names(args.dtypes, DTYPES, "--dtypes")
    args.backends = _names(args.backends, BACKENDS, "--backends")
    args.batches = _ints(args.batches, "--batches")
    args.lengths = _ints(args.lengths, "--lengths")
    args.sweep_batches = _ints(args.sweep_batches, "--sweep-batches", allow_empty=True)
    for name in ("repeats", "slow_repeats"):
        if getattr(args, name) < 1:
            raise OptionError(f"--{name.replace('_', '-')} must be >= 1")
    for name in ("warmup", "slow_warmup"):
        if getattr(args, name) < 0:
            raise OptionError(f"--{name.replace('_', '-')} must be >= 0")
    if not args.budget_s > 0:
        raise OptionError("--budget-s must be > 0")
    if args.peak_gbs is not None and not args.peak_gbs > 0:
        raise OptionError("--peak-gbs must be > 0")
    if args.library is not None and not args.library.is_file():
        raise OptionError(f"--library {args.library}: no such file")
    return args


# ----------------------------------------------------------------------------- the native kernel's split entry points
class SplitScan:
    """The native kernel at a forced split: scans prepared once and launched many times (timing)."""

    def __init__(self, native: native_cuda.NativeScan) -> None:
        self.native = native

    def choose(self, batch: int, dim: int, seqlen: int, sm_count: int) -> int:
        return self.native.choose_split(batch, dim, seqlen, sm_count)

    def prepare(self, x: dict, *, split: int, steps: int = 0, softplus: bool = True,
                reverse: bool = False) -> Callable[[], torch.Tensor]:
        """A launcher of the scan of ``x`` at this split: parameters built once, one output tensor reused."""
        scan = self.native.prepare(x["u"], x["delta"], x["A"], x["B"], x["C"], x["D"], x["z"], x["delta_bias"],
                                   softplus, reverse)
        stream = self.native.launcher.stream(scan.out.device)

        def launch() -> torch.Tensor:
            rc = self.native.forward_split_raw(scan.params, stream, split, steps)
            self.native.launcher.after(self.native.lib)
            if rc != 0:
                raise CvglError(f"split {split} steps {steps}: {self.native.error_string(rc)} (code {rc})")
            return scan.out

        return launch


# ----------------------------------------------------------------------------- GPU measurement
def cuda_events_ms(fn: Callable[[], object], warmup: int, repeats: int, before: Callable[[], object] | None = None,
                   lead_cycles: int = 0) -> list[float]:
    """Per-call GPU time from CUDA events recorded on the current stream.

    ``before`` runs ahead of each call outside the timed span (the L2 flush). ``lead_cycles``: a spin
    kernel enqueued ahead of the timed calls, so the host queues them while the GPU waits and the
    events time the GPU's work, not the host's launch overhead.
    """
    for _ in range(warmup):
        if before is not None:
            before()
        fn()
    torch.cuda.synchronize()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(repeats)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(repeats)]
    if lead_cycles > 0:
        torch.cuda._sleep(lead_cycles)
    for start, end in zip(starts, ends):
        if before is not None:
            before()
        start.record()
        fn()
        end.record()
    torch.cuda.synchronize()
    return [start.elapsed_time(end) for start, end in zip(starts, ends)]


def spin_cycles_per_ms() -> float | None:
    """Clock cycles of torch.cuda._sleep per millisecond on this GPU (None where _sleep is missing)."""
    if not hasattr(torch.cuda, "_sleep"):
        return None
    torch.cuda._sleep(1000)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    torch.cuda._sleep(4_000_000)
    end.record()
    torch.cuda.synchronize()
    ms = start.elapsed_time(end)
    return 4_000_000 / ms if ms > 0 else None


def wall_us_per_call(fn: Callable[[], object], calls: int) -> float:
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / calls * 1e6


def fp32_reference(x: dict, reverse: bool) -> torch.Tensor:
    with torch.no_grad():
        return selective_scan_reference(**{k: None if v is None else v.float() for k, v in x.items()},
                                        delta_softplus=True, reverse=reverse)


def _err(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:300] if lines else ''}"


def load_native(library: Path | None) -> tuple[native_cuda.NativeScan, float]:
    """The kernel library (built with nvcc for the visible GPU unless given) and the seconds it took."""
    start = time.monotonic()
    if library is None:
        nvcc = native_tools.find_nvcc()
        if nvcc is None:
            raise RuntimeError("nvcc not found (PATH, $CUDA_HOME/bin, /usr/local/cuda/bin); or pass --library")
        library = native_cuda.cached_library(nvcc, native_cuda.gpu_archs())
    native = native_cuda.NativeScan(library)
    native.probe(torch.device("cuda", torch.cuda.current_device()))
    return native, time.monotonic() - start


def backend_fns(wanted: list[str], native: native_cuda.NativeScan | None) -> tuple[dict[str, ScanFn], dict[str, str]]:
    """Callables (inputs, reverse) -> output, and a reason for each wanted backend that cannot run."""
    fns: dict[str, ScanFn] = {}
    skipped: dict[str, str] = {}
    if "cvgl_cuda" in wanted and native is not None:
        fns["cvgl_cuda"] = lambda x, rev: native(**x, delta_softplus=True, reverse=rev)
    if "mamba_ssm" in wanted:
        if cuda_mamba.scan_fn() is None:
            skipped["mamba_ssm"] = "mamba_ssm not importable (pip install mamba-ssm builds it for this GPU)"
        else:
            fns["mamba_ssm"] = lambda x, rev: cuda_mamba.forward(x["u"], x["delta"], x["A"], x["B"], x["C"], x["D"],
                                                                 x["z"], x["delta_bias"], True, rev)
    if "chunked" in wanted:
        fns["chunked"] = lambda x, rev: chunked.forward(x["u"], x["delta"], x["A"], x["B"], x["C"], x["D"], x["z"],
                                                        x["delta_bias"], True, rev)
    if "reference" in wanted:
        fns["reference"] = lambda x, rev: selective_scan_reference(**x, delta_softplus=True, reverse=rev)
    return fns, skipped


def run_parity(fns: dict[str, ScanFn], split_scan: SplitScan | None, checks: list[dict]) -> list[dict]:
    """Every backend x fp32/fp16/bf16 x both directions at PARITY_SHAPES, and every forced split (fp16, Vim-S),
    appended to ``checks`` as they run (what ran is kept if something outside a check raises)."""

    def check(backend: str, split: int | None, dtype: str, shape: tuple, reverse: bool, call, ref) -> None:
        try:
            with torch.no_grad():
                got = call()
            torch.cuda.synchronize()
            result = compare(got, ref, dtype)
        except Exception as exc:  # a crash is a parity failure, reported with the others
            result = {"ok": False, "max_abs_diff": None, "bad": None, "error": _err(exc)}
        checks.append({"backend": backend, "split": split, "dtype": dtype, "shape": list(shape),
                       "reverse": reverse, **result})
        if not result["ok"]:
            print(f"  PARITY FAIL {describe_check(checks[-1])}", flush=True)

    for dtype in DTYPES:
        for shape in PARITY_SHAPES:
            x = random_scan_inputs(*shape, dtype=DTYPES[dtype], device=DEVICE, seed=7)
            for reverse in (False, True):
                ref = fp32_reference(x, reverse)
                for name, fn in fns.items():
                    check(name, None, dtype, shape, reverse, lambda: fn(x, reverse), ref)
                if split_scan is not None and dtype == SWEEP_DTYPE and shape == PARITY_SHAPES[0]:
                    for split in SPLITS:
                        check("cvgl_cuda", split, dtype, shape, reverse,
                              split_scan.prepare(x, split=split, reverse=reverse), ref)
    return checks


class Case(NamedTuple):
    inputs: dict
    reference: torch.Tensor
    nbytes: int


class Timer:
    """What every timing row shares: repeats, the L2 flush, the spin lead, the peak and the budget."""

    def __init__(self, args: argparse.Namespace, budget: Budget, peak_gbs: float | None,
                 cycles_per_ms: float | None, flush: Callable[[], object] | None, flush_s: float) -> None:
        self.args, self.budget, self.peak_gbs = args, budget, peak_gbs
        self.cycles_per_ms, self.flush, self.flush_s = cycles_per_ms, flush, flush_s
        self.cases: dict[tuple, Case] = {}

    def case(self, spec: RowSpec) -> Case:
        key = (spec.dtype, spec.batch, spec.length)
        if key not in self.cases:
            channels, _, nstate = VIM_S
            x = random_scan_inputs(spec.batch, channels, spec.length, nstate, dtype=DTYPES[spec.dtype],
                                   device=DEVICE, seed=0)
            self.cases[key] = Case(x, fp32_reference(x, False),
                                   scan_bytes(spec.batch, channels, spec.length, nstate, spec.dtype))
        return self.cases[key]

    def run(self, spec: RowSpec, call: Callable[[], torch.Tensor], parity_ok: bool | None, auto_split: int | None) -> dict:
        """Probe (and check) the call, skip it if it would pass the budget, else time it."""
        slow = spec.backend in SLOW_BACKENDS
        warmup = min(self.args.slow_warmup, self.args.warmup) if slow else self.args.warmup
        repeats = min(self.args.slow_repeats, self.args.repeats) if slow else self.args.repeats
        case = self.case(spec)
        with torch.no_grad():
            diff = compare(call(), case.reference, spec.dtype)  # first call: allocations, lazy init
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            call()
            host_s = time.perf_counter() - t0  # enqueue time of one call
            torch.cuda.synchronize()
            per_call_s = time.perf_counter() - t0
            lead_ms = min(LEAD_CAP_MS, 1.0 + 1.25 * repeats * (host_s * 1e3 + 0.02)) if self.cycles_per_ms else 0.0
            estimate = row_estimate_s(per_call_s, warmup, repeats, self.flush_s,
                                      lead_ms / 1e3 + WALL_CALLS * per_call_s)
            if not self.budget.allows(estimate):
                return {"skipped": self.budget.skip(spec.describe(), estimate)}
            times = cuda_events_ms(call, warmup, repeats, before=self.flush,
                                   lead_cycles=int(lead_ms * (self.cycles_per_ms or 0)))
            wall_us = wall_us_per_call(call, WALL_CALLS)
        median_us, p90_us = percentile(times, 50) * 1e3, percentile(times, 90) * 1e3
        gbs = achieved_gbs(case.nbytes, median_us)
        channels, _, nstate = VIM_S
        return {
            "backend": spec.backend, "label": spec.label, "dtype": spec.dtype, "batch": spec.batch,
            "channels": channels, "length": spec.length, "nstate": nstate,
            "split": spec.split if spec.split is not None else auto_split, "split_forced": spec.split is not None,
            "split_is_auto": auto_split is not None and (spec.split is None or spec.split == auto_split),
            "warmup": warmup, "repeats": repeats, "bytes_moved": case.nbytes,
            "median_us": round(median_us, 3), "p90_us": round(p90_us, 3), "min_us": round(min(times) * 1e3, 3),
            "median_ms": round(median_us / 1e3, 6), "p90_ms": round(p90_us / 1e3, 6),
            "achieved_gbs": round(gbs, 1),
            "fraction_of_peak": round(gbs / self.peak_gbs, 4) if self.peak_gbs else None,
            "wall_us_per_call": round(wall_us, 2),
            "max_abs_diff_vs_fp32_reference": diff["max_abs_diff"],
            "parity_ok": diff["ok"] and parity_ok is not False,
            "parity_detail": "ok" if diff["ok"] and parity_ok is not False else
            ("parity phase failed" if parity_ok is False else f"{diff.get('bad')} elements off at this shape"),
        }


# ----------------------------------------------------------------------------- machine facts
def _run_text(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def cuda_driver_api_version() -> str | None:
    """cuDriverGetVersion of libcuda (the CUDA version the driver supports), e.g. "12.4"."""
    try:
        lib = ctypes.CDLL("libcuda.so.1")
        version = ctypes.c_int()
        if lib.cuDriverGetVersion(ctypes.byref(version)) != 0:
            return None
    except OSError:
        return None
    return f"{version.value // 1000}.{version.value % 1000 // 10}"


def gpu_facts() -> dict:
    props = torch.cuda.get_device_properties(0)
    smi = _run_text(["nvidia-smi", "-i", "0", "--query-gpu=driver_version,clocks.max.sm,clocks.max.mem",
                     "--format=csv,noheader"])
    nvcc = native_tools.find_nvcc()
    nvcc_text = native_tools.nvcc_version_text(nvcc) if nvcc else ""
    return {
        "name": props.name, "compute_capability": f"{props.major}.{props.minor}",
        "sm_count": props.multi_processor_count, "memory_gib": round(props.total_memory / 2**30, 1),
        "l2_bytes": getattr(props, "L2_cache_size", None),
        "driver": smi.split(",")[0].strip() if smi else None,
        "nvidia_smi_driver_max_sm_mem_clocks": smi,
        "driver_cuda_api": cuda_driver_api_version(),
        "torch": torch.__version__, "torch_cuda": torch.version.cuda,
        "nvcc": next((ln.strip() for ln in nvcc_text.splitlines() if "release" in ln), nvcc_text or None),
        "git": _run_text(["git", "-C", str(REPO), "describe", "--always", "--dirty", "--abbrev=12"]),
    }


# ----------------------------------------------------------------------------- report
def _us(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def split_cell(row: dict) -> str:
    """The split column: "auto = K" for the automatic row, "K" or "K = auto" for the sweep's forced splits."""
    if row["split"] is None:
        return "-"
    if not row["split_forced"]:
        return f"auto = {row['split']}"
    return f"{row['split']}{' = auto' if row['split_is_auto'] else ''}"


def markdown(report: dict) -> str:
    g, m = report["gpu"], report["machine"]
    peak = report["peak_gbs"]
    lines = [
        f"# GPU selective-scan benchmark ({report['date']})",
        "",
        f"- Command: `{report['command']}`",
        f"- GPU: {g['name']} (sm_{g['compute_capability'].replace('.', '')}, {g['sm_count']} SMs, "
        f"{g['memory_gib']} GiB); driver {g['driver']} (CUDA {g['driver_cuda_api']}); torch {g['torch']} "
        f"(CUDA {g['torch_cuda']}); nvcc: {g['nvcc']}; git {g['git']}; host `{m.get('host')}`",
        f"- Peak DRAM bandwidth for % of peak: {peak if peak else 'unknown'} GB/s ({report['peak_source']})",
        f"- Timing: CUDA events per call, {'L2 flushed before each call' if report['flush_l2'] else 'warm L2'}, "
        f"spin lead {'on' if report['spin_lead'] else 'off'}; warm-up/repeats {report['warmup']}/{report['repeats']} "
        f"(chunked, reference: {report['slow_warmup']}/{report['slow_repeats']}); forward, softplus + D + z + "
        f"delta_bias. `wall us`: host-inclusive, {WALL_CALLS} back-to-back calls, warm L2.",
        "- Bytes per scan: u, delta, z, out (B*Dc*L) and B, C (B*N*L) at the storage dtype, A, D, "
        "delta_bias fp32 (scan_sweep.scan_io_bytes); GB/s = bytes / median.",
        f"- Kernel build {'-' if report['build_s'] is None else report['build_s']} s; total {report['total_s']} s of --budget-s {report['budget_s']:g}.",
        "- Backends not run: " + ("; ".join(f"{k} ({v})" for k, v in report["skipped_backends"].items()) or "none"),
        "",
        "| backend | dtype | B | L | split | median us | p90 us | wall us | GB/s | % peak | parity | targets |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in report["rows"]:
        frac = "-" if r["fraction_of_peak"] is None else f"{r['fraction_of_peak']:.1%}"
        parity = "ok" if r["parity_ok"] else f"FAIL ({r['parity_detail']})"
        lines.append(f"| {r['backend']} | {r['dtype']} | {r['batch']} | {r['length']} | {split_cell(r)} | "
                     f"{_us(r['median_us'])} | {_us(r['p90_us'])} | {_us(r['wall_us_per_call'])} | "
                     f"{r['achieved_gbs']:.0f} | {frac} | {parity} | {r['verdict']} |")
    lines += ["", "## Targets (cvgl_cuda, automatic split)", ""]
    judged = [(r, c) for r in report["rows"] for c in r["targets"]]
    lines += [f"- {'PASS' if c['ok'] else 'FAIL' if c['ok'] is False else '?'}: {c['target']} "
              f"({r['dtype']} B={r['batch']} L={r['length']}): {c['detail']}" for r, c in judged] or ["- none measured"]
    lines += ["", "## Split sweep (cvgl_cuda, fp16, Vim-S)", ""]
    for s in report["split_sweep"]:
        auto = "not measured" if s["auto_us"] is None else f"{s['auto_us']:.2f} us"
        lines.append(f"- B={s['batch']}: automatic rule picks split {s['auto_split']} ({auto}); fastest split "
                     f"{s['best_split']} ({s['best_us']:.2f} us)"
                     + ("" if s["auto_over_best"] is None else f"; automatic / fastest = {s['auto_over_best']:.3f}"))
    if not report["split_sweep"]:
        lines.append("- not run")
    failed = [c for c in report["parity"] if not c["ok"]]
    lines += ["", f"## Parity: {len(report['parity']) - len(failed)} of {len(report['parity'])} checks passed", ""]
    lines += [f"- FAIL {describe_check(c)}" for c in failed]
    if report["skipped_rows"] or report["errors"]:
        lines += ["", "## Not measured", ""]
        lines += [f"- {s['row']}: {s['reason']}" for s in report["skipped_rows"]]
        lines += [f"- error: {e}" for e in report["errors"]]
    return "\n".join(lines) + "\n"


def group_cases(rows: list[dict]) -> list[dict]:
    """The rows by (dtype, shape): {"shape", "dtype", "bytes_moved", "results": {label: row}}."""
    cases: dict[tuple, dict] = {}
    for r in rows:
        key = (r["dtype"], r["batch"], r["channels"], r["length"], r["nstate"])
        case = cases.setdefault(key, {"shape": {"batch": r["batch"], "channels": r["channels"],
                                                "length": r["length"], "nstate": r["nstate"]},
                                      "dtype": r["dtype"], "bytes_moved": r["bytes_moved"], "results": {}})
        case["results"][r["label"]] = r
    return list(cases.values())


def write_report(report: dict, json_path: Path, md_path: Path) -> None:
    atomic_write_json(report, json_path)
    text = markdown(report)
    atomic_write(md_path, lambda tmp: tmp.write_text(text))


def print_table(report: dict) -> None:
    print()
    print(f"{'backend':10s} {'dtype':5s} {'B':>3s} {'L':>5s} {'split':>9s} {'med us':>9s} {'p90 us':>9s} "
          f"{'wall us':>8s} {'GB/s':>7s} {'%peak':>6s} {'parity':6s} targets")
    for r in report["rows"]:
        frac = "-" if r["fraction_of_peak"] is None else f"{r['fraction_of_peak']:.1%}"
        print(f"{r['backend']:10s} {r['dtype']:5s} {r['batch']:3d} {r['length']:5d} {split_cell(r):>9s} "
              f"{r['median_us']:9.2f} {r['p90_us']:9.2f} {r['wall_us_per_call']:8.1f} {r['achieved_gbs']:7.0f} "
              f"{frac:>6s} {'ok' if r['parity_ok'] else 'FAIL':6s} {r['verdict']}")
    for s in report["split_sweep"]:
        print(f"split sweep B={s['batch']}: automatic {s['auto_split']} ({_us(s['auto_us'])} us), "
              f"fastest {s['best_split']} ({s['best_us']:.2f} us)")
    for s in report["skipped_rows"]:
        print(f"skipped {s['row']}: {s['reason']}")


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    budget = Budget(float("inf"))  # the clock starts now; the limit is set once the options are read
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parse_args(argv)
    except OptionError as exc:
        print(f"scan_gpu: error: {exc}", file=sys.stderr)
        return 2
    budget.budget_s = args.budget_s
    if not torch.cuda.is_available():
        print("scan_gpu: no CUDA GPU visible (torch.cuda.is_available() is False); run it on a CUDA "
              "machine (the CPU sweep is benchmarks/scan_sweep.py)", file=sys.stderr)
        return 2

    gpu = gpu_facts()
    key = args.device or device_for_gpu_name(gpu["name"])
    peak = args.peak_gbs or (DEVICES[key]["mem_bandwidth_gbs"] if key else None)
    peak_source = "--peak-gbs" if args.peak_gbs else (f"device table: {key}" if key else "unknown GPU")
    print(f"{gpu['name']}: {gpu['sm_count']} SMs, peak {peak or '?'} GB/s ({peak_source}); driver {gpu['driver']}, "
          f"torch {gpu['torch']} (CUDA {gpu['torch_cuda']}), {gpu['nvcc']}", flush=True)

    errors: list[str] = []
    native, split_scan, build_s = None, None, None
    skipped_backends: dict[str, str] = {}
    if "cvgl_cuda" in args.backends:
        print("building the kernel (nvcc; cached after the first run)..." if args.library is None
              else f"loading {args.library}", flush=True)
        try:
            native, build_s = load_native(args.library)
            split_scan = SplitScan(native)
            print(f"  kernel ready in {build_s:.1f} s: {native.path}", flush=True)
        except Exception as exc:  # nvcc missing, compile error, driver too old: report, time the others
            skipped_backends["cvgl_cuda"] = _err(exc)
            errors.append(f"cvgl_cuda not built: {_err(exc)}")
    fns, reasons = backend_fns(args.backends, native)
    skipped_backends.update(reasons)
    for name, reason in skipped_backends.items():
        print(f"skipping {name}: {reason}", flush=True)

    print(f"parity ({', '.join(fns)}{' + every split' if split_scan else ''}; fp32, fp16, bf16; both directions)...",
          flush=True)
    parity: list[dict] = []
    try:
        run_parity(fns, split_scan, parity)
    except Exception as exc:  # outside a check (a CUDA fault poisons the context): report what ran
        errors.append(f"parity stopped: {_err(exc)}")
    print(f"  {sum(c['ok'] for c in parity)} of {len(parity)} checks passed ({budget.elapsed():.0f} s so far)",
          flush=True)
    timing = {"rows": [], "auto": {}, "sm_count": None, "flush_l2": False, "spin_lead": False}
    try:
        run_timing(args, fns, split_scan, parity, budget, peak, errors, timing)
    except Exception as exc:
        errors.append(f"timing stopped: {_err(exc)}")
        print(f"  ERROR timing stopped: {_err(exc)}", flush=True)
    rows, auto, sm_count = timing["rows"], timing["auto"], timing["sm_count"]
    for row in rows:
        row["targets"] = target_checks(row, rows)
        row["verdict"] = verdict(row["targets"])
    sweep = [s for s in (split_summary(rows, b, auto.get((b, VIM_S[1]))) for b in args.sweep_batches) if s]

    command = shlex.join(["python", "benchmarks/scan_gpu.py", *argv])
    report = {
        "benchmark": "scan_gpu", "date": dt.datetime.now().isoformat(timespec="seconds"), "command": command,
        "python_executable": sys.executable, "cwd": str(Path.cwd()),
        "gpu": gpu, "machine": machine_info(), "load_average": load_average(),
        "peak_gbs": peak, "peak_source": peak_source, "flush_l2": timing["flush_l2"],
        "spin_lead": timing["spin_lead"], "warmup": args.warmup, "repeats": args.repeats,
        "slow_warmup": args.slow_warmup, "slow_repeats": args.slow_repeats, "budget_s": args.budget_s,
        "build_s": None if build_s is None else round(build_s, 1), "total_s": round(budget.elapsed(), 1),
        "auto_split": [{"batch": b, "length": n, "sm_count": sm_count, "split": k} for (b, n), k in sorted(auto.items())],
        "tolerances": TOL, "targets": {"bandwidth_fraction_b64_fp16": BANDWIDTH_TARGET,
                                       "latency_us_b1": LATENCY_TARGET_US},
        "skipped_backends": skipped_backends, "skipped_rows": budget.skipped, "errors": errors,
        "parity": parity, "rows": rows, "split_sweep": sweep, "cases": group_cases(rows),
    }
    if args.json is not None:
        json_path, md_path = args.json, args.json.with_suffix(".md")
    else:
        json_path, md_path = result_paths(REPO / "benchmarks" / "results", gpu["name"], dt.date.today())
    print_table(report)
    write_report(report, json_path, md_path)
    code = exit_code(parity, rows, errors)
    print(f"wrote {json_path} and {md_path} ({report['total_s']} s); exit {code}"
          + ("" if code == 0 else ": parity failures or errors above"))
    return code


def run_timing(args: argparse.Namespace, fns: dict[str, ScanFn], split_scan: SplitScan | None, parity: list[dict],
               budget: Budget, peak: float | None, errors: list[str], out: dict) -> None:
    """The timing rows in priority order, into ``out`` as they finish (kept if something raises)."""

    def phase_ok(backend: str, dtype: str, split: int | None) -> bool | None:
        mine = [c for c in parity if c["backend"] == backend and c["dtype"] == dtype and c["split"] == split]
        return None if not mine else all(c["ok"] for c in mine)

    sm_count = out["sm_count"] = torch.cuda.get_device_properties(0).multi_processor_count
    auto = out["auto"]
    if split_scan is not None:
        for b in sorted(set(args.batches) | set(args.sweep_batches)):
            for n in args.lengths + [VIM_S[1]]:
                auto[(b, n)] = split_scan.choose(b, VIM_S[0], n, sm_count)
        print("automatic split (cvgl_selective_scan_choose_split, "
              f"{sm_count} SMs): " + ", ".join(f"B={b} L={n}: {k}" for (b, n), k in sorted(auto.items())), flush=True)

    flush = None
    flush_s = 0.0
    if not args.no_flush_l2:
        # a read, not a write: the L2 ends up full of clean lines, so no write-back of the flush's own
        # dirty lines lands inside the timed call (a zero_() flush would add up to an L2 of writes to it)
        scratch = torch.zeros(FLUSH_BYTES // 4, dtype=torch.int32, device=DEVICE)
        flush = scratch.sum
        flush_times = cuda_events_ms(flush, 2, 10)
        flush_s = percentile(flush_times, 50) / 1e3
    timer = Timer(args, budget, peak, spin_cycles_per_ms(), flush, flush_s)
    out["flush_l2"], out["spin_lead"] = flush is not None, timer.cycles_per_ms is not None

    rows = out["rows"]
    specs = plan_rows(args.dtypes, args.batches, args.lengths, list(fns), args.sweep_batches if split_scan else [])
    print(f"timing {len(specs)} rows (budget {args.budget_s:g} s, {budget.elapsed():.0f} s used)...", flush=True)
    for spec in specs:
        auto_split = auto.get((spec.batch, spec.length)) if spec.backend == "cvgl_cuda" else None
        if budget.remaining() <= 0:
            print(f"  skipped {spec.describe()}: {budget.skip(spec.describe())['reason']}", flush=True)
            continue
        try:
            case = timer.case(spec)
            if spec.split is None:
                fn = fns[spec.backend]
                call = (lambda fn=fn, x=case.inputs: fn(x, False))
                parity_ok = phase_ok(spec.backend, spec.dtype, None)
            else:
                call = split_scan.prepare(case.inputs, split=spec.split)
                parity_ok = phase_ok("cvgl_cuda", spec.dtype, spec.split)
            row = timer.run(spec, call, parity_ok, auto_split)
        except Exception as exc:  # report and go on; a CUDA fault will fail the rows after it too
            errors.append(f"{spec.describe()}: {_err(exc)}")
            print(f"  ERROR {spec.describe()}: {_err(exc)}", flush=True)
            continue
        if "skipped" in row:
            print(f"  skipped {spec.describe()}: {row['skipped']['reason']}", flush=True)
            continue
        rows.append(row)
        frac = "" if row["fraction_of_peak"] is None else f" {row['fraction_of_peak']:6.1%}"
        print(f"  {spec.describe():34s} {row['median_us']:9.2f} us (p90 {row['p90_us']:.2f}) "
              f"{row['achieved_gbs']:7.0f} GB/s{frac}{'' if row['parity_ok'] else '  PARITY FAIL'}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
