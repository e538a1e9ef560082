#pragma once
// Helpers of the cache tests: the float64 reference over what the cache holds (its segments read
// back, decoded exactly, plus its fp16 residual), and snapshots for "unchanged after an error".
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "attention_test_data.hpp"
#include "vidkv/attention_reference.hpp"
#include "vidkv/cache.hpp"
#include "vidkv/fp16.hpp"
#include "vidkv/stp.hpp"

namespace vidkv::test {

// The reference attention over the cache's own contents (reference::attention_layer, exact decode).
inline std::vector<double> reference_over_cache(const Cache& cache, uint32_t seq, uint32_t layer,
                                                const std::vector<float>& q, std::vector<CacheSegmentHost>& segments) {
  const CacheGeometry& g = cache.geometry();
  while (segments.size() < cache.segment_count(seq, layer)) {
    segments.push_back(cache.segment_host(seq, layer, uint32_t(segments.size())));
  }
  std::vector<AttentionSegment> host;
  // STP segments: the reference's token-split form of the two value parts.
  std::vector<StpQuantizedValues> stp(segments.size());
  for (size_t i = 0; i < segments.size(); ++i) {
    const auto& s = segments[i];
    if (s.split.protected_tokens.empty()) {
      host.push_back({&s.keys, &s.values, s.trits.empty() ? nullptr : &s.trits});
      continue;
    }
    stp[i].shape = s.keys.shape;
    stp[i].split = s.split;
    stp[i].high = s.values_high;
    stp[i].low = s.values;
    host.push_back({&s.keys, nullptr, nullptr, &stp[i]});
  }
  std::vector<uint16_t> rk, rv;
  cache.residual_host(seq, layer, rk, rv);
  const uint32_t residual = uint32_t(rk.size() / (size_t(g.kv_heads) * g.head_dim));
  return reference::attention_layer(q, g.q_heads, host, rk, rv, residual, g.kv_heads, g.head_dim);
}

// The float64 reference over the tokens a layer holds after a truncation: each segment decoded
// exactly, only its first visible[i] tokens (all of it past the list's end), then the fp16 residual.
inline std::vector<double> reference_kept(const Cache& cache, uint32_t seq, uint32_t layer,
                                          const std::vector<float>& q, const std::vector<uint32_t>& visible = {}) {
  const CacheGeometry& g = cache.geometry();
  std::vector<double> keys, values;
  const size_t row = size_t(g.kv_heads) * g.head_dim;
  for (uint32_t i = 0; i < cache.segment_count(seq, layer); ++i) {
    const CacheSegmentHost s = cache.segment_host(seq, layer, i);
    StpQuantizedValues stp;
    AttentionSegment a{&s.keys, &s.values, s.trits.empty() ? nullptr : &s.trits};
    if (!s.split.protected_tokens.empty()) {
      stp.shape = s.keys.shape;
      stp.split = s.split;
      stp.high = s.values_high;
      stp.low = s.values;
      a = {&s.keys, nullptr, nullptr, &stp};
    }
    std::vector<double> k, v;
    reference::decode_segment(a, reference::DecodeRounding::exact, k, v);
    const size_t kept = (i < visible.size() ? visible[i] : s.keys.shape.tokens) * row;
    keys.insert(keys.end(), k.begin(), k.begin() + kept);
    values.insert(values.end(), v.begin(), v.begin() + kept);
  }
  std::vector<uint16_t> rk, rv;
  cache.residual_host(seq, layer, rk, rv);
  for (uint16_t h : rk) keys.push_back(fp16::to_float(h));
  for (uint16_t h : rv) values.push_back(fp16::to_float(h));
  return reference::attention(q, g.q_heads, keys, values, uint32_t(keys.size() / row), g.kv_heads, g.head_dim);
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

// Every byte the cache holds for these sequences, in a fixed order: per layer the token counts,
// each segment's arrays (codes, scales, mins, channel splits, trits, STP split and 2-bit part) and
// the fp16 residual. Two equal snapshots mean the cache's contents are identical (a layer with
// per-head policies: its vidkv heads'; compare dequantize() for the others).
inline std::vector<uint8_t> snapshot(const Cache& cache, std::initializer_list<uint32_t> sequences) {
  std::vector<uint8_t> out;
  auto put = [&](const void* data, size_t bytes) {
    const auto* b = static_cast<const uint8_t*>(data);
    out.insert(out.end(), b, b + bytes);
  };
  auto put_vec = [&](const auto& v) {
    const uint64_t n = v.size();
    put(&n, sizeof(n));
    if (n) put(v.data(), n * sizeof(v[0]));
  };
  auto put_tensor = [&](const QuantizedTensor& t) {
    put_vec(t.codes);
    put_vec(t.scales);
    put_vec(t.mins);
  };
  for (uint32_t seq : sequences) {
    put(&seq, sizeof(seq));
    for (uint32_t l = 0; l < cache.geometry().layers; ++l) {
      const uint32_t tokens = cache.tokens(seq, l), segments = cache.segment_count(seq, l);
      put(&tokens, sizeof(tokens));
      put(&segments, sizeof(segments));
      for (uint32_t i = 0; i < segments; ++i) {
        const CacheSegmentHost s = cache.segment_host(seq, l, i);
        put_tensor(s.keys.anomalous);
        put_tensor(s.keys.normal);
        for (const auto& split : s.keys.splits) {
          put_vec(split.anomalous);
          put_vec(split.normal);
        }
        put_tensor(s.values);
        put_vec(s.trits);
        put_vec(s.split.protected_tokens);  // STP segments: the split and the 2-bit part
        put_vec(s.split.other_tokens);
        put_tensor(s.values_high);
      }
      std::vector<uint16_t> rk, rv;
      cache.residual_host(seq, l, rk, rv);
      put_vec(rk);
      put_vec(rv);
    }
  }
  return out;
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

// Expects the saved cache at `path` to be refused with Error(corrupt_data) naming `what` and the
// path, both when added to `cache` (load_sequences) and when loaded as a new cache.
inline void expect_corrupt_file_refused(Cache& cache, const std::shared_ptr<rt::Context>& ctx,
                                        const std::string& path, const std::string& what) {
  for (int way = 0; way < 2; ++way) {
    SCOPED_TRACE(way == 0 ? "load_sequences" : "Cache::load");
    try {
      if (way == 0) {
        cache.load_sequences(path);
      } else {
        Cache::load(path, ctx);
      }
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::corrupt_data) << e.what();
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }
}

}  // namespace vidkv::test
