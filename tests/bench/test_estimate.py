"""Roofline estimates, the device table and the published anchors."""

import pytest

from cvgl_edge.bench.anchors import ANCHORS, anchor_rows
from cvgl_edge.bench import scan_roofline
from cvgl_edge.bench.devices import DEVICES, device_for_gpu_name
from cvgl_edge.bench.estimate import ESTIMATE_KIND, device_table, estimate
from cvgl_edge.errors import CvglError

REQUIRED = ("orin-nano", "orin-nx", "agx-orin", "rtx-3060-laptop", "rtx-4090", "h100")


def _cost(flops, fused, unfused=None):
    unfused = unfused or fused
    per = {"fp32": fused, "fp16": fused, "int8": fused}
    return {"view": "ground", "flops": flops, "bytes_per_query": per,
            "bytes_per_query_unfused": {k: unfused for k in per}}


def test_device_table_has_every_required_device_with_sources():
    assert set(REQUIRED) <= set(DEVICES)
    for key, d in DEVICES.items():
        assert d["fp16_tflops"] > d["fp32_tflops"] > 0 and d["int8_tops"] >= d["fp16_tflops"], key
        assert d["mem_bandwidth_gbs"] > 0 and len(d["source"]) > 40, key
    # vendor bandwidths of the Orin modules (docs/benchmarks.md, device peaks)
    assert DEVICES["orin-nano"]["mem_bandwidth_gbs"] == 68.0
    assert DEVICES["orin-nx"]["mem_bandwidth_gbs"] == 102.4
    assert DEVICES["agx-orin"]["mem_bandwidth_gbs"] == 204.8
    assert [row["device"] for row in device_table()] == list(DEVICES)


def test_compute_bound_estimate_on_agx_orin():
    est = estimate(_cost(1e12, 1e9, 4e9), "agx-orin", "fp16")
    assert est["kind"] == ESTIMATE_KIND == "estimate (roofline)"
    assert est["compute_ms"] == pytest.approx(1e12 / 42.5e12 * 1e3)
    assert est["memory_ms"] == pytest.approx(1e9 / 204.8e9 * 1e3)
    assert est["memory_ms_unfused"] == pytest.approx(4e9 / 204.8e9 * 1e3)
    assert est["bound"] == "compute" and est["ms_per_query"] == est["compute_ms"]
    assert est["assumptions"] and "Technical Brief" in est["source"]


def test_memory_bound_estimate_and_precisions():
    est = estimate(_cost(1e9, 1e9), "orin-nano", "int8")
    assert est["bound"] == "memory" and est["ms_per_query"] == pytest.approx(1e9 / 68e9 * 1e3)
    fp32 = estimate(_cost(1e12, 1e6), "h100", "fp32")["compute_ms"]
    fp16 = estimate(_cost(1e12, 1e6), "h100", "fp16")["compute_ms"]
    assert fp32 > fp16 > estimate(_cost(1e12, 1e6), "h100", "int8")["compute_ms"]


def test_the_scans_leave_the_roofline_and_come_back_as_the_kernel_models_time():
    # 48 Vim-S scans (24 layers x 2 directions) at batch 1: their 9*L*Dc*N FLOPs and their bytes
    # leave the roofline; the scan-kernel model's time for the current kernel is added after it
    scan_flops = 48 * 9 * 257 * 768 * 16
    cost = {**_cost(5e9 + scan_flops, 2e8), "batch": 1, "scan_flops": scan_flops,
            "scans": [{"batch": 1, "dim": 768, "seqlen": 257, "dstate": 16, "calls": 48}]}
    shape = scan_roofline.ScanShape(1, 768, 257, 16, 2)
    new, old = scan_roofline.new_kernel(shape, "agx-orin"), scan_roofline.old_kernel(shape, "agx-orin")
    est = estimate(cost, "agx-orin", "fp16")
    assert est["compute_ms"] == pytest.approx(5e9 / 42.5e12 * 1e3)
    assert est["memory_ms"] == pytest.approx((2e8 - 48 * shape.io_bytes) / 204.8e9 * 1e3)
    assert est["scan_ms"] == pytest.approx(48 * new.us / 1e3) and est["scan_ms_old"] == pytest.approx(48 * old.us / 1e3)
    assert est["ms_per_query"] == pytest.approx(max(est["compute_ms"], est["memory_ms"]) + est["scan_ms"])
    assert est["bound"] == "scans" and est["scan_ms"] < est["scan_ms_old"]
    assert {k["kernel"] for k in est["scan_kernels"]} == {"new", "old"}
    # fp32 engines store the scan data in fp32: twice the bytes
    assert estimate(cost, "agx-orin", "fp32")["scan_kernels"][0]["dtype_bytes"] == 4
    # without scan shapes the scans stay inside the roofline, as before
    plain = estimate(_cost(5e9 + scan_flops, 2e8), "agx-orin", "fp16")
    assert plain["scan_ms"] is None and plain["compute_ms"] == pytest.approx((5e9 + scan_flops) / 42.5e12 * 1e3)


def test_unknown_device_or_precision_is_one_line():
    with pytest.raises(CvglError) as info:
        estimate(_cost(1, 1), "jetson-tx2", "fp16")
    message = str(info.value)
    assert "\n" not in message and all(key in message for key in REQUIRED)
    with pytest.raises(CvglError, match="precision"):
        estimate(_cost(1, 1), "h100", "fp8")


def test_gpu_name_lookup():
    assert device_for_gpu_name("NVIDIA H100 80GB HBM3") == "h100"
    assert device_for_gpu_name("NVIDIA H100 PCIe") == "h100-pcie"
    assert device_for_gpu_name("NVIDIA H200") == "h200"
    assert device_for_gpu_name("Orin (nvgpu)") is None


def test_anchors_are_the_papers_figures():
    by_method = {a["method"].split(" ")[0]: a for a in ANCHORS}
    geossm = by_method["GeoSSM"]
    assert (geossm["params_m"], geossm["gflops"], geossm["ms_per_query"]) == (35.24, 11.0, 114.0)
    assert "RTX 4090" in geossm["hardware"] and "Table 4" in geossm["source"]
    assert by_method["TransGeo"]["ms_per_query"] == 99.0 and by_method["GeoDTR"]["ms_per_query"] == 420.64
    assert by_method["L2LTR"]["gflops"] == 18.7
    assert by_method["LRFR"]["ms_per_query"] == 26.5 and "3060 Laptop" in by_method["LRFR"]["hardware"]
    assert (geossm["r1"], by_method["LRFR"]["r1"]) == (96.02, 94.13)
    assert all(row["kind"] == "published" for row in anchor_rows())


def _benchmark_module(name):
    import importlib.util
    import sys

    from tests.support.paths import REPO_ROOT

    bench_dir = REPO_ROOT / "benchmarks"
    if str(bench_dir) not in sys.path:
        sys.path.insert(0, str(bench_dir))
    spec = importlib.util.spec_from_file_location(name, bench_dir / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scan_bytes_for_the_vim_s_shape():
    sweep = _benchmark_module("scan_sweep")
    # u, delta, z, y: 768 x 257 each; B, C: 16 x 257; A 768 x 16; D, bias 768; fp32
    expected = 4 * (4 * 768 * 257 + 2 * 16 * 257) + 4 * (768 * 16 + 2 * 768)
    assert sweep.scan_io_bytes(1, 768, 257, 16) == expected
    fp16 = sweep.scan_io_bytes(1, 768, 257, 16, elem_bytes=2)
    assert fp16 == 2 * (4 * 768 * 257 + 2 * 16 * 257) + 4 * (768 * 16 + 2 * 768)


def test_scan_gpu_without_a_gpu_exits_with_a_message(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: the no-GPU path does not apply")
    assert _benchmark_module("scan_gpu").main([]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("scan_gpu: no CUDA GPU visible") and "\n" not in err


@pytest.mark.gpu
def test_scan_gpu_runs_on_a_gpu(tmp_path):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    gpu = _benchmark_module("scan_gpu")
    out = tmp_path / "scan_gpu.json"
    assert gpu.main(["--lengths", "65", "--batches", "1", "--dtypes", "fp32", "--repeats", "3",
                     "--warmup", "1", "--backends", "chunked,reference", "--json", str(out)]) == 0
    import json

    report = json.loads(out.read_text())
    for case in report["cases"]:
        for result in case["results"].values():
            assert result["max_abs_diff_vs_fp32_reference"] < 1e-3 and result["median_ms"] > 0
