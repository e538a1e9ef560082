// vidkv::Cache at today's model shapes: group sizes 64 and 128 (the fused attention walks 32-token
// blocks and reads each block's scales from its group) and head dims 80, 96 and 112 (not a multiple
// of the lanes that own channels): prefill, appends across residual flushes, extend, batched
// appends and attention, fork and a truncation inside a segment, on both shader paths, against the
// float64 reference over the cache's exactly decoded contents (attention_test_data.hpp's measure,
// below 1e-3); a saved cache loads bit for bit and goes on alike. Group sizes and head dims the
// attention does not read are refused at construction (test_cache_errors.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <string>

#include "cache_test_helpers.hpp"
#include "temp_dir.hpp"
#include "vidkv/fp16.hpp"
#include "vulkan_fixture.hpp"

namespace vidkv::test {
namespace {

constexpr uint32_t H = 2, kRatio = 4, kMax = 2048;

struct ShapeCase {
  const char* preset;
  uint32_t group;
  bool portable;  // Cache::set_portable_attention (the GPU kernel) or the device's default path
  uint32_t dim = 128;
};

CacheSettings settings_of(const ShapeCase& c) {
  CacheSettings s = preset(c.preset);
  s.group_size = c.group;
  s.keys.group_size = c.group;
  s.residual_length = 128;  // a multiple of both group sizes
  return s;
}

// Prefills `tokens` tokens of `kv` (STP presets: one group's worth of protected positions spread
// at random over visual tokens 16 .. 239, so part groups and 32-token blocks do not line up).
void prefill(Cache& cache, uint32_t seq, const KvData& kv, uint32_t tokens, uint64_t seed) {
  const uint32_t D = cache.geometry().head_dim;
  const auto k = token_slice(kv.keys, 0, tokens, H, D), v = token_slice(kv.values, 0, tokens, H, D);
  if (!cache.settings().stp) {
    cache.prefill(seq, 0, k, v, tokens);
    return;
  }
  std::mt19937_64 rng(seed);
  std::vector<uint32_t> visual(224);
  std::iota(visual.begin(), visual.end(), 16u);
  std::shuffle(visual.begin(), visual.end(), rng);
  CacheStpInput stp;
  stp.first_visual = 16;
  stp.visual_tokens = 224;
  stp.protected_tokens.assign(visual.begin(), visual.begin() + cache.settings().group_size);
  std::sort(stp.protected_tokens.begin(), stp.protected_tokens.end());
  cache.prefill(seq, 0, k, v, tokens, stp);
}

void append(Cache& cache, uint32_t seq, const KvData& kv, uint32_t from, uint32_t to) {
  const uint32_t D = cache.geometry().head_dim;
  for (uint32_t t = from; t < to; ++t) cache.append(seq, 0, token_slice(kv.keys, t, 1, H, D), token_slice(kv.values, t, 1, H, D));
}

std::string case_name(const ShapeCase& c) {
  std::string n = std::string(c.preset) + "_g" + std::to_string(c.group) + (c.dim != 128 ? "_d" + std::to_string(c.dim) : "") +
                  (c.portable ? "_portable" : "");
  for (char& ch : n)
    if (ch == '.' || ch == '-') ch = '_';
  return n;
}

class CacheShapes : public VulkanTest, public ::testing::WithParamInterface<ShapeCase> {};

TEST_P(CacheShapes, PrefillAppendsFlushesBatchForkTruncate) {
  const ShapeCase c = GetParam();
  const uint32_t D = c.dim;
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const uint32_t G = c.group, P = 300, A = 180, E = 100, B = 150;
  const KvData kv = random_kv(H, P + A + E + B, D, seed);
  const KvData other = random_kv(H, P + A + E + B, D, seed + 1);
  Cache cache(ctx, {1, H, H * kRatio, D}, settings_of(c), kMax);
  cache.set_portable_attention(c.portable);
  const uint32_t s = cache.create_sequence();
  std::mt19937_64 rng(seed + 5);
  auto check = [&](uint32_t seq, uint32_t tokens, const char* when, const std::vector<uint32_t>& visible = {}) {
    SCOPED_TRACE(std::string(when) + ", " + std::to_string(tokens) + " tokens");
    ASSERT_EQ(cache.tokens(seq, 0), tokens);
    const auto q = realistic_query(token_slice(kv.keys, 0, tokens, H, D), tokens, H, H * kRatio, D, rng());
    EXPECT_LT(attention_error(cache.attention(seq, 0, q), reference_kept(cache, seq, 0, q, visible), D), 1e-3);
  };

  // Prefill: one segment of the whole groups (256 tokens at 64 and 128), the tail in the residual
  // (fp16: no segments).
  prefill(cache, s, kv, P, seed + 3);
  const bool fp16 = cache.settings().key_mode == CacheSettings::KeyMode::fp16;
  if (!fp16) {
    ASSERT_EQ(cache.segment_count(s, 0), 1u);
    const CacheSegmentHost first = cache.segment_host(s, 0, 0);
    EXPECT_EQ(first.keys.shape.tokens, P / G * G);
    EXPECT_EQ(first.keys.shape.dim, D);
    EXPECT_EQ(first.keys.spec.group_size, G);
    EXPECT_EQ(first.values.spec.group_size, G);
    if (cache.settings().stp) {
      EXPECT_FALSE(first.split.protected_tokens.empty());
      EXPECT_EQ(first.split.protected_tokens.size() % G, 0u);
    }
  }
  check(s, P, "prefill");
  // Appends: residual flushes of 128 tokens (two or more blocks of 32 per group).
  for (uint32_t t = P; t < P + A; t += 20) {
    append(cache, s, kv, t, t + 20);
    check(s, t + 20, "appends");
  }
  if (!fp16) {
    EXPECT_GE(cache.segment_count(s, 0), 2u);
  }
  // Extend: many tokens at once, flushes included.
  cache.extend(s, 0, token_slice(kv.keys, P + A, E, H, D), token_slice(kv.values, P + A, E, H, D), E);
  check(s, P + A + E, "extend");

  // Fork, then batched appends of different tokens to both across a flush, batched attention.
  const uint32_t f = cache.fork_sequence(s);
  const uint32_t n = P + A + E;
  for (uint32_t t = n; t < n + B; ++t) {
    std::vector<uint16_t> k = token_slice(kv.keys, t, 1, H, D), v = token_slice(kv.values, t, 1, H, D);
    const auto ko = token_slice(other.keys, t, 1, H, D), vo = token_slice(other.values, t, 1, H, D);
    k.insert(k.end(), ko.begin(), ko.end());
    v.insert(v.end(), vo.begin(), vo.end());
    cache.append_batch(0, {s, f}, k, v);
  }
  {
    SCOPED_TRACE("batched attention");
    auto q = realistic_query(token_slice(kv.keys, 0, n + B, H, D), n + B, H, H * kRatio, D, rng());
    const auto q2 = realistic_query(token_slice(other.keys, 0, n + B, H, D), n + B, H, H * kRatio, D, rng());
    const size_t row = size_t(H) * kRatio * D;
    std::vector<float> both = q;
    both.insert(both.end(), q2.begin(), q2.end());
    const auto out = cache.attention_batch(0, {s, f}, both);
    const std::vector<float> out_s(out.begin(), out.begin() + row), out_f(out.begin() + row, out.end());
    EXPECT_LT(attention_error(out_s, reference_kept(cache, s, 0, q), D), 1e-3);
    EXPECT_LT(attention_error(out_f, reference_kept(cache, f, 0, q2), D), 1e-3);
    EXPECT_EQ(out_s, cache.attention(s, 0, q));  // batched = per sequence, bit for bit
  }

  // A cut inside the prefill's segment, off any group edge: its tail is masked.
  cache.truncate_sequence(f, P / G * G - 40);
  check(f, P / G * G - 40, "cut inside the first segment", {P / G * G - 40});
  append(cache, f, other, P / G * G - 40, P / G * G + 100);  // a new residual and its flush
  check(f, P / G * G + 100, "appends after the cut", {P / G * G - 40});
}

std::vector<ShapeCase> shape_cases() {
  std::vector<ShapeCase> cases;
  for (uint32_t group : {64u, 128u}) {
    for (const char* p : {"k1.5-v1.58", "kivi", "2bit", "k1.5-v2", "k1.5-v1.58-stp"}) cases.push_back({p, group, false});
    for (const char* p : {"k1.5-v1.58", "kivi", "k1.5-v1.58-stp"}) cases.push_back({p, group, true});
  }
  // Head dims 80, 96, 112: every preset that the dim allows (KIVI groups channels: 96 only), the
  // GPU kernel at each dim, and groups of 64 and 128 at two of them.
  for (uint32_t dim : {80u, 96u, 112u}) {
    for (const char* p : {"fp16", "k1.5-v1.58", "2bit", "k1.5-v2", "k1.5-v1.58-stp"}) cases.push_back({p, 32, false, dim});
    cases.push_back({dim == 96 ? "k1.5-v1.58-stp" : "k1.5-v1.58", 32, true, dim});
  }
  cases.push_back({"kivi", 32, false, 96});
  cases.push_back({"kivi", 32, true, 96});
  cases.push_back({"fp16", 32, true, 80});
  cases.push_back({"k1.5-v1.58", 64, false, 80});
  cases.push_back({"2bit", 128, true, 112});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Presets, CacheShapes, ::testing::ValuesIn(shape_cases()),
                         [](const auto& info) { return case_name(info.param); });

class CacheShapesSaveLoad : public VulkanTest, public ::testing::WithParamInterface<ShapeCase> {};

// Cache::save then Cache::load: the same segments, residual and attention bit for bit; both go on
// alike across a flush.
TEST_P(CacheShapesSaveLoad, RoundTripIsBitExactAndContinuesAlike) {
  const ShapeCase c = GetParam();
  const uint32_t D = c.dim;
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const KvData kv = random_kv(H, 600, D, seed);
  Cache original(ctx, {1, H, H * kRatio, D}, settings_of(c), kMax);
  const uint32_t s = original.create_sequence();
  prefill(original, s, kv, 300, seed + 3);
  append(original, s, kv, 300, 400);
  TempDir dir;
  const std::string path = dir.file("groups.vkv");
  original.save(path);
  std::unique_ptr<Cache> loaded = Cache::load(path, ctx);
  EXPECT_EQ(loaded->settings().group_size, c.group);
  EXPECT_EQ(loaded->geometry().head_dim, D);
  std::mt19937_64 rng(seed + 7);
  auto expect_same = [&](const char* when) {
    SCOPED_TRACE(when);
    ASSERT_EQ(loaded->segment_count(s, 0), original.segment_count(s, 0));
    EXPECT_TRUE(snapshot(*loaded, {s}) == snapshot(original, {s}));
    const auto q = realistic_query(kv.keys, original.tokens(s, 0), H, H * kRatio, D, rng());
    const auto x = original.attention(s, 0, q), y = loaded->attention(s, 0, q);
    EXPECT_EQ(0, std::memcmp(x.data(), y.data(), x.size() * 4)) << "attention outputs differ";
    EXPECT_LT(attention_error(y, reference_kept(*loaded, s, 0, q), D), 1e-3);
  };
  expect_same("loaded");
  for (Cache* cache : {&original, loaded.get()}) append(*cache, s, kv, 400, 560);
  expect_same("after appends across a flush");
}

INSTANTIATE_TEST_SUITE_P(Presets, CacheShapesSaveLoad,
                         ::testing::Values(ShapeCase{"k1.5-v1.58", 64, false}, ShapeCase{"k1.5-v1.58", 128, false},
                                           ShapeCase{"kivi", 64, false}, ShapeCase{"kivi", 128, false},
                                           ShapeCase{"k1.5-v1.58-stp", 128, false}, ShapeCase{"2bit", 64, false},
                                           ShapeCase{"k1.5-v1.58", 32, false, 80}, ShapeCase{"k1.5-v1.58-stp", 32, false, 112},
                                           ShapeCase{"kivi", 32, false, 96}, ShapeCase{"fp16", 32, false, 112}),
                         [](const auto& info) { return case_name(info.param); });

}  // namespace
}  // namespace vidkv::test
