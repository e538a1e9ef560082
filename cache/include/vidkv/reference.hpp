#pragma once
// The CPU reference quantizer: plain C++, obviously right rather than fast. The shaders are checked
// against it bit for bit. Arithmetic follows the authors' fp16 semantics (every operation computed
// in fp32 from fp16 operands and rounded once to fp16), with the paper's decoding (DESIGN section 3):
//   b-bit (2, 4, 8): mn = min, mx = max over the group (fp16 values);
//     s  = half(float(half(mx - mn)) * (1.0f / float(2^b - 1)))
//     q  = roundEven(clamp(half_div(half(x - mn), s), 0, 2^b - 1)); when s == 0, q = 0
//     x' = half(float(half(q * s)) + mn)
//   1-bit: s = half_div(sum|x|, n) (sum in fp32, tokens in increasing order); q = (x >= 0)
//     (so -0 gives 1); x' = (2q - 1) * s; mins hold 0.
//   1.58-bit: m = half_div(sum|x|, n); t = half(0.5f * m); code = +1 if x > t, -1 if x < -t,
//     else 0, stored as code + 1; s = m (mean_abs) or half_div(sum of |x| over nonzero codes,
//     count) (lsq; s = m when every code is 0); x' = code * s, rounded to half; mins hold -1.
// half_div is fp16::divide_round (one rounding). fp32 input is first rounded to fp16.
#include <cstdint>
#include <vector>

#include "vidkv/quant_spec.hpp"

namespace vidkv {

struct QuantizedTensor {
  QuantSpec spec;
  TensorShape shape;
  std::vector<uint32_t> codes;   // PackedSizes::code_words() words
  std::vector<uint16_t> scales;  // PackedSizes::scale_count() halves
  std::vector<uint16_t> mins;    // PackedSizes::scale_count() halves
};

namespace reference {

// input: at least layout.span(shape) elements; validate(spec, shape) is called first.
VIDKV_API QuantizedTensor quantize(const QuantSpec& spec, const TensorShape& shape,
                                   const uint16_t* input_fp16, const TensorLayout& layout);
VIDKV_API QuantizedTensor quantize(const QuantSpec& spec, const TensorShape& shape,
                                   const float* input_fp32, const TensorLayout& layout);

// Decoded fp16 values written at layout positions of a vector of layout.span(shape) elements
// (positions the layout does not cover are 0).
VIDKV_API std::vector<uint16_t> dequantize(const QuantizedTensor& q, const TensorLayout& layout);

// The code of element (h, t, d), unpacked: 0..2^b-1 for b-bit, 0/1 for 1-bit, -1/0/+1 for 1.58.
VIDKV_API int32_t code_at(const QuantizedTensor& q, uint32_t h, uint32_t t, uint32_t d);

}  // namespace reference
}  // namespace vidkv
