// The cache's bookkeeping: sequences never see each other, free + reuse leaves the others intact,
// every rejected call names the bad value and leaves the cache exactly as before (stats and
// attention outputs compared bit for bit), construction-time checks, and honest stats.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <functional>
#include <string>

#include "cache_test_helpers.hpp"
#include "vidkv/runtime/buffer.hpp"
#include "vulkan_fixture.hpp"

namespace vidkv::test {
namespace {

constexpr uint32_t H = 2, D = 64, ratio = 4;

using CacheBookkeeping = VulkanTest;

TEST_F(CacheBookkeeping, SequencesAreIsolated) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const CacheGeometry g{2, H, H * ratio, D};
  Cache cache(ctx, g, preset("k1.5-v1.58"), 512);
  const KvData a = random_kv(H, 200, D, seed), b = random_kv(H, 300, D, seed + 1);
  const auto q = realistic_query(a.keys, 200, H, g.q_heads, D, seed + 2);
  const uint32_t sa = cache.create_sequence(), sb = cache.create_sequence();
  EXPECT_NE(sa, sb);
  cache.prefill(sa, 0, a.keys, a.values, 200);
  const auto before = cache.attention(sa, 0, q);
  std::vector<CacheSegmentHost> segs;
  EXPECT_LT(attention_error(before, reference_over_cache(cache, sa, 0, q, segs), D), 1e-3);
  // Another sequence's prefill and appends (with a flush) do not move sequence a.
  cache.prefill(sb, 0, b.keys, b.values, 300);
  for (uint32_t t = 0; t < 130; ++t) cache.append(sb, 0, token_slice(a.keys, t, 1, H, D), token_slice(a.values, t, 1, H, D));
  EXPECT_EQ(cache.attention(sa, 0, q), before);
  EXPECT_EQ(cache.tokens(sb, 0), 430u);
  // Free b, create c (a fresh id, empty), a is intact; b's id is now unknown.
  cache.free_sequence(sb);
  const uint32_t sc = cache.create_sequence();
  EXPECT_NE(sc, sb);
  EXPECT_EQ(cache.tokens(sc, 0), 0u);
  cache.prefill(sc, 0, b.keys, b.values, 300);
  EXPECT_EQ(cache.attention(sa, 0, q), before);
  expect_error([&] { cache.attention(sb, 0, q); }, "sequence " + std::to_string(sb));
  expect_error([&] { cache.free_sequence(sb); }, "sequence " + std::to_string(sb));
  EXPECT_EQ(cache.stats().sequences, 2u);
  EXPECT_EQ(cache.stats().tokens, 500u);
}

TEST_F(CacheBookkeeping, ErrorsLeaveTheCacheUnchanged) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const CacheGeometry g{2, H, H * ratio, D};
  const uint32_t max_tokens = 100;
  Cache cache(ctx, g, preset("k1.5-v2"), max_tokens);
  const KvData kv = random_kv(H, max_tokens, D, seed);
  const auto q = realistic_query(kv.keys, 70, H, g.q_heads, D, seed + 2);
  const uint32_t s = cache.create_sequence();
  cache.prefill(s, 0, token_slice(kv.keys, 0, 70, H, D), token_slice(kv.values, 0, 70, H, D), 70);
  cache.append(s, 0, token_slice(kv.keys, 70, 1, H, D), token_slice(kv.values, 70, 1, H, D));
  const uint32_t full = cache.create_sequence();
  cache.prefill(full, 1, kv.keys, kv.values, max_tokens);

  const CacheStats stats = cache.stats();
  const auto out = cache.attention(s, 0, q);
  const auto out_full = cache.attention(full, 1, q);
  const auto one_k = token_slice(kv.keys, 71, 1, H, D), one_v = token_slice(kv.values, 71, 1, H, D);
  const std::vector<uint8_t> bytes = snapshot(cache, {s, full});
  auto check = [&](const std::function<void()>& f, const std::string& mentions) {
    SCOPED_TRACE(mentions);
    expect_error(f, mentions);
    EXPECT_TRUE(same_stats(cache.stats(), stats));
    EXPECT_TRUE(snapshot(cache, {s, full}) == bytes) << "the cache's bytes changed";
    EXPECT_EQ(cache.attention(s, 0, q), out);
    EXPECT_EQ(cache.attention(full, 1, q), out_full);
  };
  check([&] { cache.append(77, 0, one_k, one_v); }, "sequence 77");
  check([&] { cache.append(s, 2, one_k, one_v); }, "layer 2");
  check([&] { cache.append(s, 0, std::vector<uint16_t>(H * D - 1), one_v); }, std::to_string(H * D - 1));
  check([&] { cache.append(s, 0, one_k, std::vector<uint16_t>(H * D + 2)); }, std::to_string(H * D + 2));
  check([&] { cache.append(full, 1, one_k, one_v); }, "max_tokens 100");
  check([&] { cache.prefill(s, 0, kv.keys, kv.values, 100); }, "prefill twice");
  check([&] { cache.prefill(s, 1, kv.keys, kv.values, 99); }, std::to_string(99 * H * D));  // K/V hold 100 tokens
  check([&] { cache.prefill(s, 1, kv.keys, kv.values, 0); }, "0 tokens");
  check([&] { cache.prefill(full, 0, kv.keys, kv.values, 101); }, "101");
  check([&] { cache.attention(s, 0, std::vector<float>(q.size() + 1)); }, std::to_string(q.size() + 1));
  check([&] { cache.attention(s, 0, q, -1.0f); }, "scale");
  check([&] { cache.attention(s, 1, q); }, "empty sequence");
  check([&] { cache.attention(s, 9, q); }, "layer 9");
  check([&] { cache.free_sequence(12345); }, "12345");
  check([&] { cache.segment_host(s, 0, 5); }, "segment 5");
  {
    rt::Buffer kb(ctx, 70 * H * D * 4 + 256), vb(ctx, 70 * H * D * 4 + 256);
    check([&] { cache.prefill(s, 1, kb.view(), vb.view(), static_cast<ElementType>(9), 70); }, "f16 or f32 accepted");
    check([&] { cache.prefill(s, 1, kb.view(0, 64), vb.view(), ElementType::f16, 70); }, "64 bytes");
    check([&] { cache.prefill(s, 1, kb.view(2, 70 * H * D * 2), vb.view(), ElementType::f16, 70); }, "offset 2");
    check([&] { cache.append(s, 0, kb.view(), vb.view(0, 8)); }, "8 bytes");
    check([&] { cache.attention(s, 0, kb.view(), vb.view(0, 4)); }, "4 bytes");
    check([&] { cache.dequantize(s, 0, kb.view(0, 100), vb.view()); }, "100 bytes");
    // Non-finite input: rejected with its position, nothing stored.
    auto keys = token_slice(kv.keys, 0, 70, H, D);
    keys[(size_t(5) * H + 1) * D + 7] = 0x7c00;  // +Inf at token 5, head 1, channel 7
    check([&] { cache.prefill(s, 1, keys, token_slice(kv.values, 0, 70, H, D), 70); }, "token 5, head 1, channel 7");
    auto values = token_slice(kv.values, 71, 1, H, D);
    values[D + 3] = 0x7e00;  // NaN, head 1, channel 3 of the appended token (position 71)
    check([&] { cache.append(s, 0, one_k, values); }, "values at token 71, head 1, channel 3");
    std::vector<float> big(size_t(70) * H * D, 1.0f);
    big[size_t(69) * H * D] = 1e6f;  // finite in fp32, Inf in fp16
    kb.upload(big.data(), big.size() * 4);
    vb.upload(big.data(), big.size() * 4);
    check([&] { cache.prefill(s, 1, kb.view(), vb.view(), ElementType::f32, 70); }, "token 69, head 0, channel 0");
  }
  // A sequence that was appended to cannot be prefilled (layer 0 of `s` has appends).
  const uint32_t t = cache.create_sequence();
  cache.append(t, 0, one_k, one_v);
  const CacheStats stats2 = cache.stats();
  expect_error([&] { cache.prefill(t, 0, kv.keys, kv.values, 100); }, "after append");
  EXPECT_TRUE(same_stats(cache.stats(), stats2));
}

TEST_F(CacheBookkeeping, ConstructionChecks) {
  const CacheSettings s = preset("k1.5-v1.58");
  expect_error([&] { Cache(ctx, {1, 2, 7, 64}, s, 64); }, "q_heads 7");
  expect_error([&] { Cache(ctx, {1, 1, 17, 64}, s, 64); }, "17 query heads per KV head; the attention serves at most 16");
  expect_error([&] { Cache(ctx, {1, 2, 34, 64}, s, 64); }, "q_heads 34 is 17 query heads per KV head");
  // head_dim: a multiple of 16 from 64 to 256
  expect_error([&] { Cache(ctx, {1, 2, 4, 72}, s, 64); }, "head_dim 72 (a multiple of 16 from 64 to 256 accepted)");
  expect_error([&] { Cache(ctx, {1, 2, 4, 48}, s, 64); }, "head_dim 48");
  expect_error([&] { Cache(ctx, {1, 2, 4, 272}, s, 64); }, "head_dim 272");
  expect_error([&] { Cache(ctx, {0, 2, 4, 64}, s, 64); }, "layers 0");
  expect_error([&] { Cache(ctx, {1, 2, 4, 64}, s, 0); }, "max_tokens 0");
  expect_error([&] { Cache(ctx, {1, 8, 8, 256}, s, 1u << 20); }, "2^31");
  // Group sizes the quantizers take (multiples of 32) but the fused attention does not read.
  CacheSettings g96 = preset("2bit");
  g96.group_size = 96;
  g96.keys.group_size = 96;
  g96.residual_length = 192;
  expect_error([&] { Cache(ctx, {1, 2, 4, 64}, g96, 64); }, "group_size 96; the fused attention reads groups of 32, 64 or 128");
  CacheSettings g256 = preset("k1.5-v1.58");
  g256.group_size = 256;
  g256.keys.group_size = 256;
  g256.residual_length = 256;
  expect_error([&] { Cache(ctx, {1, 2, 4, 64}, g256, 64); }, "group_size 256");
  // KIVI groups channels: a group wider than head_dim is refused.
  CacheSettings kivi128 = preset("kivi");
  kivi128.group_size = 128;
  kivi128.keys.group_size = 128;
  expect_error([&] { Cache(ctx, {1, 2, 4, 64}, kivi128, 64); }, "head_dim 64 is not a multiple of group_size 128");
  expect_error([&] { Cache(ctx, {1, 2, 4, 80}, preset("kivi"), 64); }, "head_dim 80 is not a multiple of group_size 32");
  // The original's configuration dictionary is accepted as settings.
  Cache dict(ctx, {1, 2, 4, 64},
             parse_settings("{'backend': 'QuantizedCacheVLM', 'nbits': [1.5, 1.58], 'q_group_size': 32, "
                            "'residual_length': 128, 'axis_key': -1, 'axis_value': -1}"),
             64);
  EXPECT_TRUE(same_configuration(dict.settings(), preset("k1.5-v1.58")));
}

// Prefill from the engine's device buffers (at an offset) stores exactly what the host overload
// stores: same segments, same residual, same attention output bit for bit.
TEST_F(CacheBookkeeping, DevicePrefillEqualsHostPrefill) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const uint32_t T = 77;
  const CacheGeometry g{1, H, H * ratio, D};
  for (const char* p : {"k1.5-v1.58", "fp16"}) {
    SCOPED_TRACE(p);
    Cache cache(ctx, g, preset(p), 256);
    const KvData kv = random_kv(H, T, D, seed);
    const auto q = realistic_query(kv.keys, T, H, g.q_heads, D, seed + 1);
    const uint64_t bytes = kv.keys.size() * 2, offset = 256;
    rt::Buffer kb(ctx, offset + bytes), vb(ctx, offset + bytes);
    kb.upload(kv.keys.data(), bytes, offset);
    vb.upload(kv.values.data(), bytes, offset);
    const uint32_t a = cache.create_sequence(), b = cache.create_sequence();
    cache.prefill(a, 0, kv.keys, kv.values, T);
    cache.prefill(b, 0, kb.view(offset, bytes), vb.view(offset, bytes), ElementType::f16, T);
    EXPECT_EQ(cache.attention(a, 0, q), cache.attention(b, 0, q));
    std::vector<uint16_t> ka, va, kb2, vb2;
    cache.dequantize(a, 0, ka, va);
    cache.dequantize(b, 0, kb2, vb2);
    EXPECT_EQ(ka, kb2);
    EXPECT_EQ(va, vb2);
  }
}

// Bytes reported are those the bit accounting defines for the same shape (DESIGN section 4), plus
// the uint32 channel table the attention reads as the map.
TEST_F(CacheBookkeeping, StatsAreHonest) {
  const uint32_t T = 1000, Dm = 128;
  for (const char* p : {"2bit", "kivi", "k1.5-v2", "k1.5-v1.58", "fp16"}) {
    SCOPED_TRACE(p);
    const CacheSettings settings = preset(p);
    Cache cache(ctx, {1, H, H * ratio, Dm}, settings, 2048);
    const KvData kv = random_kv(H, T, Dm, 3);
    const uint32_t s = cache.create_sequence();
    cache.prefill(s, 0, kv.keys, kv.values, T);
    const CacheStats st = cache.stats();
    EXPECT_EQ(st.tokens, T);
    EXPECT_EQ(st.fp16_equivalent_bytes, uint64_t(T) * H * Dm * 4);
    if (std::string(p) == "fp16") {
      EXPECT_EQ(st.quantized_tokens, 0u);
      EXPECT_EQ(st.residual_bytes, uint64_t(T) * H * Dm * 4);
      EXPECT_EQ(st.key_bits, 16.0);
      continue;
    }
    const uint32_t Tq = T / 32 * 32;
    EXPECT_EQ(st.quantized_tokens, Tq);
    EXPECT_EQ(st.residual_bytes, uint64_t(T - Tq) * H * Dm * 4);
    const TensorShape shape{H, Tq, Dm};
    const StorageBreakdown kb = settings_key_storage(settings, shape), vb = settings_value_storage(settings, shape);
    EXPECT_EQ(st.keys.codes, kb.code_bytes);
    EXPECT_EQ(st.keys.scales, kb.scale_bytes);
    EXPECT_EQ(st.keys.mins, kb.min_bytes);
    EXPECT_EQ(st.keys.maps, uint64_t(H) * Dm * 4);
    EXPECT_EQ(st.values.codes, vb.code_bytes);
    EXPECT_EQ(st.values.scales, vb.scale_bytes);
    EXPECT_EQ(st.values.mins, vb.min_bytes);
    const double values = double(Tq) * H * Dm;
    EXPECT_DOUBLE_EQ(st.key_bits, 8.0 * double(kb.code_bytes + kb.scale_bytes + kb.min_bytes + H * Dm * 4) / values);
    EXPECT_DOUBLE_EQ(st.value_bits, vb.bits_per_value());
    std::printf("%-11s key bits %.4f, value bits %.4f\n", p, st.key_bits, st.value_bits);
  }
}

}  // namespace
}  // namespace vidkv::test
