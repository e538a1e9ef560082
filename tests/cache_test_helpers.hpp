#pragma once
// Helpers of the cache tests: the float64 reference over what the cache holds (its segments read
// back, decoded exactly, plus its fp16 residual), and snapshots for "unchanged after an error".
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "attention_test_data.hpp"
#include "vidkv/attention_reference.hpp"
#include "vidkv/cache.hpp"

namespace vidkv::test {

// The reference attention over the cache's own contents (reference::attention_layer, exact decode).
inline std::vector<double> reference_over_cache(const Cache& cache, uint32_t seq, uint32_t layer,
                                                const std::vector<float>& q, std::vector<CacheSegmentHost>& segments) {
  const CacheGeometry& g = cache.geometry();
  while (segments.size() < cache.segment_count(seq, layer)) {
    segments.push_back(cache.segment_host(seq, layer, uint32_t(segments.size())));
  }
  std::vector<AttentionSegment> host;
  for (const auto& s : segments) host.push_back({&s.keys, &s.values, s.trits.empty() ? nullptr : &s.trits});
  std::vector<uint16_t> rk, rv;
  cache.residual_host(seq, layer, rk, rv);
  const uint32_t residual = uint32_t(rk.size() / (size_t(g.kv_heads) * g.head_dim));
  return reference::attention_layer(q, g.q_heads, host, rk, rv, residual, g.kv_heads, g.head_dim);
}

inline bool same_stats(const CacheStats& a, const CacheStats& b) {
  auto part = [](const CachePartBytes& x, const CachePartBytes& y) {
    return x.codes == y.codes && x.scales == y.scales && x.mins == y.mins && x.maps == y.maps;
  };
  return a.sequences == b.sequences && a.tokens == b.tokens && a.quantized_tokens == b.quantized_tokens &&
         a.residual_tokens == b.residual_tokens && a.segments == b.segments && part(a.keys, b.keys) &&
         part(a.values, b.values) && a.residual_bytes == b.residual_bytes &&
         a.residual_capacity_bytes == b.residual_capacity_bytes && a.key_bits == b.key_bits &&
         a.value_bits == b.value_bits && a.fp16_equivalent_bytes == b.fp16_equivalent_bytes;
}

// Expects `f` to throw vidkv::Error whose message contains `mentions`.
template <typename F>
void expect_error(F&& f, const std::string& mentions) {
  try {
    f();
    ADD_FAILURE() << "accepted; expected an error mentioning \"" << mentions << "\"";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(mentions), std::string::npos) << e.what();
  }
}

}  // namespace vidkv::test
