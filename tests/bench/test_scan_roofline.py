"""The scan kernel model (bench/scan_roofline.py) on hand-worked cases.

Each expected figure is worked out in the comment beside it from the model's stated rules, so a
changed constant or formula shows here; the figures themselves are estimates, not measurements.
"""

from __future__ import annotations

import json

import pytest

from cvgl_edge.bench import scan_roofline as model
from cvgl_edge.errors import CvglError
from tests.support.paths import REPO_ROOT

VIM_S_64 = model.ScanShape(64, 768, 257, 16, 2)
VIM_S_1 = model.ScanShape(1, 768, 257, 16, 2)


def test_bytes_are_each_tensor_once():
    # u, delta, z, out: 4 x 768 and B, C: 2 x 16 rows of 64 x 257 fp16 = 3104 x 64 x 257 x 2 = 102,109,184;
    # A (768 x 16) + D + delta_bias (768 each) in fp32 = 4 x 13,824 = 55,296
    assert VIM_S_64.io_bytes == 102_109_184 + 55_296
    assert VIM_S_64.updates == 64 * 768 * 257 * 16


@pytest.mark.parametrize("split,steps,tiles,smem", [
    (1, 33, 8, 4 * (256 * 33 + 32 * 33)),    # cap 33; 257 -> 8 tiles of 33 (264 >= 257)
    (32, 9, 1, 4 * (256 * 9 + 32 * 32 * 9)),  # cap 12288 / (256 + 1024) = 9.6 -> 9; 32 x 9 = 288 >= 257
    (16, 9, 2, 4 * (256 * 9 + 32 * 16 * 9)),  # cap 16 -> 15 (odd); 2 tiles; ceil(257 / 32) = 9
    (4, 23, 3, 4 * (256 * 23 + 32 * 4 * 23)),  # cap 12288 / 384 = 32 -> 31; 3 tiles; ceil(257 / 12) = 22 -> 23
])
def test_the_plan_is_the_kernels(split, steps, tiles, smem):
    assert model.plan(257, split) == model.Plan(split, steps, tiles, smem)
    assert smem <= 48 * 1024


def test_the_old_kernel_at_batch_64_on_an_h100_is_issue_bound():
    # 64 x 96 = 6144 blocks; 47 on the busiest of 132 SMs, 12 resident (40 registers) -> 4 waves;
    # 12 blocks x 4 warps / 4 schedulers = 12 warps each issuing 34.5 per step:
    # 4 x 257 x 12 x 34.5 = 425,592 cycles / 1.98 GHz = 214.9 us, + 4 waves x 5 tiles x 0.6 us = 12 us
    est = model.old_kernel(VIM_S_64, "h100")
    assert est.blocks == 6144 and est.blocks_per_sm == 12 and est.bound == "issue"
    assert est.issue_us == pytest.approx(425_592 / 1.98e3, rel=1e-9)
    assert est.us == pytest.approx(425_592 / 1.98e3 + 12.0, rel=1e-9)


def test_the_old_kernel_at_batch_1_waits_on_its_step_chain():
    # 96 blocks on 132 SMs: one block per SM; 257 steps x 200 cycles / 1.98 GHz = 25.96 us + 5 x 0.6
    est = model.old_kernel(VIM_S_1, "h100")
    assert est.bound == "step chain"
    assert est.us == pytest.approx(257 * 200 / 1.98e3 + 3.0, rel=1e-9)


def test_the_new_kernel_at_batch_64_on_an_h100_is_mufu_bound():
    # split 1; 64 x 6 = 384 blocks, 3 per SM (5 fit); 3 warps per scheduler; 8 tiles x 33 = 264 steps;
    # MUFU: 16 exp2 per step, 8 cycles each (16 per SM per clock = 4 per scheduler):
    # 264 x 3 x 16 x 8 = 101,376 cycles / 1.98 GHz = 51.2 us; + 8 tiles x 0.6 us
    est = model.new_kernel(VIM_S_64, "h100")
    assert (est.split, est.blocks, est.blocks_per_sm, est.bound) == (1, 384, 3, "MUFU")
    assert est.mufu_us == pytest.approx(101_376 / 1.98e3, rel=1e-9)
    assert est.us == pytest.approx(101_376 / 1.98e3 + 4.8, rel=1e-9)
    assert est.pct_of_peak_bandwidth == pytest.approx(100 * (VIM_S_64.io_bytes / est.us / 1e3) / 3350, rel=1e-9)


def test_the_new_kernel_at_batch_1_splits_time_and_beats_the_old_one_everywhere():
    for device in model.GPU_CORES:
        new, old = model.new_kernel(VIM_S_1, device), model.old_kernel(VIM_S_1, device)
        assert new.split > 1 and new.us < old.us, device
    assert model.new_kernel(VIM_S_1, "h100").us <= 8.0  # the issue's target, as modelled


def test_a_gpu_bound_by_dram_says_so():
    # the RTX 4090 moves 1008 GB/s for 82.6 TFLOPS: 102 MB take 101.4 us, the compute ~54 us
    est = model.new_kernel(VIM_S_64, "rtx-4090")
    assert est.bound == "DRAM" and est.pct_of_peak_bandwidth == pytest.approx(100.0)


def test_every_device_has_core_figures_and_unknown_ones_are_refused():
    assert set(model.GPU_CORES) <= set(model.DEVICES)
    with pytest.raises(CvglError, match="no core figures"):
        model.new_kernel(VIM_S_1, "tpu")


@pytest.mark.parametrize("kernel,loop,table", [
    ("new", 0, model.NEW_PHASE1), ("new", 1, model.NEW_PHASE3), ("old", 0, model.OLD_STEP)])
def test_the_sass_figures_are_the_recorded_ones(kernel, loop, table):
    """The model's instruction counts and registers are those benchmarks/scan_sass.py recorded."""
    record = json.loads((REPO_ROOT / "benchmarks" / "results" / "scan_sass_vm_20261201.json").read_text())
    entry = next(k for k in record["kernels"] if k["label"] == kernel)
    registers = model.NEW_REGISTERS if kernel == "new" else model.OLD_REGISTERS
    assert set(entry["archs"]) == {"sm_87", "sm_89", "sm_90"}
    for arch, result in entry["archs"].items():
        half = next(f for f in result["functions"] if "__half" in f["demangled"])
        loops = sorted(half["inner_loops"], key=lambda lp: int(lp["start"], 16))
        number = int(arch.removeprefix("sm_"))
        assert loops[loop]["instructions_per_update"] == pytest.approx(table[number].issue, abs=0.005)
        assert loops[loop]["ex2_per_update"] == table[number].mufu
        assert half["registers"] == registers[number]
