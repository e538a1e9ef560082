#pragma once
// IEEE binary16 conversions done in integer arithmetic, so that the CPU reference and the shaders
// (shaders/common/fp16.glsl implements the same bit operations) round identically on every device.
#include <cstdint>

#include "vidkv/export.hpp"

namespace vidkv::fp16 {

// float -> half, round to nearest even; subnormal halves produced exactly; overflow gives +-inf;
// NaN stays NaN (quiet, sign kept).
VIDKV_API uint16_t from_float(float value) noexcept;
// half -> float, exact for every half (subnormals included).
VIDKV_API float to_float(uint16_t half) noexcept;
// Exactly rounded half of (numerator / denominator) for finite, non-negative numerator and a
// positive denominator: the quotient rounded once, to nearest even. Used for q = (x - mn) / s and
// for means, where a division rounded twice could differ from the authors' fp16 semantics.
VIDKV_API uint16_t divide_round(float numerator, float denominator) noexcept;

inline bool is_finite(uint16_t half) noexcept { return (half & 0x7c00u) != 0x7c00u; }

}  // namespace vidkv::fp16
