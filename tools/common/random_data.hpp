#pragma once
// Fresh random inputs for GPU-vs-reference checks. The seed comes from std::random_device unless
// VIDKV_TEST_SEED is set; tests and vidkv-conformance print it so a failure can be replayed.
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "vidkv/fp16.hpp"
#include "vidkv/quant_spec.hpp"

namespace vidkv::tools {

inline uint64_t test_seed() {
  if (const char* s = std::getenv("VIDKV_TEST_SEED")) return std::strtoull(s, nullptr, 10);
  return (uint64_t(std::random_device{}()) << 32) ^ std::random_device{}();
}

// Keys-like data: normal values with per-channel offsets, a few outlier channels scaled x10..x20,
// and some special groups: constant groups, signed zeros, half subnormals.
inline std::vector<uint16_t> random_halves(const TensorShape& shape, const TensorLayout& layout,
                                           uint64_t seed, bool specials = true) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::vector<float> channel_scale(shape.dim), channel_offset(shape.dim);
  for (uint32_t d = 0; d < shape.dim; ++d) {
    channel_scale[d] = uniform(rng) < 0.05f ? 10.0f + 10.0f * uniform(rng) : 0.5f + uniform(rng);
    channel_offset[d] = 0.5f * normal(rng);
  }
  std::vector<uint16_t> data(layout.span(shape), 0);
  for (uint32_t h = 0; h < shape.heads; ++h) {
    for (uint32_t t = 0; t < shape.tokens; ++t) {
      for (uint32_t d = 0; d < shape.dim; ++d) {
        float v = (normal(rng) + channel_offset[d]) * channel_scale[d];
        if (specials) {
          // channels 0..2 of head 0 hold the awkward cases
          if (h == 0 && d == 0) v = 1.5f;                                   // constant along tokens
          if (h == 0 && d == 1) v = (t % 2) ? 0.0f : -0.0f;                 // signed zeros, -0 first
          if (h == 0 && d == 4) v = (t % 2) ? -0.0f : 0.0f;                 // signed zeros, +0 first
          if (h == 0 && d == 5) v = (t % 3) ? 0.0f : -0.0f;
          if (h == 0 && d == 2) v = float(t % 7) * 5.9604645e-8f;           // half subnormals
          if (h == 1 % shape.heads && d == 3 && t < 32) v = -2.25f;         // one constant group
          if (t == 1 && h == 0 && d < 32) v = (d % 2) ? -0.0f : 0.0f;         // a token's zero group
        }
        data[h * layout.head_stride + t * layout.token_stride + d] = fp16::from_float(v);
      }
    }
  }
  return data;
}

inline std::vector<float> random_floats(const TensorShape& shape, const TensorLayout& layout, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> data(layout.span(shape), 0.0f);
  for (auto& v : data) v = normal(rng);
  return data;
}

}  // namespace vidkv::tools
