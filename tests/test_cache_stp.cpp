// Semantic token protection inside the cache: the prefill's protected tokens (chosen from scores
// or given as a list) keep 2-bit values, the others 1.58-bit, bit for bit as the reference's
// token-split quantization; keys as without STP; decoding puts every token back in place;
// appended blocks are not protected; bad STP input is rejected naming the problem.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "cache_test_helpers.hpp"
#include "vidkv/stp.hpp"
#include "vulkan_fixture.hpp"

namespace vidkv::test {
namespace {

using CacheStp = VulkanTest;

constexpr uint32_t H = 2, D = 64, ratio = 4;

TEST_F(CacheStp, ProtectedTokensAreQuantizedAsTheReferenceSplit) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const uint32_t T = 330, quantized = 320, first_visual = 16, visual = 256;
  const KvData kv = random_kv(H, T, D, seed);
  std::mt19937_64 rng(seed + 7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  CacheStpInput stp;
  stp.first_visual = first_visual;
  stp.visual_tokens = visual;
  for (uint32_t i = 0; i < visual; ++i) stp.scores.push_back(normal(rng));
  const CacheSettings settings = preset("k1.5-v1.58-stp");
  Cache cache(ctx, {1, H, H * ratio, D}, settings, 1024);
  const uint32_t s = cache.create_sequence();
  cache.prefill(s, 0, kv.keys, kv.values, T, stp);

  StpSpec spec;
  spec.ratio = settings.stp_ratio;
  spec.group_size = 32;
  spec.first_visual = first_visual;
  const TokenSplit split = reference::stp_select(spec, stp.scores, quantized);
  ASSERT_EQ(split.protected_tokens.size(), 64u);  // round(0.2 * 256 / 32) * 32
  const CacheSegmentHost seg = cache.segment_host(s, 0, 0);
  EXPECT_EQ(seg.split.protected_tokens, split.protected_tokens);
  EXPECT_EQ(seg.split.other_tokens, split.other_tokens);
  const TensorShape shape{H, quantized, D};
  const StpQuantizedValues ref = reference::quantize_values_stp(split, 32, settings.ternary, shape, kv.values.data(),
                                                                TensorLayout::thd(shape));
  EXPECT_EQ(seg.values_high.codes, ref.high.codes);
  EXPECT_EQ(seg.values_high.scales, ref.high.scales);
  EXPECT_EQ(seg.values_high.mins, ref.high.mins);
  EXPECT_EQ(seg.values.codes, ref.low.codes);
  EXPECT_EQ(seg.values.scales, ref.low.scales);
  // Keys are those of the same preset without STP.
  CacheSettings plain = settings;
  plain.stp = false;
  Cache without(ctx, {1, H, H * ratio, D}, plain, 1024);
  const uint32_t w = without.create_sequence();
  without.prefill(w, 0, kv.keys, kv.values, T);
  const CacheSegmentHost pseg = without.segment_host(w, 0, 0);
  EXPECT_EQ(seg.keys.anomalous.codes, pseg.keys.anomalous.codes);
  EXPECT_EQ(seg.keys.normal.codes, pseg.keys.normal.codes);

  // Decoding: the reference's decode of the split, then the fp16 tail.
  std::vector<uint16_t> dk, dv;
  cache.dequantize(s, 0, dk, dv);
  const auto expected = reference::dequantize_values_stp(ref, TensorLayout::thd(shape));
  ASSERT_EQ(dv.size(), kv.values.size());
  EXPECT_TRUE(std::equal(expected.begin(), expected.end(), dv.begin()));
  EXPECT_TRUE(std::equal(dv.begin() + expected.size(), dv.end(), kv.values.begin() + expected.size()));

  // Bits: the protected quarter of values at 2 bits raises the value bits above plain 1.58.
  const CacheStats st = cache.stats(), pst = without.stats();
  EXPECT_GT(st.value_bits, pst.value_bits);
  EXPECT_EQ(st.values.maps, uint64_t(quantized) * 4);

  // Attention over the split segment and the fp16 tail, then over it, an appended (unprotected)
  // segment and the residual: one softmax, within 1e-3 of the float64 reference.
  const auto q = realistic_query(kv.keys, T, H, H * ratio, D, seed + 3);
  std::vector<CacheSegmentHost> segments;
  EXPECT_LT(attention_error(cache.attention(s, 0, q), reference_over_cache(cache, s, 0, q, segments), D), 1e-3);
  for (uint32_t t = 0; t < settings.residual_length + 5; ++t) {
    cache.append(s, 0, token_slice(kv.keys, t, 1, H, D), token_slice(kv.values, t, 1, H, D));
  }
  ASSERT_EQ(cache.segment_count(s, 0), 2u);
  EXPECT_TRUE(cache.segment_host(s, 0, 1).split.protected_tokens.empty());
  segments.clear();
  EXPECT_LT(attention_error(cache.attention(s, 0, q), reference_over_cache(cache, s, 0, q, segments), D), 1e-3);
}

TEST_F(CacheStp, ExplicitListAndBadInput) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const uint32_t T = 128;
  const KvData kv = random_kv(H, T, D, seed);
  Cache cache(ctx, {1, H, H * ratio, D}, preset("k1.5-v1.58-stp"), 512);
  const uint32_t s = cache.create_sequence();
  const auto bytes = snapshot(cache, {s});
  CacheStpInput bad;
  auto check = [&](const CacheStpInput& in, const std::string& mentions) {
    SCOPED_TRACE(mentions);
    expect_error([&] { cache.prefill(s, 0, kv.keys, kv.values, T, in); }, mentions);
    EXPECT_TRUE(snapshot(cache, {s}) == bytes);
  };
  expect_error([&] { cache.prefill(s, 0, kv.keys, kv.values, T); }, "CacheStpInput");
  bad.protected_tokens = {1, 2, 3};
  check(bad, "multiples of group_size");
  bad.protected_tokens = {200};
  check(bad, "out of range");
  bad.protected_tokens.clear();
  bad.visual_tokens = 100;
  bad.scores.assign(99, 1.0f);
  check(bad, "99 scores for 100 visual tokens");
  bad.first_visual = 60;
  bad.scores.assign(100, 1.0f);
  check(bad, "run past");
  bad.first_visual = 0;
  bad.scores[5] = std::nanf("");
  check(bad, "NaN");

  CacheStpInput list;
  for (uint32_t t = 32; t < 64; ++t) list.protected_tokens.push_back(t);
  cache.prefill(s, 0, kv.keys, kv.values, T, list);
  EXPECT_EQ(cache.segment_host(s, 0, 0).split.protected_tokens, list.protected_tokens);
  // STP input for a cache without STP is an error too.
  Cache plain(ctx, {1, H, H * ratio, D}, preset("k1.5-v1.58"), 512);
  const uint32_t p = plain.create_sequence();
  expect_error([&] { plain.prefill(p, 0, kv.keys, kv.values, T, list); }, "no semantic token protection");
}

}  // namespace
}  // namespace vidkv::test
