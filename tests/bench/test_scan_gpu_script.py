"""benchmarks/scan_gpu.py without a GPU: the bytes formula (worked by hand), the parity comparison, the
issue-15 target verdicts, the row plan and budget guard, the option and no-GPU exits (in a subprocess),
the split entry points on the CPU-built kernel, and main() end to end on a stand-in for torch.cuda.

The end-to-end runs replace torch.cuda's events, synchronisation and device queries with host-side
stand-ins and keep the tensors on the CPU: the timings mean nothing, everything else (parity checks,
row order, skips, targets, the table, the files, the exit code) is the script's own logic. The runs
that need the kernel use its HIP-CPU build (tests/support/native_build.py) and skip without it.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import torch

from cvgl_edge.errors import CvglError
from cvgl_edge.ops import chunked, native_cuda, selective_scan_reference
from cvgl_edge.ops.testing import random_scan_inputs
from tests.support import native_build
from tests.support.paths import REPO_ROOT

SCRIPT = REPO_ROOT / "benchmarks" / "scan_gpu.py"
HIP_CPU_MISSING = native_build.hip_cpu_missing_reason()


def _benchmark_module(name):
    """benchmarks/<name>.py as a module (benchmarks/ is no package)."""
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(SCRIPT):
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


gpu = _benchmark_module("scan_gpu")


# ----------------------------------------------------------------------------- bytes and bandwidth
def test_bytes_of_the_vim_s_scan_at_batch_64_fp16_worked_by_hand():
    # u, delta, z read + out written: 4 tensors of 64 x 768 x 257 = 12,632,064 elements -> 50,528,256
    # B, C read: 2 tensors of 64 x 16 x 257 = 263,168 elements -> 526,336
    # at 2 bytes (fp16): (50,528,256 + 526,336) x 2 = 51,054,592 x 2 = 102,109,184
    # A (768 x 16 = 12,288) + D (768) + delta_bias (768) = 13,824 fp32 values = 55,296 bytes
    # total 102,109,184 + 55,296 = 102,164,480
    assert 64 * 768 * 257 == 12_632_064 and 64 * 16 * 257 == 263_168
    assert gpu.scan_bytes(64, 768, 257, 16, "fp16") == 102_164_480
    # fp32: 51,054,592 x 4 + 55,296 = 204,273,664; bf16 moves what fp16 does
    assert gpu.scan_bytes(64, 768, 257, 16, "fp32") == 204_273_664
    assert gpu.scan_bytes(64, 768, 257, 16, "bf16") == 102_164_480
    # batch 1: (4 x 197,376 + 2 x 4,112) x 2 + 55,296 = 797,728 x 2 + 55,296 = 1,650,752
    assert gpu.scan_bytes(1, 768, 257, 16, "fp16") == 1_650_752


def test_bandwidth_at_the_70_percent_line_of_an_h200():
    nbytes = 102_164_480
    # 4800 GB/s x 0.70 = 3360 GB/s -> 102,164,480 B / 3.36e12 B/s = 30.41 us
    assert gpu.achieved_gbs(nbytes, 30.0) == pytest.approx(3405.48, abs=0.01)
    assert gpu.achieved_gbs(nbytes, 30.0) / 4800 >= 0.70
    assert gpu.achieved_gbs(nbytes, 31.0) / 4800 < 0.70  # 3295.6 GB/s = 68.7 %


# ----------------------------------------------------------------------------- parity comparison
def test_compare_scales_atol_by_the_largest_reference_value():
    ref = torch.tensor([10.0, 0.0])
    # fp16: atol 1e-2 x max(1, 10) = 0.1 where the reference is 0 (rtol x 0 adds nothing)
    assert gpu.compare(torch.tensor([10.0, 0.099]), ref, "fp16")["ok"]
    off = gpu.compare(torch.tensor([10.0, 0.101]), ref, "fp16")
    assert not off["ok"] and off["bad"] == 1 and off["max_abs_diff"] == pytest.approx(0.101)
    # below 1 the scale stays 1: fp32 allows 2e-4 at 0
    small = torch.tensor([0.5, 0.0])
    assert gpu.compare(torch.tensor([0.5, 1.9e-4]), small, "fp32")["ok"]
    assert not gpu.compare(torch.tensor([0.5, 2.1e-4]), small, "fp32")["ok"]
    # rtol: 10 +- (0.1 + 1e-2 x 10) passes in fp16, 10.21 does not
    assert gpu.compare(torch.tensor([10.19, 0.0]), ref, "fp16")["ok"]
    assert not gpu.compare(torch.tensor([10.21, 0.0]), ref, "fp16")["ok"]


def test_compare_fails_nan_and_a_wrong_shape():
    nan = gpu.compare(torch.tensor([1.0, float("nan")]), torch.tensor([1.0, 1.0]), "bf16")
    assert not nan["ok"] and nan["bad"] == 1 and nan["max_abs_diff"] is None
    shape = gpu.compare(torch.zeros(2, 3), torch.zeros(3, 2), "fp32")
    assert not shape["ok"] and "shape" in shape["error"]
    assert gpu.compare(torch.ones(4, dtype=torch.float16), torch.ones(4), "fp16") == {
        "ok": True, "max_abs_diff": 0.0, "bad": 0}


# ----------------------------------------------------------------------------- targets
def _row(backend="cvgl_cuda", dtype="fp16", batch=64, median_us=30.0, frac=0.71, forced=False, length=257):
    nbytes = gpu.scan_bytes(batch, 768, length, 16, dtype)
    return {"backend": backend, "dtype": dtype, "batch": batch, "channels": 768, "length": length, "nstate": 16,
            "split_forced": forced, "median_us": median_us, "fraction_of_peak": frac,
            "achieved_gbs": gpu.achieved_gbs(nbytes, median_us)}


def test_batch_64_fp16_bandwidth_target():
    ok = gpu.target_checks(_row(frac=0.71), [])
    assert [(c["target"], c["ok"]) for c in ok] == [(">= 70% of peak DRAM bandwidth", True)]
    assert gpu.verdict(ok) == "PASS"
    assert gpu.target_checks(_row(frac=0.70), [])[0]["ok"] is True  # the bound is inclusive
    low = gpu.target_checks(_row(frac=0.69), [])
    assert low[0]["ok"] is False and gpu.verdict(low).startswith("FAIL: >= 70% of peak") and "69.0%" in gpu.verdict(low)
    unknown = gpu.target_checks(_row(frac=None), [])
    assert unknown[0]["ok"] is None and gpu.verdict(unknown).startswith("?:") and "--peak-gbs" in gpu.verdict(unknown)
    # fp32 at batch 64, or fp16 at another length, carries no bandwidth target
    assert gpu.target_checks(_row(dtype="fp32", frac=0.1), []) == []
    assert gpu.target_checks(_row(frac=0.1, length=513), []) == []


def test_batch_1_latency_target_in_every_dtype():
    for dtype in ("fp16", "fp32"):
        fast = gpu.target_checks(_row(dtype=dtype, batch=1, median_us=7.9, frac=0.01), [])
        assert [(c["target"], c["ok"]) for c in fast] == [("<= 8 us per scan", True)]
        slow = gpu.target_checks(_row(dtype=dtype, batch=1, median_us=8.1, frac=0.01), [])
        assert slow[0]["ok"] is False and gpu.verdict(slow) == "FAIL: <= 8 us per scan (8.10 us)"
    assert gpu.target_checks(_row(batch=1, median_us=8.0), [])[0]["ok"] is True  # the bound is inclusive


def test_faster_than_mamba_where_it_ran_else_than_chunked():
    mine = _row(batch=32, median_us=50.0)  # batch 32: neither the bandwidth nor the latency target
    mamba_slow, mamba_fast = _row("mamba_ssm", batch=32, median_us=60.0), _row("mamba_ssm", batch=32, median_us=40.0)
    chunk = _row("chunked", batch=32, median_us=900.0)
    check = gpu.target_checks(mine, [mine, chunk, mamba_slow])
    assert [(c["target"], c["ok"]) for c in check] == [("faster than mamba_ssm", True)]
    lost = gpu.target_checks(mine, [mine, chunk, mamba_fast])  # mamba_ssm decides even though chunked is slower
    assert [(c["target"], c["ok"]) for c in lost] == [("faster than mamba_ssm", False)]
    assert gpu.verdict(lost) == "FAIL: faster than mamba_ssm (50.00 vs 40.00 us)"
    # without mamba_ssm at this shape and dtype: chunked is the rival
    other = [_row("mamba_ssm", batch=64, median_us=1.0), _row("mamba_ssm", dtype="fp32", batch=32, median_us=1.0)]
    assert [(c["target"], c["ok"]) for c in gpu.target_checks(mine, [mine, chunk, *other])] == [
        ("faster than chunked", True)]
    assert gpu.target_checks(mine, [mine, *other]) == []  # no rival measured: no target
    tie = gpu.target_checks(mine, [mine, _row("chunked", batch=32, median_us=50.0)])
    assert [c["ok"] for c in tie] == [False]  # as fast is not faster
    assert gpu.verdict([]) == "-"


def test_targets_apply_only_to_the_kernel_with_its_automatic_split():
    rows = [_row("chunked", median_us=900.0)]
    assert gpu.target_checks(_row(forced=True, frac=0.1), rows) == []
    assert gpu.target_checks(_row("mamba_ssm", frac=0.1), rows) == []
    both = gpu.target_checks(_row(frac=0.5, median_us=80.0), rows)
    assert [c["ok"] for c in both] == [False, True] and gpu.verdict(both).count("FAIL") == 1


def test_split_summary_names_the_fastest_split_and_the_automatic_one():
    rows = [{**_row(batch=1, median_us=us), "split": k, "split_forced": True}
            for k, us in ((1, 40.0), (8, 9.0), (16, 6.0), (32, 6.6))]
    rows.append({**_row(batch=1, median_us=1.0), "split": 32, "split_forced": False})  # the auto row: not sweep
    s = gpu.split_summary(rows, 1, 32)
    assert (s["best_split"], s["best_us"], s["auto_us"], s["auto_over_best"], s["auto_is_best"]) == (16, 6.0, 6.6, 1.1,
                                                                                                   False)
    assert gpu.split_summary(rows, 1, 16)["auto_is_best"] is True
    assert gpu.split_summary(rows, 64, 1) is None


def test_exit_code_is_1_for_any_parity_failure_or_error_only():
    good = [{"ok": True}]
    assert gpu.exit_code(good, [{"parity_ok": True, "verdict": "FAIL: <= 8 us"}], []) == 0  # targets do not count
    assert gpu.exit_code([{"ok": True}, {"ok": False}], [], []) == 1
    assert gpu.exit_code(good, [{"parity_ok": False}], []) == 1
    assert gpu.exit_code(good, [], ["cvgl_cuda not built: nvcc missing"]) == 1


# ----------------------------------------------------------------------------- plan and budget
def test_rows_run_in_priority_order():
    rows = gpu.plan_rows(["fp16", "fp32"], [1, 64], [257], ["cvgl_cuda", "mamba_ssm", "chunked"], [1, 64])
    described = [(r.backend, r.dtype, r.batch, r.split) for r in rows]
    main16 = [(b, "fp16", n, None) for n in (1, 64) for b in ("cvgl_cuda", "mamba_ssm", "chunked")]
    sweep = [("cvgl_cuda", "fp16", n, k) for n in (1, 64) for k in (1, 2, 4, 8, 16, 32)]
    main32 = [(b, "fp32", n, None) for n in (1, 64) for b in ("cvgl_cuda", "mamba_ssm", "chunked")]
    assert described == main16 + sweep + main32
    assert rows[6].label == "cvgl_cuda split=1" and rows[0].describe() == "cvgl_cuda fp16 B=1 L=257"
    assert all(r.split is None for r in gpu.plan_rows(["fp16"], [1], [257], ["chunked"], [1, 64]))
    only32 = gpu.plan_rows(["fp32"], [1], [257], ["cvgl_cuda"], [64])  # the fp16 sweep still runs, last
    assert [(r.dtype, r.split) for r in only32] == [("fp32", None)] + [("fp16", k) for k in gpu.SPLITS]


def test_row_estimate_and_the_budget_guard():
    # 20 warm-up + 200 timed calls of 0.3 ms with a 0.07 ms flush each, plus 0.05 s fixed
    assert gpu.row_estimate_s(0.3e-3, 20, 200, 0.07e-3, 0.05) == pytest.approx(220 * 0.37e-3 + 0.05)
    now = [100.0]
    budget = gpu.Budget(420.0, clock=lambda: now[0])
    now[0] = 400.0  # 300 s used
    assert budget.elapsed() == 300.0 and budget.remaining() == 120.0
    assert budget.allows(120.0) and not budget.allows(120.5)
    entry = budget.skip("chunked fp32 B=64 L=257", 130.0)
    assert entry == {"row": "chunked fp32 B=64 L=257",
                     "reason": "budget: needs ~130.0 s, 120.0 s of --budget-s 420 left"}
    now[0] = 600.0
    assert budget.skip("x")["reason"] == "budget: 0.0 s of --budget-s 420 left" and len(budget.skipped) == 2


@pytest.fixture
def fake_cuda(monkeypatch):
    """torch.cuda stood in by host-side events and a made-up H200; tensors on the CPU."""

    class Event:
        def __init__(self, enable_timing=False):
            self.t = None

        def record(self, stream=None):
            self.t = time.perf_counter()

        def elapsed_time(self, end):
            return (end.t - self.t) * 1e3

    props = SimpleNamespace(name="NVIDIA H200", major=9, minor=0, multi_processor_count=132,
                            total_memory=141 * 2**30, L2_cache_size=50 * 2**20)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "Event", Event)
    monkeypatch.setattr(torch.cuda, "_sleep", lambda cycles: None)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=0: props)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=0: props.name)
    monkeypatch.setattr(gpu, "DEVICE", "cpu")
    monkeypatch.setattr(gpu, "FLUSH_BYTES", 4096)
    monkeypatch.setattr(gpu, "WALL_CALLS", 2)
    monkeypatch.setattr(gpu.cuda_mamba, "scan_fn", lambda: None)  # mamba_ssm's kernel needs a real GPU
    return props


def test_a_row_past_the_budget_is_skipped_before_it_is_timed(fake_cuda):
    args = gpu.parse_args(["--repeats", "2000", "--warmup", "0"])
    calls = []

    def slow():  # 5 ms a call: 2000 repeats need > 10 s
        calls.append(1)
        time.sleep(0.005)
        return chunked.forward(*(case.inputs[k] for k in ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")),
                               True, False)

    timer = gpu.Timer(args, gpu.Budget(5.0), 4800.0, None, None, 0.0)
    spec = gpu.RowSpec("cvgl_cuda", "fp32", 1, 17)
    case = timer.case(spec)
    out = timer.run(spec, slow, True, 32)
    assert len(calls) == 2  # the probe only
    assert out["skipped"]["row"] == "cvgl_cuda fp32 B=1 L=17" and "needs ~" in out["skipped"]["reason"]
    calls.clear()
    args = gpu.parse_args(["--repeats", "3", "--warmup", "1"])
    row = gpu.Timer(args, gpu.Budget(5.0), 4800.0, None, None, 0.0).run(spec, slow, True, 32)
    assert len(calls) == 2 + 1 + 3 + gpu.WALL_CALLS and row["repeats"] == 3 and row["parity_ok"]
    assert row["split"] == 32 and row["split_is_auto"] and row["median_us"] >= 5000


def test_a_timed_row_is_marked_by_the_parity_phase_and_by_its_own_check(fake_cuda):
    timer = gpu.Timer(gpu.parse_args(["--repeats", "1", "--warmup", "0"]), gpu.Budget(60.0), None, None, None, 0.0)
    spec = gpu.RowSpec("chunked", "fp32", 1, 9)
    x = timer.case(spec).inputs

    def right():
        return chunked.forward(x["u"], x["delta"], x["A"], x["B"], x["C"], x["D"], x["z"], x["delta_bias"], True, False)

    ok = timer.run(spec, right, True, None)
    assert ok["parity_ok"] is True and ok["parity_detail"] == "ok" and ok["fraction_of_peak"] is None
    assert ok["split"] is None and not ok["split_is_auto"]
    phase = timer.run(spec, right, False, None)  # right here, wrong in the parity phase
    assert phase["parity_ok"] is False and phase["parity_detail"] == "parity phase failed"
    assert timer.run(spec, right, None, None)["parity_ok"] is True  # no phase result (not checked there)
    wrong = timer.run(spec, lambda: right() + 1, True, None)
    assert wrong["parity_ok"] is False and wrong["parity_detail"] == f"{768 * 9} elements off at this shape"


# ----------------------------------------------------------------------------- exits (subprocess: the real script)
def _script(*args):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # no GPU even on a GPU machine
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          cwd=REPO_ROOT, timeout=300)


def test_without_a_gpu_one_line_and_exit_2():
    result = _script()
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("scan_gpu: no CUDA GPU visible"), result.stderr


def test_a_bad_option_is_one_error_line_and_exit_2_before_looking_for_a_gpu():
    result = _script("--dtypes", "fp16,fp8")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == ["scan_gpu: error: --dtypes: fp8 is not a subset of fp32,fp16,bf16"]


@pytest.mark.parametrize("args,message", [
    (["--backends", "cvgl_cuda,triton"], "--backends: triton is not a subset"),
    (["--batches", "1,0"], "--batches: expected comma-separated positive integers"),
    (["--batches", "x"], "--batches: expected comma-separated positive integers"),
    (["--lengths", ""], "--lengths: expected comma-separated positive integers"),
    (["--budget-s", "0"], "--budget-s must be > 0"),
    (["--repeats", "0"], "--repeats must be >= 1"),
    (["--slow-warmup", "-1"], "--slow-warmup must be >= 0"),
    (["--peak-gbs", "-5"], "--peak-gbs must be > 0"),
    (["--library", "/nonexistent/libcvgl_scan.so"], "--library /nonexistent/libcvgl_scan.so: no such file"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["--repeats", "many"], "argument --repeats: invalid int value"),
])
def test_bad_options(capsys, args, message):
    assert gpu.main(args) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1 and lines[0].startswith(f"scan_gpu: error: {message}"), lines


def test_defaults_parse():
    args = gpu.parse_args([])
    assert (args.dtypes, args.batches, args.lengths, args.sweep_batches) == (["fp16", "fp32"], [1, 64], [257], [1, 64])
    assert args.backends == ["cvgl_cuda", "mamba_ssm", "chunked"] and args.budget_s == 420.0
    assert gpu.parse_args(["--sweep-batches", ""]).sweep_batches == []


def test_result_paths_never_overwrite_an_earlier_run(tmp_path):
    import datetime as dt

    json1, md1 = gpu.result_paths(tmp_path, "NVIDIA H200", dt.date(2027, 1, 2))
    assert (json1.name, md1.name) == ("scan_gpu_nvidia-h200_20270102.json", "scan_gpu_nvidia-h200_20270102.md")
    md1.write_text("x")
    json2, md2 = gpu.result_paths(tmp_path, "NVIDIA H200", dt.date(2027, 1, 2))
    assert (json2.name, md2.name) == ("scan_gpu_nvidia-h200_20270102_2.json", "scan_gpu_nvidia-h200_20270102_2.md")


# ----------------------------------------------------------------------------- main() on the stand-in
def _run_main(tmp_path, *args):
    out = tmp_path / "scan.json"
    code = gpu.main([*args, "--json", str(out)])
    return code, json.loads(out.read_text()), out.with_suffix(".md").read_text()


def test_a_parity_failure_is_printed_marked_and_exits_1(fake_cuda, tmp_path, monkeypatch, capsys):
    real = chunked.forward
    # off by |y| + 1: past any tolerance at the largest |y| (rtol, atol <= 5e-2 of it)
    monkeypatch.setattr(chunked, "forward", lambda *a: real(*a) * 2 + 1)
    code, report, md = _run_main(tmp_path, "--backends", "chunked", "--dtypes", "fp16", "--batches", "1",
                                 "--sweep-batches", "", "--repeats", "2", "--warmup", "0", "--slow-warmup", "0")
    assert code == 1
    assert len(report["parity"]) == 12 and not any(c["ok"] for c in report["parity"])  # 3 dtypes x 2 shapes x 2
    (row,) = report["rows"]
    assert row["label"] == "chunked" and row["parity_ok"] is False and row["parity_detail"] == "parity phase failed"
    assert "| chunked | fp16 | 1 | 257 | - |" in md and "FAIL (parity phase failed)" in md
    assert "## Parity: 0 of 12 checks passed" in md
    assert "PARITY FAIL chunked fp16 shape [2, 37, 131, 13] reverse" in capsys.readouterr().out
    assert report["peak_gbs"] == 4800.0 and report["peak_source"] == "device table: h200"


def test_an_error_in_a_timed_call_is_reported_the_other_rows_kept_and_exits_1(fake_cuda, tmp_path, monkeypatch):
    real = chunked.forward

    def fails_at_batch_2(u, *rest):
        if tuple(u.shape) == (2, 768, 257):  # a timing shape only (the parity shapes are B=1 and L=131)
            raise RuntimeError("boom")
        return real(u, *rest)

    monkeypatch.setattr(chunked, "forward", fails_at_batch_2)
    code, report, md = _run_main(tmp_path, "--backends", "chunked", "--dtypes", "fp32", "--batches", "2,1",
                                 "--repeats", "1", "--warmup", "0")
    assert code == 1 and all(c["ok"] for c in report["parity"])
    assert [r["batch"] for r in report["rows"]] == [1] and report["errors"] == ["chunked fp32 B=2 L=257: RuntimeError: boom"]
    assert "- error: chunked fp32 B=2 L=257: RuntimeError: boom" in md and "| chunked | fp32 | 1 | 257 |" in md


def test_rows_past_the_budget_are_named_and_do_not_fail_the_run(fake_cuda, tmp_path):
    code, report, md = _run_main(tmp_path, "--backends", "chunked", "--batches", "1,2", "--budget-s", "0.001")
    assert code == 0 and report["rows"] == []
    assert [s["row"] for s in report["skipped_rows"]] == [
        f"chunked {d} B={b} L=257" for d in ("fp16", "fp32") for b in (1, 2)]
    assert all(s["reason"].startswith("budget:") for s in report["skipped_rows"])
    assert "- chunked fp32 B=2 L=257: budget:" in md and report["parity"] and all(c["ok"] for c in report["parity"])


# ----------------------------------------------------------------------------- the kernel's split entry points (HIP-CPU)
def _wait_for_emulation(lib):
    lib.cvgl_emulation_synchronize.restype = ctypes.c_int
    assert lib.cvgl_emulation_synchronize() == 0


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    """The kernel's C ABI built for the CPU (stream 0, a wait after each launch)."""
    if HIP_CPU_MISSING is not None:
        pytest.skip(HIP_CPU_MISSING)
    shared = tmp_path_factory.getbasetemp().parent
    library = native_build.cached_cpu_kernel(shared / "cvgl-native-cache")
    return native_cuda.NativeScan(library, native_cuda.Launcher(stream=lambda device: 0, after=_wait_for_emulation))


@pytest.mark.parametrize("reverse", [False, True])
def test_every_forced_split_matches_the_reference(emulated, reverse):
    scan = gpu.SplitScan(emulated)
    x = random_scan_inputs(2, 37, 131, 13, dtype=torch.float16, seed=2)
    ref = gpu.fp32_reference(x, reverse)
    outs = []
    for split in gpu.SPLITS:
        launch = scan.prepare(x, split=split, reverse=reverse)
        got = launch()
        result = gpu.compare(got, ref, "fp16")
        assert result["ok"], (split, result)
        outs.append(got.clone())
    assert launch() is got  # one output tensor per launcher, reused
    # the splits differ only in fp32 rounding; the direction matters
    assert not torch.equal(outs[0], gpu.SplitScan(emulated).prepare(x, split=1, reverse=not reverse)())
    assert (ref - selective_scan_reference(**{k: v.float() for k, v in x.items()}, delta_softplus=True,
                                           reverse=reverse)).abs().max() == 0


def test_choose_split_and_a_refused_split(emulated):
    scan = gpu.SplitScan(emulated)
    assert scan.choose(1, 768, 257, 132) == 32 and scan.choose(64, 768, 257, 132) == 1
    assert scan.choose(8, 768, 257, 132) == 8
    x = random_scan_inputs(1, 8, 20, 16, seed=1)
    with pytest.raises(CvglError, match="split 3 steps 0: bad shape"):
        scan.prepare(x, split=3)()
    with pytest.raises(CvglError, match="split 1 steps 34"):
        scan.prepare(x, split=1, steps=34)()


def test_main_end_to_end_on_the_cpu_built_kernel(fake_cuda, emulated, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gpu, "load_native", lambda library: (emulated, 0.5))
    code, report, md = _run_main(tmp_path, "--dtypes", "fp16", "--batches", "1", "--sweep-batches", "1",
                                 "--repeats", "2", "--warmup", "0", "--slow-repeats", "1", "--slow-warmup", "0")
    out = capsys.readouterr().out
    assert code == 0, out
    # parity: cvgl_cuda and chunked x 3 dtypes x 2 shapes x 2 directions, plus 6 splits x 2 directions
    assert len(report["parity"]) == 2 * 12 + 12 and all(c["ok"] for c in report["parity"])
    assert sorted({c["split"] for c in report["parity"] if c["split"]}) == list(gpu.SPLITS)
    assert report["skipped_backends"] == {"mamba_ssm": "mamba_ssm not importable (pip install mamba-ssm builds it "
                                                       "for this GPU)"}
    labels = [(r["label"], r["dtype"]) for r in report["rows"]]
    assert labels == [("cvgl_cuda", "fp16"), ("chunked", "fp16")] + [(f"cvgl_cuda split={k}", "fp16")
                                                                     for k in gpu.SPLITS]
    assert [r["repeats"] for r in report["rows"]] == [2, 1] + [2] * 6  # chunked: --slow-repeats
    auto = report["rows"][0]
    assert auto["split"] == 32 and auto["split_is_auto"] and not auto["split_forced"]  # 132 SMs, batch 1
    assert [r["split_is_auto"] for r in report["rows"][2:8]] == [False] * 5 + [True]
    assert auto["bytes_moved"] == 1_650_752 and auto["fraction_of_peak"] == pytest.approx(
        auto["achieved_gbs"] / 4800, abs=1e-4)
    # the emulation takes milliseconds: the latency target fails, and chunked is the rival (no mamba_ssm)
    assert [c["target"] for c in auto["targets"]] == ["<= 8 us per scan", "faster than chunked"]
    assert auto["targets"][0]["ok"] is False and auto["verdict"].startswith("FAIL: <= 8 us per scan")
    assert all(r["verdict"] == "-" for r in report["rows"] if r["backend"] == "chunked" or r["split_forced"])
    assert report["auto_split"] == [{"batch": 1, "length": 257, "sm_count": 132, "split": 32}]
    (sweep,) = report["split_sweep"]
    assert sweep["auto_split"] == 32 and sweep["best_split"] in gpu.SPLITS
    assert "automatic split (cvgl_selective_scan_choose_split, 132 SMs): B=1 L=257: 32" in out
    # the table and the record
    assert "| cvgl_cuda | fp16 | 1 | 257 | auto = 32 |" in md and "| cvgl_cuda | fp16 | 1 | 257 | 16 |" in md
    assert "| cvgl_cuda | fp16 | 1 | 257 | 32 = auto |" in md and "| chunked | fp16 | 1 | 257 | - |" in md
    assert "- Command: `python benchmarks/scan_gpu.py --dtypes fp16 --batches 1 --sweep-batches 1" in md
    assert "## Parity: 36 of 36 checks passed" in md and "- FAIL: <= 8 us per scan (fp16 B=1 L=257)" in md
    assert report["gpu"]["name"] == "NVIDIA H200" and report["gpu"]["sm_count"] == 132
    assert [(c["dtype"], c["shape"]["batch"], len(c["results"])) for c in report["cases"]] == [("fp16", 1, 8)]
    assert all(r["median_ms"] > 0 for c in report["cases"] for r in c["results"].values())
