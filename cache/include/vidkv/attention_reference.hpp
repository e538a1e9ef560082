#pragma once
// Reference decode attention: plain float64 over decoded K/V, obviously right rather than fast.
// GQA: query head i reads KV head i / (q_heads / kv_heads). out_i = sum_t softmax_t(scale q_i . k_t) v_t.
#include <cstdint>
#include <vector>

#include "vidkv/export.hpp"
#include "vidkv/reference.hpp"
#include "vidkv/vidkv_keys.hpp"

namespace vidkv {

// One quantized segment of a layer on the host: keys, and values quantized per channel at 1.58
// bits (optionally with their trits packed 5 per byte; decoded from those when given), 2 bits per
// channel, or 2 bits per token.
struct AttentionSegment {
  const QuantizedKeys* keys = nullptr;
  const QuantizedTensor* values = nullptr;
  const std::vector<uint8_t>* trits = nullptr;
};

namespace reference {

// keys, values: [tokens][kv_heads][dim]; q: [q_heads][dim]; scale 0 means 1 / sqrt(dim).
VIDKV_API std::vector<double> attention(const std::vector<float>& q, uint32_t q_heads,
                                        const std::vector<double>& keys, const std::vector<double>& values,
                                        uint32_t tokens, uint32_t kv_heads, uint32_t dim, double scale = 0.0);

// Attention over [segment_1 .. segment_n, fp16 residual] as one softmax. Segments are decoded with
// dequantize_keys / dequantize (trits unpacked first when given); residual K/V are halves
// [residual_tokens][kv_heads][dim].
VIDKV_API std::vector<double> attention_layer(const std::vector<float>& q, uint32_t q_heads,
                                              const std::vector<AttentionSegment>& segments,
                                              const std::vector<uint16_t>& residual_keys,
                                              const std::vector<uint16_t>& residual_values,
                                              uint32_t residual_tokens, uint32_t kv_heads, uint32_t dim,
                                              double scale = 0.0);

}  // namespace reference
}  // namespace vidkv
