// cvgl-edge: what HIP-CPU lacks to build export/csrc/selective_scan_kernel.cu for the CPU.
//
// Only for the CPU emulation of the kernel (tests, CI). A real CUDA build uses CUDA's own
// cuda_bf16.h and never sees this folder. hipify-perl keeps `#include <cuda_bf16.h>` as it
// is, names the bf16 type `hip_bfloat16` and leaves the CUDA 9 `*_sync` shuffles alone;
// HIP-CPU has none of them. This header fills exactly those gaps:
//   * hip_bfloat16: bf16 storage (the upper 16 bits of an IEEE float32), converted with
//     round-to-nearest-even like __float2bfloat16_rn (NaN kept a quiet NaN);
//   * __shfl_xor_sync(mask, v, lane_mask, width) -> HIP-CPU's __shfl_xor(v, lane_mask, width):
//     HIP-CPU runs every lane of a block, so the mask has nothing left to select;
//   * __shfl_up_sync / __shfl_sync with a width: HIP-CPU's own __shfl_up / __shfl compare the
//     source lane with the width as if every segment were the first one, so these go through
//     __shfl over the whole 64-lane tile with the segment's absolute lane computed here;
//   * min/max on ints in device code (CUDA's device overloads; std:: on the CPU);
//   * dynamic shared memory (CVGL_DYNAMIC_SHARED: HIP-CPU's HIP_DYNAMIC_SHARED; hipify leaves
//     `extern __shared__` as it is, which HIP-CPU cannot link);
//   * hipDeviceGetAttribute for the multiprocessor count (HIP-CPU has hipGetDeviceProperties only).
#pragma once

#include <hip/hip_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

struct hip_bfloat16 {
    std::uint16_t bits;
};

inline float __bfloat162float(hip_bfloat16 x) noexcept {
    const std::uint32_t word = static_cast<std::uint32_t>(x.bits) << 16;
    float value;
    std::memcpy(&value, &word, sizeof(value));
    return value;
}

inline hip_bfloat16 __float2bfloat16_rn(float value) noexcept {
    std::uint32_t word;
    std::memcpy(&word, &value, sizeof(word));
    if ((word & 0x7f800000u) == 0x7f800000u && (word & 0x007fffffu) != 0u) {
        return hip_bfloat16{static_cast<std::uint16_t>((word >> 16) | 0x0040u)};  // quiet NaN
    }
    word += 0x7fffu + ((word >> 16) & 1u);  // round to nearest, ties to even
    return hip_bfloat16{static_cast<std::uint16_t>(word >> 16)};
}

template <typename T>
inline T __shfl_xor_sync(unsigned /*mask*/, T value, int lane_mask, int width = warpSize) noexcept {
    return __shfl_xor(value, lane_mask, width);
}

namespace cvgl_hip_cpu {
// The lane of this thread in HIP-CPU's 64-lane tile (1-D blocks, as the kernel launches).
inline int tile_lane() noexcept { return static_cast<int>(threadIdx.x) % warpSize; }
}  // namespace cvgl_hip_cpu

template <typename T>
inline T __shfl_up_sync(unsigned /*mask*/, T value, unsigned delta, int width = 32) noexcept {
    const int lane = cvgl_hip_cpu::tile_lane();
    const int in_segment = lane % width;
    const int source = in_segment >= static_cast<int>(delta) ? lane - static_cast<int>(delta) : lane;
    return __shfl(value, source, warpSize);  // every lane calls it: it is a block barrier here
}

template <typename T>
inline T __shfl_sync(unsigned /*mask*/, T value, int source_lane, int width = 32) noexcept {
    const int lane = cvgl_hip_cpu::tile_lane();
    return __shfl(value, lane - lane % width + source_lane % width, warpSize);
}

#define CVGL_DYNAMIC_SHARED(type, name) HIP_DYNAMIC_SHARED(type, name)

#ifndef hipDeviceAttributeMultiprocessorCount
enum cvgl_hip_cpu_attribute { hipDeviceAttributeMultiprocessorCount };
inline hipError_t hipDeviceGetAttribute(int* value, cvgl_hip_cpu_attribute, int device) noexcept {
    hipDeviceProp_t properties;
    const hipError_t err = hipGetDeviceProperties(&properties, device);
    if (err == hipSuccess) *value = properties.multiProcessorCount;
    return err;
}
#endif

using std::max;
using std::min;
