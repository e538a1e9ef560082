// Per-head cache policies (head_policy.hpp) in vidkv::Cache: a window head attends exactly to its
// sink and recent tokens, a full head to every token, and a layer's preset heads give bit for bit
// what a cache of only those heads gives; mixed layers recorded into a caller's command buffer
// equal synchronous ones; window memory stays constant over a long decode; bad policy input is
// rejected when the cache is made.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "cache_test_helpers.hpp"
#include "vidkv/fp16.hpp"
#include "vidkv/head_policy.hpp"
#include "vidkv/runtime/buffer.hpp"
#include "vidkv/runtime/commands.hpp"
#include "vulkan_fixture.hpp"

namespace vidkv::test {
namespace {

using CacheHeads = VulkanTest;
using P = HeadPolicy;

CacheSettings with_policies(const char* name, std::vector<HeadPolicy> heads, uint32_t sink, uint32_t recent,
                            uint32_t residual = 64) {
  CacheSettings s = preset(name);
  s.residual_length = residual;
  s.head_policies.heads = std::move(heads);
  s.head_policies.sink = sink;
  s.head_policies.recent = recent;
  return s;
}

// Heads `heads` of [tokens][H][D] halves, gathered into [tokens][heads.size()][D].
std::vector<uint16_t> gather_heads(const std::vector<uint16_t>& x, uint32_t H, uint32_t D, uint32_t tokens,
                                   const std::vector<uint32_t>& heads) {
  std::vector<uint16_t> out;
  for (uint32_t t = 0; t < tokens; ++t) {
    for (uint32_t h : heads) {
      const auto* row = x.data() + (size_t(t) * H + h) * D;
      out.insert(out.end(), row, row + D);
    }
  }
  return out;
}

// Rows of query heads of KV heads `heads` (ratio query heads each) out of [q_heads][D].
std::vector<float> gather_rows(const std::vector<float>& q, uint32_t ratio, uint32_t D,
                               const std::vector<uint32_t>& heads) {
  std::vector<float> out;
  for (uint32_t h : heads) out.insert(out.end(), q.begin() + size_t(h) * ratio * D, q.begin() + size_t(h + 1) * ratio * D);
  return out;
}

// Tokens a window of sink + recent holds when `count` tokens have arrived.
std::vector<uint32_t> window_tokens(uint32_t count, uint32_t sink, uint32_t recent) {
  std::set<uint32_t> held;
  for (uint32_t t = 0; t < std::min(count, sink); ++t) held.insert(t);
  for (uint32_t t = count > recent ? count - recent : 0; t < count; ++t) held.insert(t);
  return {held.begin(), held.end()};
}

// Float64 attention of query head i (KV head i / ratio) over the fp16 tokens `tokens`.
std::vector<double> reference_head(const std::vector<float>& q, uint32_t i, uint32_t ratio, const KvData& kv,
                                   uint32_t H, uint32_t D, const std::vector<uint32_t>& tokens) {
  const uint32_t h = i / ratio;
  const double scale = 1.0 / std::sqrt(double(D));
  std::vector<double> score;
  for (uint32_t t : tokens) {
    double s = 0;
    for (uint32_t d = 0; d < D; ++d) s += double(q[size_t(i) * D + d]) * fp16::to_float(kv.keys[(size_t(t) * H + h) * D + d]);
    score.push_back(s * scale);
  }
  const double top = *std::max_element(score.begin(), score.end());
  double sum = 0;
  for (double& s : score) sum += (s = std::exp(s - top));
  std::vector<double> out(D, 0.0);
  for (size_t j = 0; j < tokens.size(); ++j) {
    for (uint32_t d = 0; d < D; ++d) out[d] += score[j] / sum * fp16::to_float(kv.values[(size_t(tokens[j]) * H + h) * D + d]);
  }
  return out;
}

// Relative L2 error of one query head's row.
double row_error(const std::vector<float>& out, uint32_t i, uint32_t D, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (uint32_t d = 0; d < D; ++d) {
    num += (out[size_t(i) * D + d] - ref[d]) * (out[size_t(i) * D + d] - ref[d]);
    den += ref[d] * ref[d];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

// Checks layer `layer` of `cache` holding tokens [0, count) of `kv` under `policies` (one per KV
// head): preset heads' attention and decode equal a cache of only those heads fed the same
// tokens in the same calls (`uniform`, sequence `useq`); full and window heads' attention within
// 1e-3 of the float64 reference over the tokens they hold, and their decode the input's bits
// (zeros for tokens a window no longer holds).
void expect_layer(Cache& cache, uint32_t seq, uint32_t layer, const std::vector<HeadPolicy>& policies,
                  const KvData& kv, uint32_t count, const std::vector<float>& q, Cache* uniform, uint32_t useq) {
  const CacheGeometry& g = cache.geometry();
  const uint32_t H = g.kv_heads, D = g.head_dim, ratio = g.q_heads / H;
  const HeadPolicySpec& spec = cache.settings().head_policies;
  std::vector<uint32_t> preset_heads;
  for (uint32_t h = 0; h < H; ++h) {
    if (policies[h] == P::vidkv) preset_heads.push_back(h);
  }
  ASSERT_EQ(cache.tokens(seq, layer), count);
  const std::vector<float> out = cache.attention(seq, layer, q);
  std::vector<uint16_t> dk, dv;
  cache.dequantize(seq, layer, dk, dv);
  ASSERT_EQ(dk.size(), size_t(count) * H * D);
  std::vector<float> uout;
  std::vector<uint16_t> uk, uv;
  if (uniform) {
    uout = uniform->attention(useq, 0, gather_rows(q, ratio, D, preset_heads));
    uniform->dequantize(useq, 0, uk, uv);
  }
  const std::vector<uint32_t> held = window_tokens(count, spec.sink, spec.recent);
  std::vector<uint32_t> all(count);
  for (uint32_t t = 0; t < count; ++t) all[t] = t;
  for (uint32_t h = 0; h < H; ++h) {
    SCOPED_TRACE("KV head " + std::to_string(h) + " (" + head_policy_name(policies[h]) + "), " +
                 std::to_string(count) + " tokens");
    if (policies[h] == P::vidkv) {
      if (!uniform) continue;  // checked by the callers that have a cache of the preset heads
      const uint32_t j = uint32_t(std::find(preset_heads.begin(), preset_heads.end(), h) - preset_heads.begin());
      for (uint32_t r = 0; r < ratio * D; ++r) {
        ASSERT_EQ(out[size_t(h) * ratio * D + r], uout[size_t(j) * ratio * D + r]) << "query element " << r;
      }
      for (uint32_t t = 0; t < count; ++t) {
        for (uint32_t d = 0; d < D; ++d) {
          const size_t a = (size_t(t) * H + h) * D + d, b = (size_t(t) * preset_heads.size() + j) * D + d;
          ASSERT_EQ(dk[a], uk[b]) << "token " << t;
          ASSERT_EQ(dv[a], uv[b]) << "token " << t;
        }
      }
      continue;
    }
    const std::vector<uint32_t>& tokens = policies[h] == P::full ? all : held;
    for (uint32_t i = h * ratio; i < (h + 1) * ratio; ++i) {
      EXPECT_LT(row_error(out, i, D, reference_head(q, i, ratio, kv, H, D, tokens)), 1e-3) << "query head " << i;
    }
    std::set<uint32_t> kept(tokens.begin(), tokens.end());
    for (uint32_t t = 0; t < count; ++t) {
      for (uint32_t d = 0; d < D; ++d) {
        const size_t a = (size_t(t) * H + h) * D + d;
        ASSERT_EQ(dk[a], kept.count(t) ? kv.keys[a] : uint16_t(0)) << "token " << t;
        ASSERT_EQ(dv[a], kept.count(t) ? kv.values[a] : uint16_t(0)) << "token " << t;
      }
    }
  }
}

std::vector<uint16_t> token_rows(const std::vector<uint16_t>& x, uint32_t from, uint32_t count, uint32_t H, uint32_t D) {
  return {x.begin() + size_t(from) * H * D, x.begin() + size_t(from + count) * H * D};
}

TEST_F(CacheHeads, WindowHeadsAttendToTheirSinkAndRecentTokensOnly) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const uint32_t H = 2, D = 64, ratio = 2, S = 4, R = 8, last = 40;
  const KvData kv = random_kv(H, last, D, seed);
  const std::vector<HeadPolicy> policies{P::window, P::window};
  // Prefills below, at and above sink + recent, then appends past it one token at a time.
  for (uint32_t prefill : {5u, S + R, 20u}) {
    SCOPED_TRACE("prefill " + std::to_string(prefill));
    Cache cache(ctx, {1, H, H * ratio, D}, with_policies("k1.5-v1.58", policies, S, R), 64);
    const uint32_t s = cache.create_sequence();
    cache.prefill(s, 0, token_rows(kv.keys, 0, prefill, H, D), token_rows(kv.values, 0, prefill, H, D), prefill);
    for (uint32_t count = prefill;; ++count) {
      const auto q = realistic_query(kv.keys, count, H, H * ratio, D, seed + count);
      expect_layer(cache, s, 0, policies, kv, count, q, nullptr, 0);
      if (count == last) break;
      cache.append(s, 0, token_rows(kv.keys, count, 1, H, D), token_rows(kv.values, count, 1, H, D));
    }
    const CacheStats st = cache.stats();
    EXPECT_EQ(st.policies[size_t(P::window)].heads, 2u);
    EXPECT_EQ(st.policies[size_t(P::window)].tokens, uint64_t(S + R) * H);
    EXPECT_EQ(st.policies[size_t(P::window)].bytes, uint64_t(S + R) * H * D * 2 * 2);
    EXPECT_EQ(st.policies[size_t(P::vidkv)].bytes, 0u);
  }
  // The default window (16 + 64) at lengths below, at and above 80.
  for (uint32_t count : {79u, 80u, 81u, 200u}) {
    CacheSettings st = preset("k1.5-v1.58");
    st.head_policies.heads = policies;
    Cache cache(ctx, {1, H, H * ratio, D}, st, 256);
    const KvData long_kv = random_kv(H, count, D, seed + 7);
    const uint32_t s = cache.create_sequence();
    cache.prefill(s, 0, long_kv.keys, long_kv.values, count);
    expect_layer(cache, s, 0, policies, long_kv, count, realistic_query(long_kv.keys, count, H, H * ratio, D, seed),
                 nullptr, 0);
  }
}

// One layer mixing all three policies (GQA 7, D 128, the video models' shape) and one with no
// preset head, through a prefill and appends across a residual flush, against per-policy
// references; every preset that has a fused attention path.
TEST_F(CacheHeads, MixedLayersMatchTheirPerPolicyReferences) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const uint32_t H = 4, D = 128, ratio = 7, T = 300, appends = 56, S = 16, R = 64;
  const std::vector<HeadPolicy> layer0{P::vidkv, P::full, P::window, P::vidkv};
  const std::vector<HeadPolicy> layer1{P::window, P::window, P::full, P::full};
  std::vector<HeadPolicy> all = layer0;
  all.insert(all.end(), layer1.begin(), layer1.end());
  const KvData kv = random_kv(H, T + appends, D, seed);
  const std::vector<uint32_t> preset_heads{0, 3};
  for (const char* p : {"k1.5-v1.58", "kivi", "fp16"}) {
    SCOPED_TRACE(p);
    Cache cache(ctx, {2, H, H * ratio, D}, with_policies(p, all, S, R), 512);
    Cache uniform(ctx, {1, 2, 2 * ratio, D}, with_policies(p, {}, S, R), 512);
    const uint32_t s = cache.create_sequence(), u = uniform.create_sequence();
    for (uint32_t l : {0u, 1u}) cache.prefill(s, l, token_rows(kv.keys, 0, T, H, D), token_rows(kv.values, 0, T, H, D), T);
    uniform.prefill(u, 0, gather_heads(kv.keys, H, D, T, preset_heads), gather_heads(kv.values, H, D, T, preset_heads),
                    T);
    for (uint32_t t = T; t <= T + appends; ++t) {
      if (t == T || t == T + 51 || t == T + appends) {  // before, at the flush (12 + 52 = 64) and after
        const auto q = realistic_query(kv.keys, t, H, H * ratio, D, seed + t);
        expect_layer(cache, s, 0, layer0, kv, t, q, &uniform, u);
        expect_layer(cache, s, 1, layer1, kv, t, q, nullptr, 0);
      }
      if (t == T + appends) break;
      for (uint32_t l : {0u, 1u}) cache.append(s, l, token_rows(kv.keys, t, 1, H, D), token_rows(kv.values, t, 1, H, D));
      uniform.append(u, 0, gather_heads(token_rows(kv.keys, t, 1, H, D), H, D, 1, preset_heads),
                     gather_heads(token_rows(kv.values, t, 1, H, D), H, D, 1, preset_heads));
    }
    // Memory per policy: the preset heads' store is the uniform cache's; full heads max_tokens slots.
    const CacheStats st = cache.stats(), ust = uniform.stats();
    EXPECT_EQ(st.policies[size_t(P::vidkv)].heads, 2u);
    EXPECT_EQ(st.policies[size_t(P::full)].heads, 3u);
    EXPECT_EQ(st.policies[size_t(P::window)].heads, 3u);
    EXPECT_EQ(st.policies[size_t(P::vidkv)].bytes, ust.policies[size_t(P::vidkv)].bytes);
    EXPECT_EQ(st.keys.total(), ust.keys.total());
    EXPECT_EQ(st.values.total(), ust.values.total());
    EXPECT_EQ(st.key_bits, ust.key_bits);
    EXPECT_EQ(st.policies[size_t(P::full)].bytes, uint64_t(512) * 3 * D * 2 * 2);
    EXPECT_EQ(st.policies[size_t(P::window)].bytes, uint64_t(S + R) * 3 * D * 2 * 2);
    EXPECT_EQ(st.policies[size_t(P::window)].tokens, uint64_t(S + R) * 3);
    EXPECT_EQ(st.policies[size_t(P::full)].tokens, uint64_t(T + appends) * 3);
    EXPECT_EQ(st.tokens, uint64_t(T + appends) * 2);
  }
}

TEST_F(CacheHeads, RecordedMixedLayersEqualSynchronousOnes) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const uint32_t H = 4, D = 64, ratio = 2, T = 90, appends = 70;
  const std::vector<HeadPolicy> policies{P::window, P::vidkv, P::full, P::vidkv};
  const KvData kv = random_kv(H, T + appends, D, seed);
  const auto q = realistic_query(kv.keys, T, H, H * ratio, D, seed + 1);
  const uint64_t row = uint64_t(H) * D * 2, qbytes = q.size() * 4, all = (T + appends) * row;
  const CacheSettings settings = with_policies("k1.5-v1.58", policies, 8, 24);
  Cache sync(ctx, {1, H, H * ratio, D}, settings, 256), recorded(ctx, {1, H, H * ratio, D}, settings, 256);
  const uint32_t a = sync.create_sequence(), b = recorded.create_sequence();
  rt::Buffer kin(ctx, all), vin(ctx, all), qin(ctx, qbytes), out(ctx, qbytes), dk(ctx, all), dv(ctx, all);
  kin.upload(kv.keys.data(), all);
  vin.upload(kv.values.data(), all);
  qin.upload(q.data(), qbytes);
  out.fill(0xff);
  dk.fill(0xff);
  dv.fill(0xff);
  sync.prefill(a, 0, token_rows(kv.keys, 0, T, H, D), token_rows(kv.values, 0, T, H, D), T);
  for (uint32_t t = T; t < T + appends; ++t) {
    sync.append(a, 0, token_rows(kv.keys, t, 1, H, D), token_rows(kv.values, t, 1, H, D));
  }
  const auto expected = sync.attention(a, 0, q);
  std::vector<uint16_t> ek, ev;
  sync.dequantize(a, 0, ek, ev);

  rt::CommandRunner caller(ctx);
  caller.run([&](VkCommandBuffer cmd) {
    rt::transfer_to_compute_barrier(cmd);
    recorded.record_prefill(cmd, b, 0, kin.view(0, T * row), vin.view(0, T * row), ElementType::f16, T);
    for (uint32_t t = T; t < T + appends; ++t) recorded.record_append(cmd, b, 0, kin.view(t * row, row), vin.view(t * row, row));
    recorded.record_attention(cmd, b, 0, qin.view(), out.view());
    recorded.record_dequantize(cmd, b, 0, dk.view(), dv.view());
  });
  recorded.release_retired();
  std::vector<float> got(q.size());
  out.download(got.data(), qbytes);
  EXPECT_EQ(got, expected);
  std::vector<uint16_t> gk(ek.size()), gv(ev.size());
  dk.download(gk.data(), all);
  dv.download(gv.data(), all);
  EXPECT_EQ(gk, ek);
  EXPECT_EQ(gv, ev);
  EXPECT_TRUE(snapshot(recorded, {b}) == snapshot(sync, {a}));
}

// RLKV's point: a window head's memory does not grow with the sequence.
TEST_F(CacheHeads, WindowMemoryStaysConstantOver2000DecodeSteps) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const uint32_t H = 2, D = 64, T = 40, steps = 2000;
  const std::vector<HeadPolicy> policies{P::vidkv, P::window};
  CacheSettings settings = preset("k1.5-v1.58");
  settings.head_policies.heads = policies;  // default window: 16 + 64
  Cache cache(ctx, {1, H, H, D}, settings, T + steps);
  const KvData kv = random_kv(H, T + steps, D, seed);
  const uint32_t s = cache.create_sequence();
  cache.prefill(s, 0, token_rows(kv.keys, 0, T, H, D), token_rows(kv.values, 0, T, H, D), T);
  uint64_t window_bytes = cache.stats().policies[size_t(P::window)].bytes;
  EXPECT_EQ(window_bytes, uint64_t(80) * D * 2 * 2);
  uint64_t last_vidkv = 0;
  for (uint32_t t = T; t < T + steps; ++t) {
    cache.append(s, 0, token_rows(kv.keys, t, 1, H, D), token_rows(kv.values, t, 1, H, D));
    if ((t + 1) % 250 == 0) {
      const CacheStats st = cache.stats();
      EXPECT_EQ(st.policies[size_t(P::window)].bytes, window_bytes) << "after " << t + 1 << " tokens";
      EXPECT_EQ(st.policies[size_t(P::window)].tokens, 80u);
      EXPECT_EQ(st.policies[size_t(P::window)].fp16_equivalent_bytes, uint64_t(t + 1) * D * 2 * 2);
      EXPECT_GT(st.policies[size_t(P::vidkv)].bytes, last_vidkv);  // the compressed head grows
      last_vidkv = st.policies[size_t(P::vidkv)].bytes;
    }
  }
  // The window head against the float64 reference over its 80 tokens (the preset head's
  // equality with a cache of its own is MixedLayersMatchTheirPerPolicyReferences').
  const auto q = realistic_query(kv.keys, T + steps, H, H, D, seed + 3);
  const std::vector<float> out = cache.attention(s, 0, q);
  const auto held = window_tokens(T + steps, 16, 64);
  EXPECT_LT(row_error(out, 1, D, reference_head(q, 1, 1, kv, H, D, held)), 1e-3);
}

// Semantic token protection applies to the preset heads of a mixed layer as to a cache of them.
TEST_F(CacheHeads, StpPresetHeadsInAMixedLayerEqualAnStpCacheOfThem) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const uint32_t H = 4, D = 64, ratio = 2, T = 200;
  const std::vector<HeadPolicy> policies{P::full, P::vidkv, P::window, P::vidkv};
  const KvData kv = random_kv(H, T, D, seed);
  CacheStpInput stp;
  stp.first_visual = 10;
  stp.visual_tokens = 150;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u01(0.0f, 1.0f);
  for (uint32_t i = 0; i < stp.visual_tokens; ++i) stp.scores.push_back(u01(rng));
  Cache cache(ctx, {1, H, H * ratio, D}, with_policies("k1.5-v1.58-stp", policies, 8, 32), 256);
  Cache uniform(ctx, {1, 2, 2 * ratio, D}, with_policies("k1.5-v1.58-stp", {}, 8, 32), 256);
  const uint32_t s = cache.create_sequence(), us = uniform.create_sequence();
  cache.prefill(s, 0, kv.keys, kv.values, T, stp);
  uniform.prefill(us, 0, gather_heads(kv.keys, H, D, T, {1, 3}), gather_heads(kv.values, H, D, T, {1, 3}), T, stp);
  ASSERT_EQ(cache.segment_count(s, 0), 1u);
  EXPECT_FALSE(cache.segment_host(s, 0, 0).split.protected_tokens.empty());
  EXPECT_EQ(cache.segment_host(s, 0, 0).split.protected_tokens, uniform.segment_host(us, 0, 0).split.protected_tokens);
  expect_layer(cache, s, 0, policies, kv, T, realistic_query(kv.keys, T, H, H * ratio, D, seed + 1), &uniform, us);
}

// A rejected append (NaN) to a layer whose window ring is full overwrites nothing.
TEST_F(CacheHeads, RejectedAppendLeavesTheWindowAsItWas) {
  const uint64_t seed = tools::test_seed();
  const uint32_t H = 2, D = 64, T = 50;
  const std::vector<HeadPolicy> policies{P::window, P::vidkv};
  const KvData kv = random_kv(H, T + 1, D, seed);
  Cache cache(ctx, {1, H, H, D}, with_policies("k1.5-v1.58", policies, 4, 8), 128);
  const uint32_t s = cache.create_sequence();
  cache.prefill(s, 0, token_rows(kv.keys, 0, T, H, D), token_rows(kv.values, 0, T, H, D), T);
  std::vector<uint16_t> k0, v0, k1, v1;
  cache.dequantize(s, 0, k0, v0);
  const CacheStats before = cache.stats();
  std::vector<uint16_t> bad = token_rows(kv.keys, T, 1, H, D);
  bad[5] = 0x7e00;  // NaN in head 0 (the window head), channel 5
  expect_error([&] { cache.append(s, 0, bad, token_rows(kv.values, T, 1, H, D)); }, "token 50");
  EXPECT_EQ(cache.tokens(s, 0), T);
  cache.dequantize(s, 0, k1, v1);
  EXPECT_EQ(k1, k0);
  EXPECT_EQ(v1, v0);
  EXPECT_TRUE(same_stats(cache.stats(), before));
  // The same token without the NaN is then accepted.
  cache.append(s, 0, token_rows(kv.keys, T, 1, H, D), token_rows(kv.values, T, 1, H, D));
  expect_layer(cache, s, 0, {P::window, P::vidkv}, kv, T + 1, realistic_query(kv.keys, T + 1, H, H, D, seed), nullptr,
               0);
}

TEST_F(CacheHeads, BadPolicyInputIsRejectedWhenTheCacheIsMade) {
  const CacheGeometry g{2, 4, 8, 64};
  auto make = [&](const CacheSettings& s) { Cache c(ctx, g, s, 128); };
  CacheSettings s = preset("k1.5-v1.58");
  s.head_policies.heads = std::vector<HeadPolicy>(7, P::full);
  expect_error([&] { make(s); }, "8");  // 2 layers x 4 heads
  s = preset("k1.5-v1.58");
  for (uint32_t l = 0; l < 2; ++l) {
    for (uint32_t h = 0; h < 4; ++h) s.head_policies.scores.push_back({l, h, double(l * 4 + h)});
  }
  s.head_policies.sparsity = 0.5;
  s.head_policies.scores.pop_back();  // layer 1 head 3 unscored
  expect_error([&] { make(s); }, "layer 1");
  s.head_policies.scores.push_back({2, 0, 1.0});  // a layer the geometry lacks
  expect_error([&] { make(s); }, "layer 2");
  s.head_policies.scores.back() = {1, 3, 7.0};
  s.head_policies.sparsity = 1.0;
  expect_error([&] { make(s); }, "sparsity");
  s.head_policies.sparsity = 0.5;
  s.head_policies.sink = 0;
  s.head_policies.recent = 0;
  expect_error([&] { make(s); }, "sink");
  // Valid: the 4 lowest-scored heads (layer 0) take window, the rest full.
  s.head_policies.sink = 16;
  s.head_policies.recent = 64;
  Cache ok(ctx, g, s, 128);
  const CacheStats st = ok.stats();
  EXPECT_EQ(st.policies[size_t(P::window)].heads, 4u);
  EXPECT_EQ(st.policies[size_t(P::full)].heads, 4u);
  EXPECT_EQ(st.policies[size_t(P::vidkv)].heads, 0u);
}

}  // namespace
}  // namespace vidkv::test
