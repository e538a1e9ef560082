// Reference decode attention (attention_reference.hpp).
#include "vidkv/attention_reference.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "vidkv/fp16.hpp"
#include "vidkv/ternary_pack.hpp"

namespace vidkv::reference {

std::vector<double> attention(const std::vector<float>& q, uint32_t q_heads, const std::vector<double>& keys,
                              const std::vector<double>& values, uint32_t tokens, uint32_t kv_heads, uint32_t dim,
                              double scale) {
  if (kv_heads == 0 || q_heads % kv_heads != 0 || tokens == 0 || q.size() != size_t(q_heads) * dim ||
      keys.size() < size_t(tokens) * kv_heads * dim || values.size() < size_t(tokens) * kv_heads * dim) {
    throw Error(ErrorCode::invalid_argument, "reference attention: inconsistent sizes (q_heads " +
                                                 std::to_string(q_heads) + ", kv_heads " + std::to_string(kv_heads) +
                                                 ", tokens " + std::to_string(tokens) + ")");
  }
  if (scale == 0.0) scale = 1.0 / std::sqrt(double(dim));
  const uint32_t ratio = q_heads / kv_heads;
  std::vector<double> out(size_t(q_heads) * dim, 0.0), s(tokens);
  for (uint32_t i = 0; i < q_heads; ++i) {
    const uint32_t h = i / ratio;
    double m = -INFINITY;
    for (uint32_t t = 0; t < tokens; ++t) {
      double dot = 0.0;
      for (uint32_t c = 0; c < dim; ++c) dot += double(q[size_t(i) * dim + c]) * keys[(size_t(t) * kv_heads + h) * dim + c];
      s[t] = dot * scale;
      m = std::max(m, s[t]);
    }
    double l = 0.0;
    for (uint32_t t = 0; t < tokens; ++t) l += (s[t] = std::exp(s[t] - m));
    for (uint32_t t = 0; t < tokens; ++t)
      for (uint32_t c = 0; c < dim; ++c) out[size_t(i) * dim + c] += s[t] / l * values[(size_t(t) * kv_heads + h) * dim + c];
  }
  return out;
}

std::vector<double> attention_layer(const std::vector<float>& q, uint32_t q_heads,
                                    const std::vector<AttentionSegment>& segments,
                                    const std::vector<uint16_t>& residual_keys,
                                    const std::vector<uint16_t>& residual_values, uint32_t residual_tokens,
                                    uint32_t kv_heads, uint32_t dim, double scale) {
  std::vector<double> keys, values;
  auto append = [&](std::vector<double>& dst, const std::vector<uint16_t>& halves) {
    for (uint16_t h : halves) dst.push_back(fp16::to_float(h));
  };
  for (const AttentionSegment& seg : segments) {
    if (seg.keys == nullptr || seg.values == nullptr) {
      throw Error(ErrorCode::invalid_argument, "reference attention: a segment lacks keys or values");
    }
    const TensorShape& shape = seg.keys->shape;
    if (shape.heads != kv_heads || shape.dim != dim || seg.values->shape.tokens != shape.tokens) {
      throw Error(ErrorCode::invalid_argument, "reference attention: segment shape does not match the layer");
    }
    const TensorLayout thd = TensorLayout::thd(shape);
    append(keys, dequantize_keys(*seg.keys, thd));
    if (seg.trits != nullptr) {
      QuantizedTensor unpacked = *seg.values;
      unpacked.codes = unpack_trits(*seg.trits, unpacked.spec, unpacked.shape);
      append(values, dequantize(unpacked, thd));
    } else {
      append(values, dequantize(*seg.values, thd));
    }
  }
  const size_t n = size_t(residual_tokens) * kv_heads * dim;
  if (residual_keys.size() < n || residual_values.size() < n) {
    throw Error(ErrorCode::buffer_too_small, "reference attention: residual holds fewer than " + std::to_string(n) +
                                                 " halves");
  }
  append(keys, std::vector<uint16_t>(residual_keys.begin(), residual_keys.begin() + n));
  append(values, std::vector<uint16_t>(residual_values.begin(), residual_values.begin() + n));
  const uint32_t tokens = uint32_t(keys.size() / (size_t(kv_heads) * dim));
  return attention(q, q_heads, keys, values, tokens, kv_heads, dim, scale);
}

}  // namespace vidkv::reference
