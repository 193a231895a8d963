"""Benchmark timing machinery: summaries, clocks, memory probe, run policy, interleaving, options."""

import time

import numpy as np
import pytest

from cvgl_edge.bench import plan
from cvgl_edge.bench.clocks import CudaEventClock, HostClock, clock_for
from cvgl_edge.bench.memory import MemoryProbe, peak_rss_mb, rss_mb
from cvgl_edge.bench.runner import Cell, RunPolicy, rotated, run_interleaved, run_once
from cvgl_edge.timing import percentile, summarize_runs, throughput_per_s
from cvgl_edge.errors import CvglError
from cvgl_edge.runtime.base import Encoder, EncoderInfo


class FakeEncoder(Encoder):
    """Records every stage call in a shared log; forward sleeps ``seconds``."""

    def __init__(self, name, log, seconds=0.0, dim=4, bad=False):
        self.info = EncoderInfo(backend="fake", view="ground", input_size=(2, 2), descriptor_dim=dim,
                                precision="fp32", device="cpu", model_name="fake")
        self.name, self.log, self.seconds, self.bad = name, log, seconds, bad

    def to_device(self, images):
        self.log.append((self.name, "h2d"))
        return images

    def forward(self, staged):
        self.log.append((self.name, "forward"))
        if self.seconds:
            time.sleep(self.seconds)
        out = np.ones((len(staged), self.info.descriptor_dim), dtype=np.float32)
        if self.bad:
            out[0, 0] = np.nan
        return out

    def to_host(self, result):
        self.log.append((self.name, "d2h"))
        return result

    def synchronize(self):
        self.log.append((self.name, "sync"))


def _cell(name, log, batch=1, **kw):
    return Cell(name, "ground", batch, FakeEncoder(name, log, **kw), np.zeros((batch, 3, 2, 2), np.float32))


def test_summaries_are_the_usual_statistics():
    times = [float(x) for x in range(1, 101)]  # 1..100 ms
    s = summarize_runs(times)
    assert s["n"] == 100 and s["p50_ms"] == pytest.approx(50.5) and s["p90_ms"] == pytest.approx(90.1)
    assert s["p99_ms"] == pytest.approx(99.01) and s["mean_ms"] == pytest.approx(50.5)
    assert s["std_ms"] == pytest.approx(float(np.std(times)), abs=1e-3)
    assert s["min_ms"] == 1 and s["max_ms"] == 100
    assert percentile([3.0], 99) == 3.0
    assert throughput_per_s(8, 20.0) == pytest.approx(400.0)
    with pytest.raises(ValueError):
        summarize_runs([])


def test_host_clock_measures_real_time():
    result, ms = HostClock().measure(lambda: time.sleep(0.02) or 7)
    assert result == 7 and 15 <= ms < 500


def test_cuda_clock_records_the_end_event_after_the_call_and_reads_event_time():
    log = []

    class FakeEvent:
        def __init__(self):
            self.id = len([e for e in log if e[0] == "new"])
            log.append(("new", self.id))

        def record(self):
            log.append(("record", self.id))

        def synchronize(self):
            log.append(("sync", self.id))

        def elapsed_time(self, other):
            return 12.5

    clock = CudaEventClock(FakeEvent)
    result, ms = clock.measure(lambda: log.append(("call", None)) or "out")
    assert result == "out" and ms == 12.5
    assert log[2:] == [("record", 0), ("call", None), ("record", 1), ("sync", 1)]
    assert isinstance(clock_for("cpu"), HostClock)


def test_memory_probe_reports_a_peak():
    assert rss_mb() > 0 and peak_rss_mb() >= rss_mb() * 0.5
    probe = MemoryProbe()
    probe.begin()
    block = np.ones(20_000_000 // 8)  # ~20 MB touched
    figures = probe.end()
    del block
    assert figures["peak_rss_mb"] > 0
    if probe.resettable:
        assert probe.peak_scope.startswith("per step")


def test_run_once_times_three_synchronised_stages():
    log = []
    cell = _cell("a", log, batch=2)
    run_once(cell, HostClock(), MemoryProbe())
    assert [stage for _, stage in log] == ["sync", "h2d", "sync", "forward", "sync", "d2h"]
    assert cell.runs == 1 and cell.nonfinite_runs == 0
    assert cell.times["total"][0] == pytest.approx(sum(cell.times[s][0] for s in ("h2d", "encoder", "d2h")))
    bad = _cell("b", log, bad=True)
    run_once(bad, HostClock())
    assert bad.nonfinite_runs == 1


def test_rounds_interleave_cells_in_rotated_order():
    log = []
    cells = [_cell(name, log) for name in "abc"]
    rounds = run_interleaved(cells, RunPolicy(warmup=1, runs=3), HostClock())
    assert rounds == 3 and all(c.runs == 3 for c in cells)
    forwards = [name for name, stage in log if stage == "forward"]
    assert forwards[:3] == ["a", "b", "c"]  # warm-up round, untimed
    assert forwards[3:] == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert rotated([1, 2, 3], 4) == [2, 3, 1]


def test_time_budget_gives_slow_cells_fewer_runs_within_bounds():
    log = []
    fast, slow = _cell("fast", log), _cell("slow", log, seconds=0.01)
    policy = RunPolicy(warmup=0, min_seconds=0.05, min_runs=2, max_runs=40)
    seen = []
    run_interleaved([fast, slow], policy, HostClock(), on_run=lambda c, timed: seen.append((c.variant, timed)))
    assert 2 <= slow.runs <= 12 and slow.encoder_seconds >= 0.05
    assert fast.runs == 40  # never reaches the budget: capped
    assert len(seen) == fast.runs + slow.runs and all(timed for _, timed in seen)
    assert policy.expected_runs(slow) >= policy.min_runs
    with pytest.raises(CvglError):
        RunPolicy(min_runs=5, max_runs=2).check()
    with pytest.raises(CvglError):
        RunPolicy(runs=0).check()


def test_option_parsing_and_one_line_refusals():
    assert plan.parse_backends("torch, ort,torch") == ["torch", "onnxruntime"]
    assert plan.parse_precisions("fp32,int8") == ["fp32", "int8"]
    assert plan.parse_batch_sizes("8,1,8", "cpu") == [1, 8]
    assert plan.parse_batch_sizes(None, "cpu") == [1, 4]
    assert plan.parse_branch("both") == ["ground", "satellite"]
    assert [v.name for v in plan.variants(["torch", "onnxruntime"], ["fp32", "int8"])] == [
        "torch fp32", "torch int8", "onnxruntime fp32", "onnxruntime int8"]
    for call, text in ((lambda: plan.parse_backends("tvm"), "tvm"), (lambda: plan.parse_precisions("fp8"), "fp8"),
                       (lambda: plan.parse_device("tpu"), "tpu"), (lambda: plan.parse_batch_sizes("1,x", "cpu"), "1,x"),
                       (lambda: plan.parse_batch_sizes("0", "cpu"), ">= 1"), (lambda: plan.parse_branch("air"), "air")):
        with pytest.raises(CvglError, match=text):
            call()


def test_impossible_variants_get_a_reason_and_possible_ones_none():
    cpu = plan.Environment(cuda=False, ort_providers=("CPUExecutionProvider",), tensorrt="tensorrt_rtx 1.7")
    gpu = plan.Environment(cuda=True, ort_providers=("CPUExecutionProvider",), tensorrt=None)
    V = plan.Variant
    assert plan.skip_reason(V("torch", "fp32"), "cpu", cpu) is None
    assert plan.skip_reason(V("onnxruntime", "int8"), "cpu", cpu) is None
    assert "CUDA" in plan.skip_reason(V("torch", "fp16"), "cpu", cpu)
    assert "int8" in plan.skip_reason(V("torch", "int8"), "cpu", cpu)
    assert "GPU" in plan.skip_reason(V("tensorrt", "fp32"), "cpu", cpu)
    assert plan.skip_reason(V("onnxruntime", "fp16"), "cpu", cpu) is None  # fp16 ONNX export exists
    assert plan.skip_reason(V("torch", "fp16"), "cuda", gpu) is None
    assert "CUDAExecutionProvider" in plan.skip_reason(V("onnxruntime", "fp32"), "cuda", gpu)
    assert "TensorRT package" in plan.skip_reason(V("tensorrt", "fp32"), "cuda", gpu)
    with pytest.raises(CvglError, match="no CUDA GPU"):
        plan.check_device_available("cuda", cpu)
    assert plan.runtime_device("jetson") == "cuda"


def test_preprocess_timing_reports_each_step():
    from cvgl_edge.bench.preprocess import time_preprocess

    result = time_preprocess("satellite", (64, 64), runs=3, warmup=1, frame_hw=(200, 200))
    per = result["per_image"]
    assert set(per) == {"decode", "resize", "normalize", "total"}
    assert all(per[step]["n"] == 3 and per[step]["p50_ms"] > 0 for step in per)
    assert per["total"]["p50_ms"] >= per["decode"]["p50_ms"]
    assert result["jpeg_bytes"] > 0 and result["input_hw"] == [64, 64]


def test_jetson_power_window_summarises_tegrastats_samples(monkeypatch):
    """The power phase with a fake sampler (no Jetson here): sustained runs, then summarize()."""
    from cvgl_edge.bench import session, tegrastats
    from cvgl_edge.bench.report import power_rows

    class FakeSampler:
        def __enter__(self):
            self.samples = [{"module_power_mw": 5000, "gpu_load_percent": 50, "ram_used_mb": 1000,
                             "ram_total_mb": 8000}] * 3
            return self

        def __exit__(self, *exc):
            return None

    monkeypatch.setattr(tegrastats, "TegrastatsSampler", FakeSampler)
    log = []
    cells = [_cell("v", log, batch=1, seconds=0.002), _cell("v", log, batch=2)]
    request = session.BenchRequest(power_seconds=0.05)
    power = session._power(cells, request, HostClock())
    (entry,) = power["v"]
    assert entry["batch"] == 1 and entry["items"] > 0 and entry["seconds"] >= 0.05
    assert entry["summary"]["mean_power_w"] == pytest.approx(5.0)
    window = entry["summary"]["seconds"]
    assert entry["summary"]["energy_per_query_j"] == pytest.approx(5.0 * window / entry["items"])
    rows = power_rows({"variants": [{"name": "v", "power": power["v"]}]})
    assert rows[0][3] == "5.00" and rows[0][6] == "50.0"
