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
//   * min/max on ints in device code (CUDA's device overloads; std:: on the CPU).
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

using std::max;
using std::min;
