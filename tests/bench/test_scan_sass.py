"""benchmarks/scan_sass.py: the SASS parser and classifier, loop detection, the occupancy
calculator (worked by hand), the marker syntax, bad input, and one real nvcc + nvdisasm run."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys

import pytest

from tests.support.paths import REPO_ROOT


def _benchmark_module(name):
    """benchmarks/<name>.py as a module (benchmarks/ is no package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # registered before it runs: its dataclasses look the module up by name
    spec.loader.exec_module(module)
    return module


sass = _benchmark_module("scan_sass")

# Two functions as nvdisasm -gi prints them: nested loops, a forward branch, a second back edge
# to the same header (a `continue`), the idle self-branch after EXIT, and one function's
# EIATTR_MAX_THREADS and static shared section.
SNIPPET = """
\t.section\t.nv.info._Z4testPf,"",@"SHT_CUDA_INFO"
\t//----- nvinfo : EIATTR_MAX_THREADS
\t.align\t\t4
        /*0030*/ \t.byte\t0x04, 0x05
        /*0032*/ \t.short\t(.L_77 - .L_76)
.L_76:
        /*0034*/ \t.word\t0x00000040
        /*0038*/ \t.word\t0x00000002
        /*003c*/ \t.word\t0x00000001
\t.section\t.text._Z4testPf,"ax",@progbits
_Z4testPf:
        /*0000*/                   S2R R0, SR_TID.X ;
.L_x_0:
\t//## File "/src/k.cu", line 10
        /*0010*/                   LDS.64 R2, [R0] ;
        /*0020*/                   LDS.128 R4, [R0+0x10] ;
.L_x_1:
\t//## File "/src/k.cu", line 12
        /*0030*/                   FFMA R2, R2, R3, R4 ;
        /*0040*/                   MUFU.EX2 R5, R2 ;
\t//## File "/cuda/include/sm_30_intrinsics.hpp", line 449 inlined at "/src/k.cu", line 13
\t//## File "/src/k.cu", line 13
        /*0050*/                   SHFL.BFLY PT, R6, R5, 0x1, 0x1f ;
\t//## File "/src/k.cu", line 11
        /*0060*/                   ISETP.NE.AND P0, PT, R7, RZ, PT ;
        /*0070*/               @P0 BRA `(.L_x_1) ;
\t//## File "/src/k.cu", line 14
        /*0080*/                   STS [R0], R6 ;
        /*0090*/                   LDG.E.U16 R8, desc[UR4][R10.64] ;
        /*00a0*/              @!P2 BRA `(.L_x_0) ;
        /*00b0*/                   HADD2.F32 R9, -RZ, R8.H0_H0 ;
\t//## File "/src/k.cu", line 9
        /*00c0*/              @!P1 BRA `(.L_x_0) ;
        /*00d0*/                   BRA `(.L_x_2) ;
.L_x_2:
        /*00e0*/                   EXIT ;
.L_x_3:
        /*00f0*/                   BRA `(.L_x_3);
\t.section\t.text._Z5otherv,"ax",@progbits
_Z5otherv:
        /*0000*/                   HFMA2.MMA R1, -RZ, RZ, 0, 0 ;
.L_x_9:
        /*0010*/                   BRXU UR6 -0x20                 (*"BRANCH_TARGETS .L_x_9,.L_x_10"*);
.L_x_10:
        /*0020*/                   EXIT ;
\t.section\t.nv.shared._Z4testPf,"aw",@nobits
\t.align\t4
.nv.shared._Z4testPf:
\t.zero\t\t4096
"""


def test_parse_splits_functions_and_reads_launch_bounds_and_shared_size():
    fns = {fn.name: fn for fn in sass.parse_sass(SNIPPET)}
    assert set(fns) == {"_Z4testPf", "_Z5otherv"}
    test = fns["_Z4testPf"]
    assert len(test.instrs) == 16 and test.instrs[0].opcode == "S2R"
    assert test.max_threads == 64 * 2 * 1  # x * y * z of EIATTR_MAX_THREADS
    assert test.shared_section == 4096 and fns["_Z5otherv"].shared_section is None
    assert test.labels[".L_x_0"] == 0x10 and test.labels[".L_x_1"] == 0x30 and test.labels[".L_x_3"] == 0xF0
    bra = next(i for i in test.instrs if i.addr == 0x70)
    assert (bra.pred, bra.opcode, bra.operands) == ("@P0", "BRA", "`(.L_x_1)")
    shfl = next(i for i in test.instrs if i.addr == 0x50)  # -gi: the inlined chain, then the caller's line
    assert shfl.locs == (("/cuda/include/sm_30_intrinsics.hpp", 449), ("/src/k.cu", 13), ("/src/k.cu", 13))
    assert sass.main_line(shfl, "/src/k.cu") == 13


def test_nested_loops_from_backward_branches():
    fn = next(f for f in sass.parse_sass(SNIPPET) if f.name == "_Z4testPf")
    loops = sass.find_loops(fn)
    # .L_x_0 (0x10) <- @!P2 BRA at 0xa0 and @!P1 BRA at 0xc0; .L_x_1 (0x30) <- 0x70; the forward
    # BRA at 0xd0 and the self-branch at 0xf0 are no loops
    assert [(lp.header, lp.start, lp.end) for lp in loops] == [(".L_x_0", 0x10, 0xC0), (".L_x_1", 0x30, 0x70)]
    outer, inner = loops
    assert outer.back_edges == [0xA0, 0xC0]
    assert len(outer.instrs) == 12 and len(inner.instrs) == 5  # (0xc0 - 0x10) / 16 + 1, (0x70 - 0x30) / 16 + 1
    assert (outer.depth, inner.depth) == (0, 1) and outer.contains == [0x30] and inner.innermost
    assert not outer.innermost and inner.mufu("EX2") == 1 and outer.mufu("RCP") == 0
    assert sass.hottest_loops(loops) == [inner]


def test_class_counts_and_vector_widths():
    fn = next(f for f in sass.parse_sass(SNIPPET) if f.name == "_Z4testPf")
    outer, inner = sass.find_loops(fn)
    got = sass.count_classes(inner.instrs)
    assert got["classes"] == {"fp32": 1, "mufu": 1, "shuffle": 1, "integer": 1, "branch": 1}
    assert got["details"]["mufu"] == {"EX2": 1}
    got = sass.count_classes(outer.instrs)
    assert got["classes"] == {"fp32": 1, "mufu": 1, "shared": 3, "shuffle": 1, "global": 1, "integer": 1,
                              "convert": 1, "branch": 3}
    assert got["details"]["shared"] == {"LDS.128": 1, "LDS.64": 1, "STS.32": 1}
    assert got["details"]["global"] == {"LDG.16": 1} and got["details"]["convert"] == {"HADD2.F32": 1}


@pytest.mark.parametrize("text, cls, detail", [
    ("MUFU.RCP R0, R1", "mufu", "RCP"),
    ("MUFU.LG2 R0, R1", "mufu", "LG2"),
    ("LDG.E.128.CONSTANT R4, desc[UR4][R2.64]", "global", "LDG.128"),
    ("STG.E.64 desc[UR4][R2.64], R4", "global", "STG.64"),
    ("STS.U8 [R0], R1", "shared", "STS.8"),
    ("LDS.U.128 R4, [R0]", "shared", "LDS.128"),
    ("LDL.64 R20, [R1]", "local", "LDL.64"),
    ("HFMA2.MMA R26, -RZ, RZ, 0, 0", "move", "HFMA2.MMA(mov)"),
    ("HFMA2 R2, R3, R4, R5", "fp16", "HFMA2"),
    ("IMAD.MOV.U32 R2, RZ, RZ, R9", "integer", "IMAD"),
    ("F2FP.BF16.F32.PACK_AB R0, R1, R2", "convert", "F2FP"),
    ("PRMT R0, R1, 0x7610, R2", "convert", "PRMT"),
    ("ULDC.64 UR4, c[0x0][0x208]", "uniform", "ULDC"),
    ("R2UR UR4, R35", "uniform", "R2UR"),
    ("S2R R0, SR_TID.X", "other", "S2R"),
    ("BAR.SYNC.DEFER_BLOCKING 0x0", "sync", "BAR"),
    ("FSETP.GEU.AND P3, PT, R16, -126, PT", "fp32", "FSETP"),
    ("EXIT", "branch", "EXIT"),
])
def test_classify(text, cls, detail):
    assert sass.classify(sass.parse_instruction(0, text)) == (cls, detail)


def test_indirect_and_absolute_branch_targets():
    other = next(f for f in sass.parse_sass(SNIPPET) if f.name == "_Z5otherv")
    brxu = other.instrs[1]
    assert brxu.opcode == "BRXU" and brxu.annotation.startswith("BRANCH_TARGETS")
    assert sass.branch_targets(brxu, other.labels) == [0x10, 0x20]
    # BRXU to its own address is a branch to itself: no loop
    assert sass.find_loops(other) == []
    # cuobjdump -sass prints absolute addresses instead of labels
    fn = sass.Function("f", [sass.parse_instruction(a, t) for a, t in (
        (0x00, "MOV R0, RZ"), (0x10, "FADD R0, R0, 1"), (0x20, "@P0 BRA 0x10"), (0x30, "EXIT"))])
    loops = sass.find_loops(fn)
    assert [(lp.start, lp.end, len(lp.instrs)) for lp in loops] == [(0x10, 0x20, 2)]


def test_ptxas_resource_lines():
    text = """ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function '_Z1aPf' for 'sm_90'
ptxas info    : Function properties for _Z1aPf
    8 bytes stack frame, 8 bytes spill stores, 4 bytes spill loads
ptxas info    : Used 40 registers, used 1 barriers, 8 bytes cumulative stack size, 16640 bytes smem
ptxas info    : Compiling entry function '_Z1bv' for 'sm_87'
ptxas info    : Function properties for _Z1bv
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 56 registers, 568 bytes cmem[0]
"""
    got = sass.parse_ptxas(text)
    assert got["_Z1aPf"] == {"registers": 40, "barriers": 1, "smem": 16640, "stack_frame": 8,
                             "spill_stores": 8, "spill_loads": 4}
    assert got["_Z1bv"] == {"registers": 56, "barriers": 0, "smem": 0, "stack_frame": 0,
                            "spill_stores": 0, "spill_loads": 0}


def test_occupancy_registers_limit_on_sm90():
    # 128 threads = 4 warps; 64 regs x 32 lanes = 2048 per warp (a multiple of 256);
    # per sub-partition 65536 / 4 = 16384 -> 16384 // 2048 = 8 warps, x 4 = 32 warps -> 32 // 4 = 8 blocks.
    # Warps: 64 // 4 = 16 blocks; blocks: 32; smem: (0 + 1024 reserved) -> 233472 // 1024 = 228 blocks.
    got = sass.occupancy(sass.ARCH_LIMITS[90], 128, 64, 0)
    assert got["blocks_by_limit"] == {"warps": 16, "blocks": 32, "registers": 8, "shared memory": 228}
    assert (got["blocks_per_sm"], got["warps_per_sm"], got["occupancy_pct"]) == (8, 32, 50.0)
    assert got["limited_by"] == ["registers"] and got["smem_per_block_allocated"] == 1024


def test_occupancy_shared_memory_limit_on_sm89():
    # the HEAD kernel on sm_89: 128 threads, 60 regs, 16640 B static smem, 1 barrier.
    # regs: 60 x 32 = 1920 -> rounded up to 256: 2048; 16384 // 2048 = 8 warps x 4 = 32 -> 8 blocks.
    # smem: 16640 + 1024 = 17664 (= 138 x 128) -> 102400 // 17664 = 5 blocks (5.8).
    # warps: 48 // 4 = 12; blocks: 24. -> 5 blocks, 20 warps, 20 / 48 = 41.7 %.
    got = sass.occupancy(sass.ARCH_LIMITS[89], 128, 60, 16640, barriers=1)
    assert got["regs_per_warp_allocated"] == 2048 and got["smem_per_block_allocated"] == 17664
    assert got["blocks_by_limit"] == {"warps": 12, "blocks": 24, "registers": 8, "shared memory": 5}
    assert (got["blocks_per_sm"], got["warps_per_sm"], got["occupancy_pct"]) == (5, 20, 41.7)
    assert got["limited_by"] == ["shared memory"]


def test_occupancy_tie_on_sm87_and_barriers_on_sm90():
    # sm_87: 56 regs x 32 = 1792 = 7 x 256; 16384 // 1792 = 9 warps x 4 = 36 -> 9 blocks;
    # smem 167936 // 17664 = 9 (9.5) -> both limit: 9 blocks, 36 warps, 36 / 48 = 75 %.
    got = sass.occupancy(sass.ARCH_LIMITS[87], 128, 56, 16640, barriers=1)
    assert (got["blocks_per_sm"], got["warps_per_sm"], got["occupancy_pct"]) == (9, 36, 75.0)
    assert got["limited_by"] == ["registers", "shared memory"] and "barriers" not in got["blocks_by_limit"]
    # sm_90 (cc >= 9 counts named barriers): 32 threads, 16 regs, 4 barriers per block:
    # 2 x 32 max blocks = 64 barrier slots // 4 = 16 blocks < warps 64, blocks 32, regs 128, smem 228.
    got = sass.occupancy(sass.ARCH_LIMITS[90], 32, 16, 0, barriers=4)
    assert got["blocks_by_limit"]["barriers"] == 16 and got["blocks_per_sm"] == 16
    assert got["limited_by"] == ["barriers"] and got["occupancy_pct"] == 25.0  # 16 warps / 64


def test_occupancy_dynamic_smem_and_launch_failures():
    # sm_87, 128 threads, 32 regs, 48 KB dynamic: 49152 + 1024 = 50176 (= 392 x 128);
    # 167936 // 50176 = 3 blocks -> 12 warps, 12 / 48 = 25 %.
    got = sass.occupancy(sass.ARCH_LIMITS[87], 128, 32, 0, dynamic_smem=48 * 1024)
    assert (got["blocks_per_sm"], got["warps_per_sm"], got["occupancy_pct"]) == (3, 12, 25.0)
    assert got["limited_by"] == ["shared memory"] and not got["smem_opt_in_assumed"]
    # over 48 KB: opted in, up to 163 KB (+ 1 KB reserved) on sm_87; one byte more does not fit
    got = sass.occupancy(sass.ARCH_LIMITS[87], 128, 32, 0, dynamic_smem=100 * 1024)
    assert got["smem_opt_in_assumed"] and got["blocks_per_sm"] == 1  # 167936 // 103424
    assert sass.occupancy(sass.ARCH_LIMITS[87], 128, 32, 0, dynamic_smem=163 * 1024 + 1)["blocks_per_sm"] == 0
    # 1024 threads x 72 regs: 72 x 32 = 2304 per warp x 32 warps = 73728 > 65536: cannot launch
    got = sass.occupancy(sass.ARCH_LIMITS[90], 1024, 72, 0)
    assert got["blocks_by_limit"]["registers"] == 0 and got["blocks_per_sm"] == 0 and got["occupancy_pct"] == 0.0
    # one warp at 255 regs on sm_89: 8160 -> 8192 per warp; 16384 // 8192 = 2 x 4 = 8 blocks of 1 warp
    got = sass.occupancy(sass.ARCH_LIMITS[89], 32, 255, 0)
    assert got["blocks_by_limit"]["registers"] == 8 and got["blocks_per_sm"] == 8 and got["warps_per_sm"] == 8


def test_arch_table_matches_the_programming_guide():
    lim = sass.ARCH_LIMITS
    assert (lim[87].max_warps, lim[87].max_blocks, lim[87].smem_per_sm) == (48, 16, 164 * 1024)
    assert (lim[89].max_warps, lim[89].max_blocks, lim[89].smem_per_sm) == (48, 24, 100 * 1024)
    assert (lim[90].max_warps, lim[90].max_blocks, lim[90].smem_per_sm) == (64, 32, 228 * 1024)
    for cc in (80, 86, 87, 89, 90, 100, 110, 120):  # the Guide's per-block maximum = per SM - the 1 KB reserved
        assert lim[cc].smem_per_sm - lim[cc].smem_per_block_optin == lim[cc].reserved_smem_per_block == 1024


def test_kernel_spec_syntax():
    assert sass.parse_kernel_spec("new-soft4=export/csrc/k.cu@-DCVGL_SCAN_SOFT_EXP_STATES=4@-DX") == (
        "new-soft4", "export/csrc/k.cu", ["-DCVGL_SCAN_SOFT_EXP_STATES=4", "-DX"])
    assert sass.parse_kernel_spec("old=HEAD@{1}:export/csrc/k.cu") == ("old", "HEAD@{1}:export/csrc/k.cu", [])
    assert sass.parse_kernel_spec("a=HEAD~2:k.cu@-Xptxas=-O1,-v") == ("a", "HEAD~2:k.cu", ["-Xptxas=-O1,-v"])
    for bad in ("nolabel", "=k.cu", "a b=k.cu", "x="):
        with pytest.raises(sass.UsageError):
            sass.parse_kernel_spec(bad)


MARKED = """__global__ void k(float* y, int n) {
    /* a { brace in a comment } */
    // cvgl-sass: updates-per-iteration=4
#pragma unroll 4
    for (int s = 0; s < n; ++s) {
        if (s > 2) { y[s] = 1.f; }   // "}" in a comment
        const char* c = "}";
    }
    for (int i = 0; i < n; ++i)
        y[i] += 1.f;
}
"""


def test_marker_names_the_loop_and_its_lines():
    specs = sass.read_markers(MARKED)
    assert [(s.first, s.last, s.updates, s.origin) for s in specs] == [(5, 8, 4.0, "marker at line 3")]
    assert sass.loop_extent(MARKED, 9) == (9, 10)  # a loop without braces: to its statement's ';'
    with pytest.raises(sass.UsageError):
        sass.loop_extent(MARKED, 6)  # no loop statement on that line
    with pytest.raises(sass.UsageError):
        sass.read_markers("// cvgl-sass: updates-per-iteration=4\nint x;\n\n\n\n\n\nfor (;;) {}\n")
    with pytest.raises(sass.UsageError):
        sass.read_markers("// cvgl-sass: unroll=4\nfor (;;) {}\n")


def test_marked_lines_pick_the_loop_whose_back_edge_is_there():
    fn = next(f for f in sass.parse_sass(SNIPPET) if f.name == "_Z4testPf")
    loops = sass.find_loops(fn)
    # the inner loop's back edge (0x70) is on line 11, the outer one's (0xc0) on line 9
    assert [lp.start for lp in sass.loops_for_source_range(loops, "/src/k.cu", 11, 13)] == [0x30]
    assert [lp.start for lp in sass.loops_for_source_range(loops, "/src/k.cu", 9, 14)] == [0x10]  # outermost
    assert sass.loops_for_source_range(loops, "/src/k.cu", 100, 120) == []
    assert sass.loops_for_source_range(loops, "/other.cu", 9, 14) == []


def _error_line(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_bad_input_exits_2_with_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    assert sass.main(["--kernel", f"a={tmp_path / 'missing.cu'}", "--arch", "90"]) == 2
    assert "no such file" in _error_line(capsys)
    assert sass.main(["--kernel", "a=export/csrc/selective_scan_kernel.cu", "--arch", "91"]) == 2
    assert "unknown architecture" in _error_line(capsys)
    assert sass.main(["--kernel", "a=no-such-rev-xyz:export/csrc/selective_scan_kernel.cu", "--arch", "90"]) == 2
    assert "no revision 'no-such-rev-xyz'" in _error_line(capsys)
    assert sass.main(["--kernel", "a=HEAD:export/csrc/no_such_kernel.cu", "--arch", "90"]) == 2
    assert "does not exist at HEAD" in _error_line(capsys)
    assert sass.main(["--kernel", "a=export/csrc/selective_scan_kernel.cu", "--updates", "b=4"]) == 2
    assert "no kernel labelled 'b'" in _error_line(capsys)
    assert sass.main(["--kernel", "a=export/csrc/selective_scan_kernel.cu", "--dynamic-smem", "-5"]) == 2
    _error_line(capsys)
    assert sass.main(["--kernel", "a=x.cu", "--kernel", "a=y.cu"]) == 2
    assert "given twice" in _error_line(capsys)
    assert sass.main(["--arch", "90"]) == 2  # argparse's own errors are one line too
    assert "--kernel" in _error_line(capsys)


def test_missing_nvdisasm_is_one_line(capsys, tmp_path, monkeypatch):
    if sass.find_nvcc() is None:
        pytest.skip("needs nvcc (the nvdisasm check comes after it)")
    monkeypatch.chdir(REPO_ROOT)
    kernel = tmp_path / "k.cu"
    kernel.write_text("__global__ void k() {}\n")
    assert sass.main(["--kernel", f"a={kernel}", "--arch", "90", "--nvdisasm", str(tmp_path / "nope")]) == 2
    assert "nvdisasm not found" in _error_line(capsys)


TINY_HEADER = "#pragma once\n#define TINY_THREADS 64\n"
TINY = """#include "tiny.cuh"

__global__ void __launch_bounds__(TINY_THREADS) tiny_scan(const float* __restrict__ a, float* out, int n) {
    __shared__ float s[TINY_THREADS];
    float h = 0.f;
    const float x = a[threadIdx.x];
    // cvgl-sass: updates-per-iteration=1
#pragma unroll 1
    for (int t = 0; t < n; ++t) {
        h = exp2f(x * a[t]) * h + a[t];
        h += __shfl_xor_sync(0xffffffffu, h, 1);
    }
    s[threadIdx.x] = h;
    __syncthreads();
    out[threadIdx.x] = s[TINY_THREADS - 1 - threadIdx.x];
}
"""


def _tools_or_skip():
    nvcc = sass.find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found")
    if sass.find_nvdisasm(nvcc, None) is None:
        pytest.skip("nvdisasm not found (pip install nvidia-cuda-nvdisasm)")
    supported = sass.nvcc_architectures(nvcc)
    arch = next((a for a in (89, 87, 90) if a in supported), None)
    if arch is None:
        pytest.skip("this nvcc compiles none of sm_87, sm_89, sm_90")
    return arch


def test_compiles_and_reads_a_tiny_kernel(tmp_path, monkeypatch, capsys):
    arch = _tools_or_skip()
    (tmp_path / "tiny.cuh").write_text(TINY_HEADER)
    (tmp_path / "tiny.cu").write_text(TINY)
    monkeypatch.chdir(tmp_path)
    stem = tmp_path / "out" / "tiny_sass"
    assert sass.main(["--kernel", "tiny=tiny.cu@-DUNUSED_FLAG=1", "--arch", str(arch), "--out", str(stem)]) == 0
    printed = capsys.readouterr().out
    record = json.loads(stem.with_name("tiny_sass.json").read_text())
    assert stem.with_name("tiny_sass.md").read_text() == printed
    kernel = record["kernels"][0]
    assert kernel["flags"] == ["-DUNUSED_FLAG=1"] and kernel["revision"] is None
    assert record["nvdisasm"]["version"] != "unknown" and "release" in record["nvcc"]["version"]
    (fn,) = kernel["archs"][f"sm_{arch}"]["functions"]
    assert fn["name"] == "tiny_scan" and fn["registers"] > 0 and fn["smem"] == 64 * 4
    assert fn["block_size"] == 64 and fn["block_size_from"] == "__launch_bounds__" and fn["line_info"]
    occ = sass.occupancy(sass.ARCH_LIMITS[arch], 64, fn["registers"], fn["smem"], 0, fn["barriers"])
    assert fn["occupancy"] == occ
    (inner,) = fn["inner_loops"]
    assert inner["selected_by"] == "marker at line 7" and inner["marked_source_lines"] == [9, 12]
    assert inner["updates_per_iteration"] == 1.0 and inner["mufu_ex2"] == 1 and inner["ex2_per_update"] == 1.0
    assert inner["details_per_update"]["shuffle"] == {"SHFL": 1.0}
    assert inner["details_per_update"]["global"] == {"LDG.32": 1.0}  # a[t], loaded once (CSE)
    assert inner["instructions_per_update"] == inner["instructions"]
    assert sum(inner["classes_per_update"].values()) == pytest.approx(inner["instructions"])
    loop = next(lp for lp in fn["loops"] if lp["start"] == inner["start"])
    assert loop["innermost"] and 9 <= loop["source_lines"][0] <= loop["source_lines"][1] <= 12
    assert "| tiny | sm_" in printed and "tiny_scan" in printed


def test_reads_a_kernel_at_a_git_revision_with_its_header(tmp_path, monkeypatch, capsys):
    arch = _tools_or_skip()
    if shutil.which("git") is None:
        pytest.skip("needs git")
    (tmp_path / "csrc").mkdir()
    (tmp_path / "csrc" / "tiny.cuh").write_text(TINY_HEADER)
    (tmp_path / "csrc" / "tiny.cu").write_text(TINY)
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "tiny"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    # the working tree moves on: the header is gone and the kernel no longer compiles
    (tmp_path / "csrc" / "tiny.cuh").unlink()
    (tmp_path / "csrc" / "tiny.cu").write_text("this is not C++\n")
    monkeypatch.chdir(tmp_path)
    assert sass.main(["--kernel", "old=HEAD:csrc/tiny.cu", "--arch", str(arch), "--updates", "old=2"]) == 0
    out = capsys.readouterr().out
    assert f"{commit[:12]}:csrc/tiny.cu" in out
    assert sass.main(["--kernel", "new=csrc/tiny.cu", "--arch", str(arch)]) == 2
    assert "does not compile" in _error_line(capsys)
