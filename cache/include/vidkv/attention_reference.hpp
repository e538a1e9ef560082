#pragma once
// Reference decode attention: plain float64 over decoded K/V, obviously right rather than fast.
// GQA: query head i reads KV head i / (q_heads / kv_heads). out_i = sum_t softmax_t(scale q_i . k_t) v_t.
#include <cstdint>
#include <vector>

#include "vidkv/export.hpp"
#include "vidkv/reference.hpp"
#include "vidkv/stp.hpp"
#include "vidkv/vidkv_keys.hpp"

namespace vidkv {

// One quantized segment of a layer on the host: keys, and either values quantized per channel at
// 1.58 bits, 2 bits per channel or 2 bits per token, or values split by semantic token protection
// (stp.hpp: the protected tokens at 2 bits per channel, the others at 1.58 bits; positions are
// the segment's own, 0 .. tokens - 1). Ternary values (`values`, or stp->low) may come with their
// trits packed 5 per byte and are then decoded from those.
struct AttentionSegment {
  const QuantizedKeys* keys = nullptr;
  const QuantizedTensor* values = nullptr;      // null when stp is given
  const std::vector<uint8_t>* trits = nullptr;  // packed trits of the ternary values
  const StpQuantizedValues* stp = nullptr;
};

namespace reference {

// keys, values: [tokens][kv_heads][dim]; q: [q_heads][dim]; scale 0 means 1 / sqrt(dim).
VIDKV_API std::vector<double> attention(const std::vector<float>& q, uint32_t q_heads,
                                        const std::vector<double>& keys, const std::vector<double>& values,
                                        uint32_t tokens, uint32_t kv_heads, uint32_t dim, double scale = 0.0);

// How segments are decoded for the reference:
//  exact: in float64 straight from codes and scales (code * s + mn, +-s, code * s; the key streams
//    through a float64 inverse DFT), i.e. the values the packed cache stands for; what fused
//    attention computes, up to fp32 arithmetic.
//  fp16: with dequantize_keys / dequantize, which round every decoded value to fp16 (what an
//    implementation that decodes the cache to fp16 first would attend over).
enum class DecodeRounding { exact, fp16 };

// Decoded K and V of one segment, [tokens][kv_heads][dim], trits unpacked first when given. Throws
// Error(invalid_argument) naming the mismatch when keys, values or the STP split disagree.
VIDKV_API void decode_segment(const AttentionSegment& segment, DecodeRounding rounding, std::vector<double>& keys,
                              std::vector<double>& values);

// Attention over [segment_1 .. segment_n, fp16 residual] as one softmax; residual K/V are halves
// [residual_tokens][kv_heads][dim].
VIDKV_API std::vector<double> attention_layer(const std::vector<float>& q, uint32_t q_heads,
                                              const std::vector<AttentionSegment>& segments,
                                              const std::vector<uint16_t>& residual_keys,
                                              const std::vector<uint16_t>& residual_values,
                                              uint32_t residual_tokens, uint32_t kv_heads, uint32_t dim,
                                              double scale = 0.0, DecodeRounding rounding = DecodeRounding::exact);

}  // namespace reference
}  // namespace vidkv
