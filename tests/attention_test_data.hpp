#pragma once
// Inputs shared by the attention tests: K/V halves [tokens][kv_heads][dim] with outlier key
// channels (tools::random_halves), a query whose scores have a standard deviation of about 2 per
// query head (softmax neither flat nor one-hot), and the error measure: per query head
// max_c |out - ref| / max_c |ref|, the worst head reported.
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "common/random_data.hpp"
#include "vidkv/attention_reference.hpp"
#include "vidkv/fp16.hpp"
#include "vidkv/ternary_pack.hpp"

namespace vidkv::test {

struct KvData {
  std::vector<uint16_t> keys, values;
};

inline KvData random_kv(uint32_t kv_heads, uint32_t tokens, uint32_t dim, uint64_t seed) {
  const TensorShape shape{kv_heads, tokens, dim};
  const TensorLayout thd = TensorLayout::thd(shape);
  return {tools::random_halves(shape, thd, seed, true), tools::random_halves(shape, thd, seed ^ 0x9e3779b9u, false)};
}

inline std::vector<float> realistic_query(const std::vector<uint16_t>& keys, uint32_t tokens, uint32_t kv_heads,
                                          uint32_t q_heads, uint32_t dim, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> q(size_t(q_heads) * dim);
  for (float& v : q) v = normal(rng);
  const uint32_t ratio = q_heads / kv_heads;
  for (uint32_t i = 0; i < q_heads && tokens > 1; ++i) {
    double sum = 0, sum2 = 0;
    for (uint32_t t = 0; t < tokens; ++t) {
      double s = 0;
      for (uint32_t c = 0; c < dim; ++c)
        s += q[size_t(i) * dim + c] * fp16::to_float(keys[(size_t(t) * kv_heads + i / ratio) * dim + c]);
      s /= std::sqrt(double(dim));
      sum += s;
      sum2 += s * s;
    }
    const double sd = std::sqrt(std::max(sum2 / tokens - (sum / tokens) * (sum / tokens), 1e-12));
    for (uint32_t c = 0; c < dim; ++c) q[size_t(i) * dim + c] *= float(2.0 / sd);
  }
  return q;
}

inline double attention_error(const std::vector<float>& out, const std::vector<double>& ref, uint32_t dim) {
  double worst = 0;
  for (size_t i = 0; i * dim < ref.size(); ++i) {
    double diff = 0, mag = 0;
    for (uint32_t c = 0; c < dim; ++c) {
      const double o = out[i * dim + c];
      if (!std::isfinite(o)) return INFINITY;
      diff = std::max(diff, std::abs(o - ref[i * dim + c]));
      mag = std::max(mag, std::abs(ref[i * dim + c]));
    }
    worst = std::max(worst, diff / std::max(mag, 1e-30));
  }
  return worst;
}

inline std::vector<uint16_t> token_slice(const std::vector<uint16_t>& v, uint32_t from, uint32_t count,
                                         uint32_t kv_heads, uint32_t dim) {
  const size_t row = size_t(kv_heads) * dim;
  return std::vector<uint16_t>(v.begin() + from * row, v.begin() + (from + count) * row);
}

// Keys of tokens [from, from + count) quantized with the given channel split (empty: chosen from
// these tokens, as a prefill does; later blocks reuse the prefill's).
inline QuantizedKeys quantize_key_slice(const KvData& kv, uint32_t from, uint32_t count, uint32_t heads, uint32_t dim,
                                        const KeySpec& spec, const std::vector<ChannelSplit>& splits) {
  const TensorShape shape{heads, count, dim};
  const TensorLayout thd = TensorLayout::thd(shape);
  const auto k = token_slice(kv.keys, from, count, heads, dim);
  if (splits.empty()) return reference::quantize_keys(spec, shape, k.data(), thd);
  const auto coefficients = reference::key_coefficients(spec, shape, k.data(), thd, splits);
  return reference::quantize_keys_with(spec, shape, k.data(), thd, splits, coefficients);
}

}  // namespace vidkv::test
