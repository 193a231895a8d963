// cvgl-edge: selective-scan forward kernel (Mamba semantics), one launch per scan.
// See selective_scan.cuh for the contract. Written for cvgl-edge; no third-party code.
//
// Design (for the memory roofline; docs/export.md, "The selective scan kernel"):
//   * A thread owns one channel and ALL its states (h[16] in registers) over a run of
//     consecutive time steps, so a time step needs no cross-lane reduction: per (c, t, n)
//     update it does x = dt * a[n], ex2(x), dtu * B[n], h = fma(.., h, ..), y = fma(C[n], h, y).
//   * B[t][0..15] and C[t][0..15] sit in shared memory as one 128-byte row per time step and
//     are read with 16-byte loads; the threads of a channel group read the same row, so the
//     loads are broadcasts.
//   * Time is split over `split` (K = 1..32, a power of two) consecutive lanes per channel
//     when batch x dim alone cannot fill the GPU (batch 1 on a large GPU): each lane first
//     scans its run from h = 0 (phase 1), the K lanes combine their runs with a shuffle scan
//     over (sum of dt, h) pairs (phase 2: a run's decay is exp2(a[n] * sum dt)), and each lane
//     rescans its run from the state it now knows (phase 3). K = 1 is phase 3 alone.
//   * A block is 128 threads = 128 / K channels x K lanes; it walks time in tiles of K x steps
//     and stages each tile (u, dt = softplus(delta + bias) computed once per (c, t), B, C) in
//     shared memory with 16-byte global loads wherever the row allows; the output (with the
//     D skip and the silu(z) gate) leaves the same way.
// Reverse direction = the same scan over reversed time: staging maps physical to logical steps.
#include "selective_scan.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <stdint.h>

// Shared memory declared with a size chosen per launch; HIP-CPU's bridge header (tests)
// provides its own form of this declaration.
#ifndef CVGL_DYNAMIC_SHARED
#define CVGL_DYNAMIC_SHARED(type, name) extern __shared__ __align__(16) type name[]  // float4 reads
#endif

namespace {

constexpr int kStates = CVGL_SCAN_MAX_DSTATE;  // 16: h[kStates] per thread
constexpr int kThreads = 128;                 // per block
constexpr int kMaxSplit = 32;                 // lanes per channel: at most a warp
constexpr int kMaxSteps = 33;                 // time steps per lane per tile
constexpr int kMinStepsPerLane = 8;           // the automatic split keeps runs at least this long
constexpr int kBCRow = 2 * kStates;           // floats per time step in the B/C tile
constexpr int kSmemLimit = 48 * 1024;         // no opt-in attribute needed below this
constexpr float kLog2e = 1.4426950408889634f;

static_assert(kStates == 16, "B/C rows are four 16-byte vectors of B then four of C");
static_assert(kThreads % kMaxSplit == 0, "a channel's lanes never straddle a warp");

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T> __device__ __forceinline__ T from_float(float x);
template <> __device__ __forceinline__ float from_float<float>(float x) { return x; }
template <> __device__ __forceinline__ __half from_float<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
    return __float2bfloat16_rn(x);
}

// A, D and delta_bias: fp32 normally, but a graph cast wholesale to fp16/bf16 may store them
// in the data dtype; they are read a handful of times per channel, so a runtime switch is cheap.
__device__ __forceinline__ float load_param(const void* p, int64_t i, int dtype) {
    if (dtype == CVGL_SCAN_FP16) return __half2float(static_cast<const __half*>(p)[i]);
    if (dtype == CVGL_SCAN_BF16) return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    return static_cast<const float*>(p)[i];
}

__device__ __forceinline__ float softplus(float x) {
    // torch.nn.functional.softplus with beta = 1, threshold = 20
    return x > 20.f ? x : log1pf(expf(x));
}

// 2^x on the MUFU unit (one instruction; relative error about 2^-22, denormal results flush
// to 0). The CPU emulation has no PTX and uses the library function.
__device__ __forceinline__ float mufu_exp2(float x) {
#if defined(__CUDA_ARCH__)
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
#else
    return exp2f(x);
#endif
}

// The B/C tile: row ls (a logical time step) holds B[0..15] in 16-byte vectors 0-3 and
// C[0..15] in vectors 4-7, vector q stored at position q ^ (ls & 7) so that eight lanes
// reading (or writing) eight different rows hit eight different bank groups.
__device__ __forceinline__ int bc_index(int ls, int vector, int component) {
    return ls * kBCRow + ((vector ^ (ls & 7)) << 2) + component;
}

// 16 bytes of T: the unit of the vectorised global loads and stores.
template <typename T>
struct alignas(16) Pack {
    static constexpr int kCount = 16 / static_cast<int>(sizeof(T));
    T v[kCount];
};

// One tile of time: logical steps [t0, t0 + tile) (logical = reversed when direction = 1),
// physically [lo, hi) (the part inside the sequence; the last tile may be shorter).
struct Tile {
    int t0, tile, lo, hi;
    bool reverse;
    int L;
    __device__ int logical(int t) const { return (reverse ? L - 1 - t : t) - t0; }
};

__device__ __forceinline__ Tile make_tile(int t0, int tile, int L, bool reverse) {
    Tile s;
    s.t0 = t0;
    s.tile = tile;
    s.L = L;
    s.reverse = reverse;
    const int end = min(t0 + tile, L);
    s.lo = reverse ? L - end : t0;
    s.hi = reverse ? L - t0 : end;
    return s;
}

// Visits each physical step of [tile.lo, tile.hi) of `rows` rows: visit(row, t, value).
// Rows are split into 16-byte windows aligned in memory; a window wholly inside the range is
// one vector load, the (at most two) windows at the ends are loaded element by element.
// `row_ptr(row)` gives the row's first element, or nullptr for a row outside the tensor.
template <typename T, typename RowPtr, typename Visit>
__device__ __forceinline__ void load_rows(int rows, const Tile& tile, RowPtr row_ptr, Visit visit) {
    constexpr int kVec = Pack<T>::kCount;
    const int windows = (tile.hi - tile.lo + kVec - 1) / kVec + 1;
    for (int item = threadIdx.x; item < rows * windows; item += kThreads) {
        const int row = item / windows, w = item - row * windows;
        const T* base = row_ptr(row);
        if (base == nullptr) continue;
        const int skew = static_cast<int>((reinterpret_cast<uintptr_t>(base + tile.lo) & 15) / sizeof(T));
        const int start = tile.lo - skew + w * kVec;
        if (start >= tile.hi) continue;
        if (start >= tile.lo && start + kVec <= tile.hi) {
            const Pack<T> pack = *reinterpret_cast<const Pack<T>*>(base + start);
#pragma unroll
            for (int e = 0; e < kVec; ++e) visit(row, start + e, to_float(pack.v[e]));
        } else {
            for (int e = 0; e < kVec; ++e) {
                const int t = start + e;
                if (t >= tile.lo && t < tile.hi) visit(row, t, to_float(base[t]));
            }
        }
    }
}

// The rest of the selective_scan_fwd_kernel's arguments, fixed per launch.
struct Plan {
    int split;     // lanes per channel (K)
    int steps;     // time steps per lane per tile (odd: the lanes' runs then start in
                   // different shared-memory banks)
    int tile;      // split * steps
    int channels;  // per block: kThreads / split
};

template <typename T>
__global__ void __launch_bounds__(kThreads)
selective_scan_fwd_kernel(const SelectiveScanParams p, const Plan plan) {
    CVGL_DYNAMIC_SHARED(float, smem);
    const int K = plan.split, steps = plan.steps, tile_len = plan.tile;
    float* s_u = smem;                              // [channels][tile]: u
    float* s_dt = s_u + kThreads * steps;           // [channels][tile]: dt, then y in place
    float* s_bc = s_dt + kThreads * steps;          // [tile][32]: B and C (bc_index)

    const int cblocks = (p.dim + plan.channels - 1) / plan.channels;
    const int b = blockIdx.x / cblocks;
    const int c0 = (blockIdx.x % cblocks) * plan.channels;
    const int tid = threadIdx.x;
    const int lane_k = tid % K;     // which run of the tile this thread scans
    const int slot = tid / K;       // which channel of the block
    const int c = c0 + slot;
    const int L = p.seqlen, N = p.dstate;
    const bool reverse = p.direction != 0;
    const unsigned kAll = 0xffffffffu;

    const T* __restrict__ u = static_cast<const T*>(p.u) + b * p.u_batch_stride;
    const T* __restrict__ delta = static_cast<const T*>(p.delta) + b * p.delta_batch_stride;
    const T* __restrict__ z = p.has_z ? static_cast<const T*>(p.z) + b * p.z_batch_stride : nullptr;
    const T* __restrict__ Bm = static_cast<const T*>(p.B) + b * p.B_batch_stride;
    const T* __restrict__ Cm = static_cast<const T*>(p.C) + b * p.C_batch_stride;
    T* __restrict__ out = static_cast<T*>(p.out) + b * p.out_batch_stride;

    // A pre-scaled by log2(e): exp(dt * A) = exp2(dt * a). States n >= N and channels past
    // dim keep h = 0: their B (and u) are zeros in shared memory.
    float a[kStates];
#pragma unroll
    for (int n = 0; n < kStates; ++n)
        a[n] = (c < p.dim && n < N) ? load_param(p.A, (int64_t)c * N + n, p.param_dtype) * kLog2e : 0.f;
    float carry[kStates];  // the state at the start of the tile (same in the channel's K lanes)
#pragma unroll
    for (int n = 0; n < kStates; ++n) carry[n] = 0.f;

    // Rows the staging never writes (channels past dim, states past dstate) read 0: h stays 0
    // there (B = 0) and adds nothing to y (C = 0). Shared memory starts with garbage, maybe NaN.
    const int smem_floats = 2 * kThreads * steps + kBCRow * tile_len;
    for (int i = tid; i < smem_floats; i += kThreads) smem[i] = 0.f;
    __syncthreads();

    const int dim = p.dim;
    const auto channel_row = [=](const T* base, int64_t dim_stride) {
        return [=](int row) -> const T* { return c0 + row < dim ? base + (c0 + row) * dim_stride : nullptr; };
    };
    const auto state_row = [=](const T* base, int64_t dstate_stride) {
        return [=](int row) -> const T* { return row < N ? base + row * dstate_stride : nullptr; };
    };

    for (int t0 = 0; t0 < L; t0 += tile_len) {
        const Tile tile = make_tile(t0, tile_len, L, reverse);

        // 1. stage the tile (fp32 in shared memory). The last tile's steps past L keep the
        //    previous tile's values: they come after every real step in scan order, so no real
        //    output or state depends on them, and they are never stored.
        load_rows<T>(plan.channels, tile, channel_row(u, p.u_dim_stride), [&](int row, int t, float v) {
            s_u[row * tile_len + tile.logical(t)] = v;
        });
        load_rows<T>(plan.channels, tile, channel_row(delta, p.delta_dim_stride), [&](int row, int t, float v) {
            if (p.has_delta_bias) v += load_param(p.delta_bias, c0 + row, p.param_dtype);
            if (p.delta_softplus) v = softplus(v);
            s_dt[row * tile_len + tile.logical(t)] = v;
        });
        load_rows<T>(N, tile, state_row(Bm, p.B_dstate_stride), [&](int n, int t, float v) {
            s_bc[bc_index(tile.logical(t), n >> 2, n & 3)] = v;
        });
        load_rows<T>(N, tile, state_row(Cm, p.C_dstate_stride), [&](int n, int t, float v) {
            s_bc[bc_index(tile.logical(t), 4 + (n >> 2), n & 3)] = v;
        });
        __syncthreads();

        const int first = tid * steps;      // this lane's run: s_u/s_dt[first + i]
        const int ls0 = lane_k * steps;     // and B/C rows ls0 + i
        float h[kStates];

        // 2. phases 1 and 2 (split > 1 only): the state each lane's run starts from
        if (K > 1) {
            float run_dt = 0.f;
#pragma unroll
            for (int n = 0; n < kStates; ++n) h[n] = 0.f;
            // cvgl-sass: updates-per-iteration=16
#pragma unroll 1
            for (int i = 0; i < steps; ++i) {
                const float dt = s_dt[first + i];
                const float dtu = dt * s_u[first + i];
                const int ls = ls0 + i;
                run_dt += dt;
#pragma unroll
                for (int q = 0; q < 4; ++q) {
                    const float4 bq = *reinterpret_cast<const float4*>(s_bc + bc_index(ls, q, 0));
                    const float bv[4] = {bq.x, bq.y, bq.z, bq.w};
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        const int n = 4 * q + e;
                        h[n] = fmaf(mufu_exp2(dt * a[n]), h[n], dtu * bv[e]);
                    }
                }
            }
            // inclusive scan over the K runs of (sum dt, h): (S1, h1) then (S2, h2) ->
            // (S1 + S2, exp2(a * S2) * h1 + h2)
            for (int offset = 1; offset < K; offset <<= 1) {
                const float left_dt = __shfl_up_sync(kAll, run_dt, offset, K);
#pragma unroll
                for (int n = 0; n < kStates; ++n) {
                    const float left = __shfl_up_sync(kAll, h[n], offset, K);
                    if (lane_k >= offset) h[n] = fmaf(mufu_exp2(a[n] * run_dt), left, h[n]);
                }
                if (lane_k >= offset) run_dt += left_dt;
            }
            // exclusive: the runs before this one, applied to the tile's carried-in state
            float before_dt = __shfl_up_sync(kAll, run_dt, 1, K);
            if (lane_k == 0) before_dt = 0.f;
#pragma unroll
            for (int n = 0; n < kStates; ++n) {
                float before = __shfl_up_sync(kAll, h[n], 1, K);
                if (lane_k == 0) before = 0.f;
                h[n] = fmaf(mufu_exp2(a[n] * before_dt), carry[n], before);
            }
        } else {
#pragma unroll
            for (int n = 0; n < kStates; ++n) h[n] = carry[n];
        }

        // 3. the recurrence over this lane's run, y written over dt in place (16 independent
        //    state chains give the ILP; unrolling time would only add registers)
        // cvgl-sass: updates-per-iteration=16
#pragma unroll 1
        for (int i = 0; i < steps; ++i) {
            const float dt = s_dt[first + i];
            const float dtu = dt * s_u[first + i];
            const int ls = ls0 + i;
            float y = 0.f;
#pragma unroll
            for (int q = 0; q < 4; ++q) {
                const float4 bq = *reinterpret_cast<const float4*>(s_bc + bc_index(ls, q, 0));
                const float4 cq = *reinterpret_cast<const float4*>(s_bc + bc_index(ls, 4 + q, 0));
                const float bv[4] = {bq.x, bq.y, bq.z, bq.w};
                const float cv[4] = {cq.x, cq.y, cq.z, cq.w};
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const int n = 4 * q + e;
                    h[n] = fmaf(mufu_exp2(dt * a[n]), h[n], dtu * bv[e]);
                    y = fmaf(cv[e], h[n], y);
                }
            }
            s_dt[first + i] = y;
        }
        // the state after the tile = the last run's final state
#pragma unroll
        for (int n = 0; n < kStates; ++n) carry[n] = K > 1 ? __shfl_sync(kAll, h[n], K - 1, K) : h[n];
        __syncthreads();

        // 4. epilogue: D skip, silu(z) gate, 16-byte stores where the row allows
        {
            constexpr int kVec = Pack<T>::kCount;
            const int windows = (tile.hi - tile.lo + kVec - 1) / kVec + 1;
            for (int item = tid; item < plan.channels * windows; item += kThreads) {
                const int row = item / windows, w = item - row * windows;
                const int ch = c0 + row;
                if (ch >= p.dim) continue;
                T* orow = out + ch * p.out_dim_stride;
                const T* zrow = p.has_z ? z + ch * p.z_dim_stride : nullptr;
                const float d = p.has_D ? load_param(p.D, ch, p.param_dtype) : 0.f;
                const int skew = static_cast<int>((reinterpret_cast<uintptr_t>(orow + tile.lo) & 15) / sizeof(T));
                const int start = tile.lo - skew + w * kVec;
                if (start >= tile.hi) continue;
                const auto value = [&](int t, float zz) {
                    const int idx = row * tile_len + tile.logical(t);
                    float y = fmaf(d, s_u[idx], s_dt[idx]);
                    if (zrow) y *= zz / (1.f + expf(-zz));
                    return from_float<T>(y);
                };
                if (start >= tile.lo && start + kVec <= tile.hi) {
                    Pack<T> zs, ys;
                    const bool z_aligned = zrow && ((reinterpret_cast<uintptr_t>(zrow + start) & 15) == 0);
                    if (z_aligned) zs = *reinterpret_cast<const Pack<T>*>(zrow + start);
#pragma unroll
                    for (int e = 0; e < kVec; ++e) {
                        const float zz = zrow ? to_float(z_aligned ? zs.v[e] : zrow[start + e]) : 0.f;
                        ys.v[e] = value(start + e, zz);
                    }
                    *reinterpret_cast<Pack<T>*>(orow + start) = ys;
                } else {
                    for (int e = 0; e < kVec; ++e) {
                        const int t = start + e;
                        if (t >= tile.lo && t < tile.hi) orow[t] = value(t, zrow ? to_float(zrow[t]) : 0.f);
                    }
                }
            }
        }
        // before the next tile is staged over s_u, s_dt and s_bc
        __syncthreads();
    }
}

// ------------------------------------------------------------------------------ host side
bool is_power_of_two(int x) { return x > 0 && (x & (x - 1)) == 0; }

// The largest odd run length whose tile fits the shared-memory limit at this split.
int max_steps(int split) {
    const int fit = kSmemLimit / static_cast<int>(sizeof(float)) / (2 * kThreads + kBCRow * split);
    const int steps = fit < kMaxSteps ? fit : kMaxSteps;
    return (steps % 2 == 1) ? steps : steps - 1;
}

int sm_count() {
    int device = 0, count = 0;
    if (cudaGetDevice(&device) != cudaSuccess) return 1;
    if (cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) return 1;
    return count > 0 ? count : 1;
}

Plan make_plan(const SelectiveScanParams& p, int split, int steps) {
    Plan plan;
    plan.split = split;
    plan.channels = kThreads / split;
    if (steps == 0) {
        // balance the tiles: as few as the limit allows, of equal length, odd runs
        const int cap = max_steps(split);
        const int tiles = (p.seqlen + split * cap - 1) / (split * cap);
        steps = (p.seqlen + tiles * split - 1) / (tiles * split);
        if (steps % 2 == 0 && steps < cap) ++steps;
    }
    plan.steps = steps;
    plan.tile = split * steps;
    return plan;
}

size_t smem_bytes(const Plan& plan) {
    return sizeof(float) * (2 * static_cast<size_t>(kThreads) * plan.steps + static_cast<size_t>(kBCRow) * plan.tile);
}

}  // namespace

extern "C" int cvgl_selective_scan_choose_split(int batch, int dim, int seqlen, int sm_count) {
    // Enough resident threads to keep every SM busy (8 warps each), without runs shorter
    // than kMinStepsPerLane steps; large batches keep split 1 (no rescan).
    const int64_t channels = static_cast<int64_t>(batch > 0 ? batch : 1) * (dim > 0 ? dim : 1);
    const int64_t wanted = static_cast<int64_t>(sm_count > 0 ? sm_count : 1) * 8 * 32;
    int split = 1;
    while (split < kMaxSplit && channels * split < wanted &&
           static_cast<int64_t>(split) * 2 * kMinStepsPerLane <= seqlen)
        split *= 2;
    return split;
}

extern "C" void cvgl_selective_scan_set_contiguous_strides(SelectiveScanParams* p) {
    if (!p) return;
    const int64_t L = p->seqlen, Dc = p->dim, N = p->dstate;
    p->u_batch_stride = p->delta_batch_stride = p->z_batch_stride = p->out_batch_stride = Dc * L;
    p->u_dim_stride = p->delta_dim_stride = p->z_dim_stride = p->out_dim_stride = L;
    p->B_batch_stride = p->C_batch_stride = N * L;
    p->B_dstate_stride = p->C_dstate_stride = L;
}

extern "C" int cvgl_selective_scan_forward_split(const SelectiveScanParams* p, cudaStream_t stream, int split,
                                                 int steps) {
    if (!p) return CVGL_SCAN_ERR_NULL;
    if (p->abi_version != CVGL_SCAN_ABI_VERSION) return CVGL_SCAN_ERR_SHAPE;
    if (p->batch < 0 || p->dim < 0 || p->seqlen < 0 || p->dstate < 1 ||
        p->dstate > CVGL_SCAN_MAX_DSTATE)
        return CVGL_SCAN_ERR_SHAPE;
    if (split != 0 && (!is_power_of_two(split) || split > kMaxSplit)) return CVGL_SCAN_ERR_SHAPE;
    if (steps < 0 || (steps != 0 && split == 0) || (steps != 0 && steps > max_steps(split)))
        return CVGL_SCAN_ERR_SHAPE;
    const auto known = [](int t) {
        return t == CVGL_SCAN_FP32 || t == CVGL_SCAN_FP16 || t == CVGL_SCAN_BF16;
    };
    if (!known(p->dtype) || !known(p->param_dtype)) return CVGL_SCAN_ERR_DTYPE;
    if (p->batch == 0 || p->dim == 0 || p->seqlen == 0) return CVGL_SCAN_OK;
    if (!p->u || !p->delta || !p->B || !p->C || !p->out || !p->A ||
        (p->has_D && !p->D) || (p->has_z && !p->z) || (p->has_delta_bias && !p->delta_bias))
        return CVGL_SCAN_ERR_NULL;
    if (split == 0) split = cvgl_selective_scan_choose_split(p->batch, p->dim, p->seqlen, sm_count());
    const Plan plan = make_plan(*p, split, steps);
    const int64_t cblocks = (static_cast<int64_t>(p->dim) + plan.channels - 1) / plan.channels;  // no int32 overflow
    const int64_t blocks = cblocks * p->batch;
    if (blocks > 0x7fffffffLL) return CVGL_SCAN_ERR_SHAPE;
    const dim3 grid(static_cast<unsigned>(blocks)), block(kThreads);
    const size_t smem = smem_bytes(plan);
    if (p->dtype == CVGL_SCAN_FP32)
        selective_scan_fwd_kernel<float><<<grid, block, smem, stream>>>(*p, plan);
    else if (p->dtype == CVGL_SCAN_FP16)
        selective_scan_fwd_kernel<__half><<<grid, block, smem, stream>>>(*p, plan);
    else
        selective_scan_fwd_kernel<__nv_bfloat16><<<grid, block, smem, stream>>>(*p, plan);
    const cudaError_t err = cudaGetLastError();
    return err == cudaSuccess ? CVGL_SCAN_OK : CVGL_SCAN_ERR_CUDA_BASE + static_cast<int>(err);
}

extern "C" int cvgl_selective_scan_forward(const SelectiveScanParams* p, cudaStream_t stream) {
    return cvgl_selective_scan_forward_split(p, stream, 0, 0);
}

extern "C" const char* cvgl_selective_scan_error_string(int code) {
    switch (code) {
        case CVGL_SCAN_OK: return "success";
        case CVGL_SCAN_ERR_NULL: return "a required pointer is NULL";
        case CVGL_SCAN_ERR_SHAPE:
            return "bad shape, dstate out of 1..16, split/steps out of range or ABI version mismatch";
        case CVGL_SCAN_ERR_DTYPE: return "unsupported dtype (fp32, fp16 or bf16 only)";
        default:
            if (code >= CVGL_SCAN_ERR_CUDA_BASE)
                return cudaGetErrorString(static_cast<cudaError_t>(code - CVGL_SCAN_ERR_CUDA_BASE));
            return "unknown error";
    }
}
