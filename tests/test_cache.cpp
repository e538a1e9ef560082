// The cache runtime against the reference: attention from the cache equals the float64 reference
// over the cache's decoded contents (segments decoded exactly + fp16 residual) within 1e-3
// relative (attention_test_data.hpp's measure); what the cache holds equals the reference
// quantization of the same tokens (values bit for bit; keys: channel choice and 2-bit part bit for
// bit, the 1-bit streams depend on the fp32 FFT and are checked through attention); the fp16
// residual holds the input tail unchanged.
#include <gtest/gtest.h>

#include <string>

#include "cache_test_helpers.hpp"
#include "vidkv/gpu_keys.hpp"
#include "vidkv/ternary_pack.hpp"
#include "vulkan_fixture.hpp"

namespace vidkv::test {
namespace {

struct CacheCase {
  const char* preset;
  uint32_t kv_heads, ratio, dim, tokens;
};

class CacheMatchesReference : public VulkanTest, public ::testing::WithParamInterface<CacheCase> {};

TEST_P(CacheMatchesReference, Prefill) {
  const CacheCase c = GetParam();
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const CacheSettings settings = preset(c.preset);
  const CacheGeometry g{2, c.kv_heads, c.kv_heads * c.ratio, c.dim};
  Cache cache(ctx, g, settings, 2048);
  const KvData kv = random_kv(c.kv_heads, c.tokens, c.dim, seed);
  const auto q = realistic_query(kv.keys, c.tokens, c.kv_heads, g.q_heads, c.dim, seed + 7);
  const uint32_t seq = cache.create_sequence();
  cache.prefill(seq, 1, kv.keys, kv.values, c.tokens);
  EXPECT_EQ(cache.tokens(seq, 1), c.tokens);
  EXPECT_EQ(cache.tokens(seq, 0), 0u);

  const auto out = cache.attention(seq, 1, q);
  const bool fp16 = std::string(c.preset) == "fp16";
  std::vector<CacheSegmentHost> segments;
  const auto ref = fp16 ? reference::attention_layer(q, g.q_heads, {}, kv.keys, kv.values, c.tokens, c.kv_heads, c.dim)
                        : reference_over_cache(cache, seq, 1, q, segments);
  EXPECT_LT(attention_error(out, ref, c.dim), 1e-3);

  // Layout: one segment of the whole groups, the tail in the residual.
  const uint32_t quantized = fp16 ? 0 : c.tokens / 32 * 32;
  ASSERT_EQ(cache.segment_count(seq, 1), quantized > 0 ? 1u : 0u);
  std::vector<uint16_t> rk, rv;
  cache.residual_host(seq, 1, rk, rv);
  EXPECT_EQ(rk, token_slice(kv.keys, quantized, c.tokens - quantized, c.kv_heads, c.dim));
  EXPECT_EQ(rv, token_slice(kv.values, quantized, c.tokens - quantized, c.kv_heads, c.dim));
  if (quantized > 0) {
    // The segment's contents against the reference quantization of the same tokens.
    const TensorShape shape{c.kv_heads, quantized, c.dim};
    const TensorLayout thd = TensorLayout::thd(shape);
    const auto k = token_slice(kv.keys, 0, quantized, c.kv_heads, c.dim);
    const auto v = token_slice(kv.values, 0, quantized, c.kv_heads, c.dim);
    const CacheSegmentHost& s = segments.at(0);
    const QuantizedTensor rv_q = reference::quantize(s.values.spec, shape, v.data(), thd);
    EXPECT_EQ(s.values.codes, rv_q.codes);
    EXPECT_EQ(s.values.scales, rv_q.scales);
    if (!s.trits.empty()) {
      EXPECT_EQ(s.trits, reference::pack_trits(rv_q));
    } else {
      EXPECT_EQ(s.values.mins, rv_q.mins);
    }
    const QuantizedKeys rk_q = reference::quantize_keys(s.keys.spec, shape, k.data(), thd);
    for (uint32_t h = 0; h < c.kv_heads; ++h) {
      EXPECT_EQ(s.keys.splits[h].anomalous, rk_q.splits[h].anomalous) << "head " << h;
    }
    EXPECT_EQ(s.keys.anomalous.codes, rk_q.anomalous.codes);
    EXPECT_EQ(s.keys.anomalous.scales, rk_q.anomalous.scales);
    EXPECT_EQ(s.keys.anomalous.mins, rk_q.anomalous.mins);
  }

  // dequantize: every token in order; the residual part is the input itself.
  std::vector<uint16_t> dk, dv;
  cache.dequantize(seq, 1, dk, dv);
  ASSERT_EQ(dk.size(), kv.keys.size());
  ASSERT_EQ(dv.size(), kv.values.size());
  const size_t row = size_t(c.kv_heads) * c.dim;
  EXPECT_TRUE(std::equal(dk.begin() + quantized * row, dk.end(), kv.keys.begin() + quantized * row));
  EXPECT_TRUE(std::equal(dv.begin() + quantized * row, dv.end(), kv.values.begin() + quantized * row));
  if (quantized > 0) {
    // Decoded values equal the reference's fp16 decode of the held codes.
    std::vector<uint16_t> ref_v = reference::dequantize(segments[0].values, TensorLayout::thd(segments[0].values.shape));
    EXPECT_TRUE(std::equal(ref_v.begin(), ref_v.end(), dv.begin()));
  }
}

std::vector<CacheCase> cache_cases() {
  std::vector<CacheCase> cases;
  for (const char* p : {"fp16", "2bit", "kivi", "k1.5-v2", "k1.5-v1.58"}) {
    for (uint32_t t : {1u, 33u, 129u, 1000u}) cases.push_back({p, 2, 4, 128, t});
    for (uint32_t ratio : {1u, 7u})
      for (uint32_t dim : {64u, 128u}) cases.push_back({p, 2, ratio, dim, 129});
    cases.push_back({p, 2, 12, 128, 129});  // GQA beyond 8: two workgroups of 6 query heads per KV head
  }
  for (const char* p : {"fp16", "k1.5-v1.58"}) cases.push_back({p, 2, 16, 128, 129});
  return cases;
}

std::string case_name(const CacheCase& c) {
  std::string n = std::string(c.preset) + "_h" + std::to_string(c.kv_heads) + "_r" + std::to_string(c.ratio) + "_d" +
                  std::to_string(c.dim) + "_t" + std::to_string(c.tokens);
  for (char& ch : n)
    if (ch == '.' || ch == '-') ch = '_';
  return n;
}

INSTANTIATE_TEST_SUITE_P(Presets, CacheMatchesReference, ::testing::ValuesIn(cache_cases()),
                         [](const auto& info) { return case_name(info.param); });

// Per-channel code words, scale (and min) of group `g` (global, 32 tokens) of (head h, channel c).
struct GroupBits {
  std::vector<uint32_t> words;
  uint16_t scale, min;
  bool operator==(const GroupBits& o) const { return words == o.words && scale == o.scale && min == o.min; }
};
GroupBits group_bits(const QuantizedTensor& t, uint32_t h, uint32_t c, uint32_t local_g) {
  const PackedSizes p = packed_sizes(t.spec, t.shape);
  const uint32_t wpg = t.spec.group_size / p.fields_per_word;
  const uint64_t row = uint64_t(h) * t.shape.dim + c;
  GroupBits b;
  b.words.assign(t.codes.begin() + row * p.words_per_row + uint64_t(local_g) * wpg,
                 t.codes.begin() + row * p.words_per_row + uint64_t(local_g + 1) * wpg);
  b.scale = t.scales[row * p.groups_per_row + local_g];
  b.min = t.mins.empty() ? 0 : t.mins[row * p.groups_per_row + local_g];
  return b;
}

struct DecodeCase {
  const char* preset;
  uint32_t steps;
};

class CacheDecode : public VulkanTest, public ::testing::WithParamInterface<DecodeCase> {};

// Prefill 100 tokens, then one token per step with residual_length 128: several flushes, each a new
// segment; attention checked at every step against the reference over the cache's contents.
TEST_P(CacheDecode, AcrossResidualFlushes) {
  const DecodeCase c = GetParam();
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const uint32_t H = 2, D = 128, ratio = 4, P = 100, T = P + c.steps;
  const CacheSettings settings = preset(c.preset);
  ASSERT_EQ(settings.residual_length, 128u);
  const CacheGeometry g{1, H, H * ratio, D};
  Cache cache(ctx, g, settings, T);
  const KvData kv = random_kv(H, T, D, seed);
  const uint32_t seq = cache.create_sequence();
  cache.prefill(seq, 0, token_slice(kv.keys, 0, P, H, D), token_slice(kv.values, 0, P, H, D), P);
  std::vector<CacheSegmentHost> segments;
  std::mt19937_64 rng(seed + 11);
  for (uint32_t t = P; t < T; ++t) {
    cache.append(seq, 0, token_slice(kv.keys, t, 1, H, D), token_slice(kv.values, t, 1, H, D));
    const auto q = realistic_query(token_slice(kv.keys, 0, t + 1, H, D), t + 1, H, g.q_heads, D, rng());
    const auto out = cache.attention(seq, 0, q);
    const auto ref = reference_over_cache(cache, seq, 0, q, segments);
    const double err = attention_error(out, ref, D);
    ASSERT_LT(err, 1e-3) << "step " << t - P << ", " << t + 1 << " tokens";
  }
  // Segments: the prefill's 96 tokens, then one per flush of 128 (the prefill's 4-token tail + 124).
  const uint32_t flushes = (T - 96) / 128;
  ASSERT_EQ(cache.segment_count(seq, 0), 1 + flushes);
  EXPECT_EQ(cache.stats().quantized_tokens, 96u + 128u * flushes);
  EXPECT_EQ(cache.stats().residual_tokens, T - 96u - 128u * flushes);
  // A flushed segment equals quantizing the same tokens standalone with the prefill's channels.
  GpuKeyQuantizer keys(ctx);
  GpuQuantizer values(ctx);
  for (uint32_t i = 1; i < segments.size(); ++i) {
    SCOPED_TRACE("segment " + std::to_string(i));
    const uint32_t from = 96 + 128 * (i - 1);
    const TensorShape shape{H, 128, D};
    const TensorLayout thd = TensorLayout::thd(shape);
    const auto k = token_slice(kv.keys, from, 128, H, D), v = token_slice(kv.values, from, 128, H, D);
    const CacheSegmentHost& s = segments[i];
    for (uint32_t h = 0; h < H; ++h) {
      EXPECT_EQ(s.keys.splits[h].anomalous, segments[0].keys.splits[h].anomalous) << "channels kept";
    }
    const QuantizedKeys alone = keys.quantize_host_with(s.keys.spec, shape, k, thd, segments[0].keys.splits);
    EXPECT_EQ(s.keys.anomalous.codes, alone.anomalous.codes);
    EXPECT_EQ(s.keys.anomalous.scales, alone.anomalous.scales);
    EXPECT_EQ(s.keys.anomalous.mins, alone.anomalous.mins);
    EXPECT_EQ(s.keys.normal.codes, alone.normal.codes);
    EXPECT_EQ(s.keys.normal.scales, alone.normal.scales);
    const QuantizedTensor v_alone = values.quantize_host(s.values.spec, shape, v, thd);
    EXPECT_EQ(s.values.codes, v_alone.codes);
    EXPECT_EQ(s.values.scales, v_alone.scales);
  }
  // Per-channel codes do not depend on how tokens were cut into segments: a second sequence that
  // prefills every token at once holds the same groups (2-bit keys; values of any per-channel kind).
  const uint32_t whole = cache.segment_count(seq, 0) > 1 ? 96 + 128 * flushes : 96;
  Cache big(ctx, g, settings, T);
  const uint32_t seq2 = big.create_sequence();
  big.prefill(seq2, 0, token_slice(kv.keys, 0, whole, H, D), token_slice(kv.values, 0, whole, H, D), whole);
  const CacheSegmentHost all = big.segment_host(seq2, 0, 0);
  const bool per_channel_values = all.values.spec.axis == QuantAxis::channel;
  const bool plain_keys = all.keys.spec.nbits == 2.0;
  uint32_t start = 0;
  for (const auto& s : segments) {
    for (uint32_t lg = 0; lg < s.values.shape.tokens / 32; ++lg) {
      const uint32_t gg = start / 32 + lg;
      for (uint32_t h = 0; h < H; ++h)
        for (uint32_t ch = 0; ch < D; ++ch) {
          if (per_channel_values) {
            ASSERT_TRUE(group_bits(s.values, h, ch, lg) == group_bits(all.values, h, ch, gg))
                << "value group " << gg << " head " << h << " channel " << ch;
          }
          if (plain_keys) {
            ASSERT_TRUE(group_bits(s.keys.anomalous, h, ch, lg) == group_bits(all.keys.anomalous, h, ch, gg))
                << "key group " << gg << " head " << h << " channel " << ch;
          }
        }
    }
    start += s.values.shape.tokens;
  }
}

INSTANTIATE_TEST_SUITE_P(Presets, CacheDecode,
                         ::testing::Values(DecodeCase{"k1.5-v1.58", 600}, DecodeCase{"2bit", 300},
                                           DecodeCase{"kivi", 300}),
                         [](const auto& info) {
                           std::string n = std::string(info.param.preset) + "_" + std::to_string(info.param.steps);
                           for (char& ch : n)
                             if (ch == '.' || ch == '-') ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace vidkv::test
