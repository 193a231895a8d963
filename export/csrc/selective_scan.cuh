// cvgl-edge: C ABI of the native selective-scan forward kernel.
//
// Host-only header (no device code): include it from the TensorRT plugin (.cpp), from a
// torch extension, from ctypes-built shared libraries, or from the kernel itself.
//
// Semantics (cvgl_edge/ops/reference.py; docs/export.md, "The selective scan"):
//   u, delta, z, out : (batch, dim, seqlen)      dtype = params.dtype (fp32, fp16 or bf16)
//   A                : (dim, dstate)             params.param_dtype (fp32 normally), contiguous
//   B, C             : (batch, dstate, seqlen)   dtype = params.dtype
//   D, delta_bias    : (dim,)                    params.param_dtype, contiguous (ignored when
//                                                the has_ flag is 0)
// Whatever the storage dtypes, all arithmetic is fp32 (state, dt, exp, accumulation).
//   dt    = delta + delta_bias (if has_delta_bias); dt = softplus(dt) (if delta_softplus)
//   h_t   = exp(dt_t * A) * h_{t-1} + dt_t * B_t * u_t        (h starts at 0, fp32 state)
//   y_t   = sum_n C_t[n] * h_t[n] + D * u_t                   (fp32 accumulation)
//   out_t = y_t * silu(z_t)  (if has_z), stored in params.dtype
//   direction = 1 scans t = seqlen-1 .. 0 (the state runs backwards in time).
//
// Layout: the last (seqlen) axis of u, delta, z, B, C and out must be contiguous (stride 1).
// The batch and channel/state strides are free (in elements, not bytes), so a view that
// slices channels works; contiguous tensors have
//   *_batch_stride = dim * seqlen, *_dim_stride = seqlen   (u, delta, z, out)
//   *_batch_stride = dstate * seqlen, *_dstate_stride = seqlen (B, C).
// TensorRT linear-format tensors are contiguous. out must not alias u, delta, z, B or C.
//
// dstate must be 1..CVGL_SCAN_MAX_DSTATE (a power of two <= 16 is fastest; 16 is Mamba's).
#ifndef CVGL_SELECTIVE_SCAN_CUH
#define CVGL_SELECTIVE_SCAN_CUH

#include <stdint.h>
#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CVGL_SCAN_ABI_VERSION 1
#define CVGL_SCAN_MAX_DSTATE 16

typedef enum CvglScanDtype {
    CVGL_SCAN_FP32 = 0,
    CVGL_SCAN_FP16 = 1,
    CVGL_SCAN_BF16 = 2  // storage only; converted to fp32 on load (works on sm_75 too)
} CvglScanDtype;

// Error codes returned by cvgl_selective_scan_forward (0 = success). A CUDA launch error is
// returned as CVGL_SCAN_ERR_CUDA_BASE + (int)cudaError_t.
enum {
    CVGL_SCAN_OK = 0,
    CVGL_SCAN_ERR_NULL = -1,        // params or a required pointer is NULL
    CVGL_SCAN_ERR_SHAPE = -2,       // batch/dim/seqlen negative, or dstate out of range
    CVGL_SCAN_ERR_DTYPE = -3,       // unknown dtype
    CVGL_SCAN_ERR_CUDA_BASE = 1000  // + cudaError_t of the launch
};

typedef struct SelectiveScanParams {
    int32_t abi_version;  // must be CVGL_SCAN_ABI_VERSION
    int32_t dtype;        // CvglScanDtype of u, delta, B, C, z and out
    int32_t batch, dim, dstate, seqlen;
    int32_t direction;       // 0: forward in time, 1: reverse
    int32_t delta_softplus;  // 1: softplus(delta + bias), threshold 20 like torch
    int32_t has_D, has_z, has_delta_bias;
    int32_t param_dtype;  // CvglScanDtype of A, D and delta_bias (CVGL_SCAN_FP32 normally)

    const void* u;     int64_t u_batch_stride, u_dim_stride;
    const void* delta; int64_t delta_batch_stride, delta_dim_stride;
    const void* z;     int64_t z_batch_stride, z_dim_stride;      // may be NULL if !has_z
    const void* B;     int64_t B_batch_stride, B_dstate_stride;
    const void* C;     int64_t C_batch_stride, C_dstate_stride;
    void* out;         int64_t out_batch_stride, out_dim_stride;
    const void* A;           // (dim, dstate) contiguous
    const void* D;           // (dim,), may be NULL if !has_D
    const void* delta_bias;  // (dim,), may be NULL if !has_delta_bias
} SelectiveScanParams;

// Fills the strides for contiguous tensors from batch/dim/dstate/seqlen; nothing else.
void cvgl_selective_scan_set_contiguous_strides(SelectiveScanParams* p);

// Enqueues the scan on `stream` (one kernel launch; nothing is launched when batch, dim or
// seqlen is 0). Asynchronous: returns after the launch, not after the kernel finished.
int cvgl_selective_scan_forward(const SelectiveScanParams* params, cudaStream_t stream);

// The same scan with the kernel's time split chosen by the caller (benchmarks, tests):
// split = lanes per channel (a power of two 1..32; 0 = automatic, as cvgl_selective_scan_forward),
// steps = time steps per lane per tile (0 = automatic; otherwise 1..the shared-memory limit for
// that split, and split must be given). Other values return CVGL_SCAN_ERR_SHAPE. Same results
// up to fp32 rounding whatever the split.
int cvgl_selective_scan_forward_split(const SelectiveScanParams* params, cudaStream_t stream, int split,
                                      int steps);

// The automatic split for a scan of batch x dim channels over seqlen steps on a GPU with
// sm_count multiprocessors: 1 when the channels alone fill the GPU, more lanes per channel
// (up to 32) for small batches. Pure function, exposed so that reports can name the choice.
int cvgl_selective_scan_choose_split(int batch, int dim, int seqlen, int sm_count);

// Human-readable text for a return code of cvgl_selective_scan_forward.
const char* cvgl_selective_scan_error_string(int code);

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // CVGL_SELECTIVE_SCAN_CUH
