"""How many blocks of a kernel an SM holds: the CUDA occupancy calculation, per compute capability.

Why in the package: the SASS report (benchmarks/scan_sass.py) and the scan roofline estimate
(bench/scan_roofline.py) must agree on it. Follows the toolkit's own calculator
(<cuda>/include/cuda_occupancy.h), with the per-SM limits cited beside ARCH_LIMITS.
"""

from __future__ import annotations

from dataclasses import dataclass

KB = 1024


@dataclass(frozen=True)
class ArchLimits:
    """What an SM of one compute capability holds, for the occupancy calculation."""

    max_warps: int              # resident warps per SM
    max_blocks: int             # resident blocks per SM
    smem_per_sm: int            # bytes, the largest shared-memory carveout
    smem_per_block_optin: int   # bytes, per block with cudaFuncAttributeMaxDynamicSharedMemorySize
    reserved_smem_per_block: int  # bytes the driver adds to every block (cudaDeviceProp::reservedSharedMemPerBlock)
    smem_granularity: int = 128   # bytes: a block's shared memory is allocated in these units
    barrier_factor: int | None = None  # cc >= 9: named-barrier slots per SM = factor x max_blocks
    regs_per_sm: int = 64 * KB    # 32-bit registers
    reg_granularity: int = 256    # registers per warp are allocated in these units
    max_regs_per_thread: int = 255
    sub_partitions: int = 4       # registers are split evenly between the SM's 4 schedulers
    smem_per_block_default: int = 48 * KB  # without the opt-in attribute
    max_threads_per_block: int = 1024


# Sources, all for the compute capabilities nvcc 13.0 compiles:
# - max warps, max blocks per SM, shared memory per SM and per block: CUDA C++ Programming Guide,
#   "Compute Capabilities", Tables 30 ("Device and Streaming Multiprocessor (SM) Information per
#   Compute Capability") and 31 ("Memory Information per Compute Capability"),
#   https://docs.nvidia.com/cuda/cuda-programming-guide/05-appendices/compute-capabilities.html
#   (8.7: 48 warps, 16 blocks, 164 KB/SM, 163 KB/block; 8.9: 48, 24, 100 KB, 99 KB;
#   9.0: 64, 32, 228 KB, 227 KB);
# - 64 K registers per SM, 255 per thread: the same Table 31;
# - allocation granularities (256 registers per warp; 128 B of shared memory on cc >= 8, 256 B on
#   7.x), 4 sub-partitions, the per-block reservation added to the static size, the named-barrier
#   limit on cc >= 9 and the register check per sub-partition: the toolkit's own calculator,
#   <cuda>/include/cuda_occupancy.h (CUDA 13.0: cudaOccSMemAllocationGranularity,
#   cudaOccRegAllocationGranularity, cudaOccMaxBlocksPerSMRegsLimit, cudaOccMaxBlocksPerSMSmemLimit,
#   cudaOccMaxBlocksPerSMBlockBarrierLimit);
# - 1 KB reserved per block on cc >= 8 (cudaDeviceProp::reservedSharedMemPerBlock): the Guide's
#   per-block maximum is the per-SM maximum less exactly that 1 KB in Table 31 (164 - 163,
#   100 - 99, 228 - 227); on 7.5 both are 64 KB and nothing is reserved.
ARCH_LIMITS: dict[int, ArchLimits] = {
    75: ArchLimits(32, 16, 64 * KB, 64 * KB, 0, smem_granularity=256),
    80: ArchLimits(64, 32, 164 * KB, 163 * KB, KB),
    86: ArchLimits(48, 16, 100 * KB, 99 * KB, KB),
    87: ArchLimits(48, 16, 164 * KB, 163 * KB, KB),   # Jetson AGX Orin / Orin NX / Orin Nano
    89: ArchLimits(48, 24, 100 * KB, 99 * KB, KB),    # Ada: RTX 4090, L4, L40S
    90: ArchLimits(64, 32, 228 * KB, 227 * KB, KB, barrier_factor=2),  # H100, H200
    100: ArchLimits(64, 32, 228 * KB, 227 * KB, KB, barrier_factor=2),
    103: ArchLimits(64, 32, 228 * KB, 227 * KB, KB, barrier_factor=2),
    110: ArchLimits(48, 24, 228 * KB, 227 * KB, KB, barrier_factor=1),  # Jetson Thor
    120: ArchLimits(48, 24, 100 * KB, 99 * KB, KB, barrier_factor=1),
    121: ArchLimits(48, 24, 100 * KB, 99 * KB, KB, barrier_factor=1),
}
ARCH_NAMES = {87: "Jetson Orin", 89: "Ada, RTX 4090", 90: "Hopper, H100/H200"}


def round_up(x: int, unit: int) -> int:
    return -(-x // unit) * unit


def occupancy(limits: ArchLimits, block_threads: int, regs: int, static_smem: int,
              dynamic_smem: int = 0, barriers: int = 0) -> dict:
    """Resident blocks and warps per SM, as cudaOccMaxActiveBlocksPerMultiprocessor computes them
    with the default carveout (the most shared memory) and ``barriers`` named barriers per block.

    A block over the default 48 KB of shared memory is assumed to have opted in (the kernel sets
    cudaFuncAttributeMaxDynamicSharedMemorySize); over the opt-in maximum it cannot launch (0)."""
    warps_per_block = -(-block_threads // 32)
    by: dict[str, int | None] = {}
    by["warps"] = 0 if block_threads > limits.max_threads_per_block else limits.max_warps // warps_per_block
    by["blocks"] = limits.max_blocks
    # registers: allocated per warp in units of reg_granularity, from each sub-partition's share
    regs_per_warp = round_up(regs * 32, limits.reg_granularity)
    if regs > limits.max_regs_per_thread or regs_per_warp * round_up(warps_per_block, limits.sub_partitions) \
            > limits.regs_per_sm or regs_per_warp * warps_per_block > limits.regs_per_sm:
        by["registers"] = 0
    elif regs_per_warp == 0:
        by["registers"] = None  # no limit
    else:
        warps_per_partition = (limits.regs_per_sm // limits.sub_partitions) // regs_per_warp
        by["registers"] = warps_per_partition * limits.sub_partitions // warps_per_block
    # shared memory: static + the driver's reservation + dynamic, in units of smem_granularity
    smem_block = round_up(static_smem + limits.reserved_smem_per_block + dynamic_smem, limits.smem_granularity)
    opted_in = static_smem + dynamic_smem > limits.smem_per_block_default
    per_block_limit = (limits.smem_per_block_optin if opted_in else limits.smem_per_block_default) \
        + limits.reserved_smem_per_block
    if smem_block > per_block_limit:
        by["shared memory"] = 0
    else:
        by["shared memory"] = limits.smem_per_sm // smem_block if smem_block else None
    finite = [v for v in by.values() if v is not None]
    blocks = min(finite)
    if limits.barrier_factor and barriers > 0:
        by["barriers"] = limits.barrier_factor * limits.max_blocks // barriers
        blocks = min(blocks, by["barriers"])
    limited_by = [name for name, v in by.items() if v is not None and v == blocks]
    warps = blocks * warps_per_block
    return {
        "block_threads": block_threads, "warps_per_block": warps_per_block,
        "regs_per_warp_allocated": regs_per_warp, "smem_per_block_allocated": smem_block,
        "smem_opt_in_assumed": opted_in, "blocks_by_limit": by, "blocks_per_sm": blocks,
        "warps_per_sm": warps, "occupancy_pct": round(100.0 * warps / limits.max_warps, 1),
        "limited_by": limited_by,
    }
