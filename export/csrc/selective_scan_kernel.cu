// cvgl-edge: selective-scan forward kernel (Mamba semantics), one launch per scan.
// See selective_scan.cuh for the contract. Written for cvgl-edge; no third-party code.
//
// Thread mapping
//   block  = kChannels (8) channels of one batch element, 128 threads
//   thread = one (channel, state n) pair: 16 lanes per channel, 2 channels per warp
//   grid.x = ceil(dim / 8) * batch
// Time is walked sequentially inside the kernel in chunks of kChunk (64) steps:
//   1. the block stages u, dt (= softplus(delta + bias), computed once per (c, t) rather than
//      once per state), z, B and C of the chunk in shared memory with coalesced loads
//      along the contiguous seqlen axis, converting to fp32;
//   2. each thread advances its state h (fp32, in a register) over the chunk:
//        h = exp2(dt * A * log2 e) * h + dt * B[n] * u;  part = C[n] * h
//      and the 16 lanes of a channel reduce part with 4 xor shuffles; lane 0 writes y;
//   3. the block applies D * u and silu(z) to the chunk and stores it coalesced.
// Reverse direction walks the chunks from the end and each chunk backwards.
#include "selective_scan.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace {

constexpr int kLanes = 16;                  // lanes (states) per channel
constexpr int kChannels = 8;                // channels per block
constexpr int kThreads = kLanes * kChannels;  // 128
constexpr int kChunk = 64;                  // time steps staged per round
constexpr int kPad = kChunk + 1;            // row stride: avoids 16-way bank conflicts on B/C
constexpr float kLog2e = 1.4426950408889634f;

static_assert(kLanes == CVGL_SCAN_MAX_DSTATE, "one lane per state");
static_assert(kThreads % 32 == 0, "whole warps");

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
// in the data dtype; they are read a handful of times per element, so a runtime switch is cheap.
__device__ __forceinline__ float load_param(const void* p, int64_t i, int dtype) {
    if (dtype == CVGL_SCAN_FP16) return __half2float(static_cast<const __half*>(p)[i]);
    if (dtype == CVGL_SCAN_BF16) return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    return static_cast<const float*>(p)[i];
}

__device__ __forceinline__ float softplus(float x) {
    // torch.nn.functional.softplus with beta = 1, threshold = 20
    return x > 20.f ? x : log1pf(expf(x));
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
selective_scan_fwd_kernel(const SelectiveScanParams p) {
    __shared__ float s_u[kChannels][kPad];
    __shared__ float s_dt[kChannels][kPad];
    __shared__ float s_z[kChannels][kPad];
    __shared__ float s_y[kChannels][kPad];
    __shared__ float s_B[kLanes][kPad];
    __shared__ float s_C[kLanes][kPad];

    const int cblocks = (p.dim + kChannels - 1) / kChannels;
    const int b = blockIdx.x / cblocks;
    const int c0 = (blockIdx.x % cblocks) * kChannels;
    const int tid = threadIdx.x;
    const int lc = tid / kLanes;   // local channel of this thread
    const int n = tid % kLanes;    // state index of this thread
    const int c = c0 + lc;
    const int L = p.seqlen;
    const bool reverse = p.direction != 0;

    const T* __restrict__ u = static_cast<const T*>(p.u) + b * p.u_batch_stride;
    const T* __restrict__ delta = static_cast<const T*>(p.delta) + b * p.delta_batch_stride;
    const T* __restrict__ z = p.has_z ? static_cast<const T*>(p.z) + b * p.z_batch_stride : nullptr;
    const T* __restrict__ Bm = static_cast<const T*>(p.B) + b * p.B_batch_stride;
    const T* __restrict__ Cm = static_cast<const T*>(p.C) + b * p.C_batch_stride;
    T* __restrict__ out = static_cast<T*>(p.out) + b * p.out_batch_stride;

    // A pre-scaled by log2(e) so exp(dt * A) = exp2(dt * a). Inactive lanes keep h = 0
    // because their B (and u for missing channels) are staged as zeros.
    const float a = (c < p.dim && n < p.dstate) ? load_param(p.A, (int64_t)c * p.dstate + n, p.param_dtype) * kLog2e : 0.f;
    float h = 0.f;

    const int nchunks = (L + kChunk - 1) / kChunk;
    for (int k = 0; k < nchunks; ++k) {
        const int lo = reverse ? max(L - (k + 1) * kChunk, 0) : k * kChunk;
        const int hi = reverse ? L - k * kChunk : min(L, (k + 1) * kChunk);
        const int len = hi - lo;

        // 1. stage the chunk (fp32 in shared memory)
        for (int i = tid; i < kChannels * kChunk; i += kThreads) {
            const int cc = i / kChunk, t = i % kChunk, ch = c0 + cc;
            float uu = 0.f, dd = 0.f, zz = 0.f;
            if (t < len && ch < p.dim) {
                uu = to_float(u[ch * p.u_dim_stride + lo + t]);
                dd = to_float(delta[ch * p.delta_dim_stride + lo + t]);
                if (p.has_delta_bias) dd += load_param(p.delta_bias, ch, p.param_dtype);
                if (p.delta_softplus) dd = softplus(dd);
                if (p.has_z) zz = to_float(z[ch * p.z_dim_stride + lo + t]);
            }
            s_u[cc][t] = uu;
            s_dt[cc][t] = dd;
            s_z[cc][t] = zz;
        }
        for (int i = tid; i < kLanes * kChunk; i += kThreads) {
            const int nn = i / kChunk, t = i % kChunk;
            float bb = 0.f, cv = 0.f;
            if (t < len && nn < p.dstate) {
                bb = to_float(Bm[nn * p.B_dstate_stride + lo + t]);
                cv = to_float(Cm[nn * p.C_dstate_stride + lo + t]);
            }
            s_B[nn][t] = bb;
            s_C[nn][t] = cv;
        }
        __syncthreads();

        // 2. the recurrence: only the FMA on h is on the loop-carried path
#pragma unroll 4
        for (int s = 0; s < len; ++s) {
            const int t = reverse ? len - 1 - s : s;
            const float dt = s_dt[lc][t];
            const float dA = exp2f(dt * a);
            h = fmaf(dA, h, dt * s_B[n][t] * s_u[lc][t]);
            float part = h * s_C[n][t];
            part += __shfl_xor_sync(0xffffffffu, part, 8, kLanes);
            part += __shfl_xor_sync(0xffffffffu, part, 4, kLanes);
            part += __shfl_xor_sync(0xffffffffu, part, 2, kLanes);
            part += __shfl_xor_sync(0xffffffffu, part, 1, kLanes);
            if (n == 0) s_y[lc][t] = part;
        }
        __syncthreads();

        // 3. epilogue: D skip, silu(z) gate, coalesced store
        for (int i = tid; i < kChannels * kChunk; i += kThreads) {
            const int cc = i / kChunk, t = i % kChunk, ch = c0 + cc;
            if (t < len && ch < p.dim) {
                float y = s_y[cc][t];
                if (p.has_D) y = fmaf(load_param(p.D, ch, p.param_dtype), s_u[cc][t], y);
                if (p.has_z) {
                    const float zz = s_z[cc][t];
                    y *= zz / (1.f + expf(-zz));
                }
                out[ch * p.out_dim_stride + lo + t] = from_float<T>(y);
            }
        }
        // Before the next chunk is staged. Not needed today (each thread stages exactly the
        // elements it alone read in the epilogue, and s_y is written only after the next
        // staging barrier), but kept so that a change of either index mapping cannot race.
        __syncthreads();
    }
}

}  // namespace

extern "C" void cvgl_selective_scan_set_contiguous_strides(SelectiveScanParams* p) {
    if (!p) return;
    const int64_t L = p->seqlen, Dc = p->dim, N = p->dstate;
    p->u_batch_stride = p->delta_batch_stride = p->z_batch_stride = p->out_batch_stride = Dc * L;
    p->u_dim_stride = p->delta_dim_stride = p->z_dim_stride = p->out_dim_stride = L;
    p->B_batch_stride = p->C_batch_stride = N * L;
    p->B_dstate_stride = p->C_dstate_stride = L;
}

extern "C" int cvgl_selective_scan_forward(const SelectiveScanParams* p, cudaStream_t stream) {
    if (!p) return CVGL_SCAN_ERR_NULL;
    if (p->abi_version != CVGL_SCAN_ABI_VERSION) return CVGL_SCAN_ERR_SHAPE;
    if (p->batch < 0 || p->dim < 0 || p->seqlen < 0 || p->dstate < 1 ||
        p->dstate > CVGL_SCAN_MAX_DSTATE)
        return CVGL_SCAN_ERR_SHAPE;
    const auto known = [](int t) {
        return t == CVGL_SCAN_FP32 || t == CVGL_SCAN_FP16 || t == CVGL_SCAN_BF16;
    };
    if (!known(p->dtype) || !known(p->param_dtype)) return CVGL_SCAN_ERR_DTYPE;
    if (p->batch == 0 || p->dim == 0 || p->seqlen == 0) return CVGL_SCAN_OK;
    if (!p->u || !p->delta || !p->B || !p->C || !p->out || !p->A ||
        (p->has_D && !p->D) || (p->has_z && !p->z) || (p->has_delta_bias && !p->delta_bias))
        return CVGL_SCAN_ERR_NULL;
    const int64_t cblocks = (static_cast<int64_t>(p->dim) + kChannels - 1) / kChannels;  // no int32 overflow
    const int64_t blocks = cblocks * p->batch;
    if (blocks > 0x7fffffffLL) return CVGL_SCAN_ERR_SHAPE;
    const dim3 grid(static_cast<unsigned>(blocks)), block(kThreads);
    if (p->dtype == CVGL_SCAN_FP32)
        selective_scan_fwd_kernel<float><<<grid, block, 0, stream>>>(*p);
    else if (p->dtype == CVGL_SCAN_FP16)
        selective_scan_fwd_kernel<__half><<<grid, block, 0, stream>>>(*p);
    else
        selective_scan_fwd_kernel<__nv_bfloat16><<<grid, block, 0, stream>>>(*p);
    const cudaError_t err = cudaGetLastError();
    return err == cudaSuccess ? CVGL_SCAN_OK : CVGL_SCAN_ERR_CUDA_BASE + static_cast<int>(err);
}

extern "C" const char* cvgl_selective_scan_error_string(int code) {
    switch (code) {
        case CVGL_SCAN_OK: return "success";
        case CVGL_SCAN_ERR_NULL: return "a required pointer is NULL";
        case CVGL_SCAN_ERR_SHAPE: return "bad shape, dstate out of 1..16 or ABI version mismatch";
        case CVGL_SCAN_ERR_DTYPE: return "unsupported dtype (fp32, fp16 or bf16 only)";
        default:
            if (code >= CVGL_SCAN_ERR_CUDA_BASE)
                return cudaGetErrorString(static_cast<cudaError_t>(code - CVGL_SCAN_ERR_CUDA_BASE));
            return "unknown error";
    }
}
