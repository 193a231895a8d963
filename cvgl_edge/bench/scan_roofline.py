"""Time of one selective scan on a GPU we may not have: a model of the kernel, never a measurement.

Why a model of its own: a scan is a recurrence, so the generic roofline (FLOPs, bytes) says
nothing about it; what bounds it is one of
  * DRAM: the bytes it must move (u, delta, z, B, C read once, out written once, at the storage
    dtype; A, D, delta_bias in fp32) / the device's peak bandwidth;
  * issue: every SM scheduler issues one warp instruction per clock; the SASS says how many
    instructions the inner loop spends per (channel, time, state) update (benchmarks/scan_sass.py);
  * MUFU: an SM computes 16 exp2 per clock (CUDA C++ Programming Guide, arithmetic instruction
    throughput, cc 8.x and 9.0), and the scan takes one exp2 per update;
  * the dependency chain of one time step, when too few warps share a scheduler to hide it;
  * the staging latency of each tile (one DRAM round trip a block cannot overlap by itself).
The busiest scheduler decides: its warps' step passes x the larger of (chain, their issue cycles,
their MUFU cycles), plus the tile latencies, against the DRAM floor. Not modelled: launch
overhead, L2 hits, bank conflicts, clock throttling (Jetson power modes), tail effects inside a
wave. The old and the new kernel are computed the same way; docs/benchmarks.md explains the figures.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from cvgl_edge.bench.devices import DEVICES
from cvgl_edge.bench.occupancy import ARCH_LIMITS, occupancy
from cvgl_edge.errors import CvglError

MUFU_PER_SM_CLOCK = 16  # exp2 results per SM per clock, cc 8.6/8.7/8.9/9.0
SCHEDULERS = 4          # warp schedulers per SM, each issuing one warp instruction per clock
WARP = 32


@dataclass(frozen=True)
class GpuCores:
    """The figures of a GPU the model needs beyond DEVICES' peaks."""

    sms: int
    clock_ghz: float  # boost / maximum GPU clock
    arch: int         # compute capability x 10 (selects the SASS figures and occupancy limits)
    dram_latency_us: float  # one exposed global-memory round trip, order of magnitude
    source: str


#: DEVICES key -> cores. SM counts: 128 CUDA cores per SM on cc 8.6/8.7/8.9/9.0.
GPU_CORES: dict[str, GpuCores] = {
    "orin-nano": GpuCores(8, 0.625, 87, 1.0, "1024 CUDA cores = 8 SMs, 625 MHz (Orin Nano data sheet)"),
    "orin-nano-super": GpuCores(8, 1.02, 87, 1.0, "8 SMs, 1020 MHz (JetPack 6.1+ MAXN_SUPER)"),
    "orin-nx": GpuCores(8, 0.918, 87, 1.0, "1024 CUDA cores = 8 SMs, 918 MHz (Orin NX data sheet)"),
    "orin-nx-super": GpuCores(8, 1.173, 87, 1.0, "8 SMs, 1173 MHz (JetPack 6.2 MAXN_SUPER)"),
    "agx-orin": GpuCores(16, 1.3, 87, 1.0, "2048 CUDA cores = 16 SMs, 1.3 GHz (AGX Orin technical brief)"),
    "rtx-3060-laptop": GpuCores(30, 1.703, 86, 0.6, "30 SMs, 1703 MHz max boost (RTX 3060 Laptop spec)"),
    "rtx-4090": GpuCores(128, 2.52, 89, 0.6, "128 SMs, 2520 MHz boost (Ada whitepaper)"),
    "h100": GpuCores(132, 1.98, 90, 0.6, "132 SMs, 1980 MHz max boost (H100 SXM5 datasheet)"),
    "h100-pcie": GpuCores(114, 1.755, 90, 0.6, "114 SMs, 1755 MHz max boost (H100 PCIe datasheet)"),
    "h200": GpuCores(132, 1.98, 90, 0.6, "132 SMs, 1980 MHz (H200 SXM: the H100 SXM die)"),
}


@dataclass(frozen=True)
class ScanShape:
    """One scan: (batch, dim, seqlen) data, dstate states, dtype_bytes per stored element."""

    batch: int
    dim: int
    seqlen: int
    dstate: int = 16
    dtype_bytes: int = 2

    @property
    def updates(self) -> int:
        return self.batch * self.dim * self.seqlen * self.dstate

    @property
    def io_bytes(self) -> int:
        """u, delta, z, out: (B, Dc, L); B, C: (B, N, L) at the storage dtype; A, D, bias fp32."""
        data = (4 * self.dim + 2 * self.dstate) * self.batch * self.seqlen * self.dtype_bytes
        return data + 4 * (self.dim * self.dstate + 2 * self.dim)


@dataclass(frozen=True)
class LoopCost:
    """Issue slots per update (= warp instructions per 32 updates) of an inner loop, from the SASS."""

    issue: float
    mufu: float = 1.0  # MUFU.EX2 per update


# ------------------------------------------------------------------------------------ the kernels
# Figures: benchmarks/results/scan_sass_vm_20261201.md (nvcc 13.0, -O3; the same for fp32, fp16
# and bf16 data). sm_86 is taken as sm_87 (same SM design).

#: old kernel (git b671c0e): thread = (channel, state), 16 lanes per channel, time in chunks of 64
OLD_STEP = {87: LoopCost(28.0), 89: LoopCost(28.0), 90: LoopCost(34.5)}
OLD_REGISTERS = {87: 56, 89: 60, 90: 40}
OLD_SMEM = 16640
#: its step's dependency chain: LDS (~30 cycles) -> FMUL -> FMUL -> MUFU.EX2 (~20) -> FFMA ->
#: FMUL -> 4 x (SHFL ~30 -> FADD 4) -> STS: about 200 cycles (the issue's "170-200")
OLD_CHAIN_CYCLES = 200

#: new kernel: thread = channel x a run of time; phase 1 (split > 1 only) and phase 3 loops
NEW_PHASE1 = {87: LoopCost(5.5), 89: LoopCost(5.5), 90: LoopCost(5.88)}
NEW_PHASE3 = {87: LoopCost(7.25), 89: LoopCost(7.25), 90: LoopCost(7.88)}
NEW_REGISTERS = {87: 92, 89: 92, 90: 80}  # the fp16/bf16 build (fp32: 80 on every arch)
#: a step's chain: LDS.128 of B/C (~30) -> FMUL -> MUFU.EX2 (~20) -> FFMA h -> FFMA y: ~60 cycles,
#: below the 16 MUFU.EX2 x 8 cycles a warp's step needs anyway
NEW_CHAIN_CYCLES = 60
#: phase 2 per tile: (log2 split + 1) shuffle levels of 17 SHFL + 16 MUFU.EX2 + 32 FP32 each
NEW_LEVEL_CYCLES = 160

# The kernel's launch rule (export/csrc/selective_scan_kernel.cu: make_plan and
# cvgl_selective_scan_choose_split); tests/native/test_kernel_cpu.py checks this copy against it.
THREADS = 128
MAX_SPLIT = 32
MAX_STEPS = 33
MIN_STEPS_PER_LANE = 8
SMEM_LIMIT = 48 * 1024
BC_ROW = 32


def choose_split(batch: int, dim: int, seqlen: int, sm_count: int) -> int:
    """Lanes per channel the kernel picks: enough threads for 8 warps per SM, runs >= 8 steps."""
    channels, wanted = max(batch, 1) * max(dim, 1), max(sm_count, 1) * 8 * WARP
    split = 1
    while split < MAX_SPLIT and channels * split < wanted and split * 2 * MIN_STEPS_PER_LANE <= seqlen:
        split *= 2
    return split


def max_steps(split: int) -> int:
    fit = SMEM_LIMIT // 4 // (2 * THREADS + BC_ROW * split)
    steps = min(fit, MAX_STEPS)
    return steps if steps % 2 == 1 else steps - 1


@dataclass(frozen=True)
class Plan:
    split: int
    steps: int
    tiles: int
    smem_bytes: int


def plan(seqlen: int, split: int) -> Plan:
    """Run length and tile count for ``split``, as the kernel's make_plan chooses them."""
    cap = max_steps(split)
    tiles = math.ceil(seqlen / (split * cap))
    steps = math.ceil(seqlen / (tiles * split))
    if steps % 2 == 0 and steps < cap:
        steps += 1
    tiles = math.ceil(seqlen / (split * steps))
    return Plan(split, steps, tiles, 4 * (2 * THREADS * steps + BC_ROW * split * steps))


@dataclass(frozen=True)
class ScanEstimate:
    """One kernel's modelled time for one scan on one device."""

    kernel: str
    device: str
    batch: int
    dim: int
    seqlen: int
    dtype_bytes: int
    split: int
    blocks: int
    blocks_per_sm: int
    us: float
    dram_us: float
    issue_us: float
    mufu_us: float
    chain_us: float
    staging_us: float
    bound: str
    gbs: float
    pct_of_peak_bandwidth: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Work:
    """What the busiest SM does: its share of blocks and each warp's step passes and costs."""

    blocks: int
    warps_per_block: int
    resident: int          # blocks an SM holds at once (occupancy)
    step_passes: int       # per warp, over the whole scan
    issue_per_step: float  # warp instructions per step pass
    mufu_per_step: float   # MUFU warp instructions per step pass
    chain_cycles: float    # a step's dependency chain
    extra_cycles: float    # per block, outside the step loops (phase 2)
    tiles: int


def _time(work: _Work, gpu: GpuCores, shape: ScanShape, device: str, kernel: str, split: int) -> ScanEstimate:
    spec = DEVICES[device]
    per_sm = math.ceil(work.blocks / gpu.sms)                # blocks the busiest SM runs
    resident = max(1, min(work.resident, per_sm))
    waves = math.ceil(per_sm / resident)
    warps_per_scheduler = math.ceil(resident * work.warps_per_block / SCHEDULERS)
    mufu_cycles = WARP / (MUFU_PER_SM_CLOCK / SCHEDULERS)    # cycles per MUFU warp instruction
    hz = gpu.clock_ghz * 1e9
    scale = waves * work.step_passes / hz * 1e6              # us per cycle-of-one-step-pass
    issue_us = scale * warps_per_scheduler * work.issue_per_step
    mufu_us = scale * warps_per_scheduler * work.mufu_per_step * mufu_cycles
    chain_us = scale * work.chain_cycles
    extra_us = waves * warps_per_scheduler * work.extra_cycles / hz * 1e6
    staging_us = waves * work.tiles * gpu.dram_latency_us
    compute_us = max(issue_us, mufu_us, chain_us) + extra_us + staging_us
    dram_us = shape.io_bytes / (spec["mem_bandwidth_gbs"] * 1e9) * 1e6
    us = max(compute_us, dram_us)
    floors = {"DRAM": dram_us, "issue": issue_us, "MUFU": mufu_us, "step chain": chain_us}
    bound = max(floors, key=floors.get) if us > dram_us else "DRAM"
    gbs = shape.io_bytes / (us * 1e-6) / 1e9
    return ScanEstimate(kernel, device, shape.batch, shape.dim, shape.seqlen, shape.dtype_bytes, split,
                        work.blocks, resident, us, dram_us, issue_us, mufu_us, chain_us, staging_us, bound, gbs,
                        100.0 * gbs / spec["mem_bandwidth_gbs"])


def _arch(gpu: GpuCores) -> int:
    return 87 if gpu.arch == 86 else gpu.arch


def old_kernel(shape: ScanShape, device: str) -> ScanEstimate:
    """The per-(channel, state) kernel: 8 channels x 16 lanes per block, a shuffle sum per step."""
    gpu = cores(device)
    arch = _arch(gpu)
    resident = occupancy(ARCH_LIMITS[gpu.arch], THREADS, OLD_REGISTERS[arch], OLD_SMEM, barriers=1)["blocks_per_sm"]
    work = _Work(blocks=shape.batch * math.ceil(shape.dim / 8), warps_per_block=4, resident=resident,
                 step_passes=shape.seqlen, issue_per_step=OLD_STEP[arch].issue,
                 mufu_per_step=OLD_STEP[arch].mufu, chain_cycles=OLD_CHAIN_CYCLES, extra_cycles=0.0,
                 tiles=math.ceil(shape.seqlen / 64))
    return _time(work, gpu, shape, device, "old", 1)


def new_kernel(shape: ScanShape, device: str, split: int | None = None) -> ScanEstimate:
    """The states-in-registers kernel with the time split the launch rule picks (or ``split``)."""
    gpu = cores(device)
    arch = _arch(gpu)
    split = split or choose_split(shape.batch, shape.dim, shape.seqlen, gpu.sms)
    p = plan(shape.seqlen, split)
    resident = occupancy(ARCH_LIMITS[gpu.arch], THREADS, NEW_REGISTERS[arch], 0, dynamic_smem=p.smem_bytes,
                         barriers=1)["blocks_per_sm"]
    states = 16  # the loops run all 16 state slots whatever dstate is
    loops = [NEW_PHASE1[arch], NEW_PHASE3[arch]] if split > 1 else [NEW_PHASE3[arch]]  # each pass over a run
    levels = int(math.log2(split)) + 1 if split > 1 else 0
    work = _Work(blocks=shape.batch * math.ceil(shape.dim / (THREADS // split)), warps_per_block=THREADS // WARP,
                 resident=resident, step_passes=p.tiles * p.steps * len(loops),
                 issue_per_step=states * sum(loop.issue for loop in loops) / len(loops),
                 mufu_per_step=states * sum(loop.mufu for loop in loops) / len(loops), chain_cycles=NEW_CHAIN_CYCLES,
                 extra_cycles=p.tiles * levels * NEW_LEVEL_CYCLES, tiles=p.tiles)
    return _time(work, gpu, shape, device, "new", split)


def cores(device: str) -> GpuCores:
    if device not in GPU_CORES:
        raise CvglError(f"no core figures for device {device!r}; known: {', '.join(GPU_CORES)}")
    return GPU_CORES[device]


KERNELS = {"old": old_kernel, "new": new_kernel}
