// Cache::fork_sequence and truncate_sequence (cache.hpp, "Fork and truncate"): a fork and its
// source, fed different tokens, each equal a cache fed the same tokens directly; shared segments
// outlive the sequence that made them and are counted once; a cut inside the residual is bit for
// bit a cache fed that many tokens; a cut inside a quantized segment masks its tail (attention
// against the float64 reference over the kept tokens, on both shader paths; dequantize the kept
// prefix); appends and flushes after a cut; per-head policies; every error changes nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "cache_test_helpers.hpp"
#include "temp_dir.hpp"
#include "vidkv/fp16.hpp"
#include "vidkv/head_policy.hpp"
#include "vulkan_fixture.hpp"

namespace vidkv::test {
namespace {

using CacheFork = VulkanTest;

constexpr uint32_t H = 2, D = 64, kRatio = 4, kLayers = 2, kResidual = 64, kMax = 1024;
const CacheGeometry kGeometry{kLayers, H, H * kRatio, D};

CacheSettings settings_of(const char* name) {
  CacheSettings s = preset(name);
  s.residual_length = kResidual;
  return s;
}

// Per layer its own random tokens.
std::vector<KvData> layer_data(uint32_t tokens, uint64_t seed) {
  std::vector<KvData> kv;
  for (uint32_t l = 0; l < kLayers; ++l) kv.push_back(random_kv(H, tokens, D, seed + 17 * l));
  return kv;
}

void prefill_all(Cache& c, uint32_t seq, const std::vector<KvData>& kv, uint32_t tokens) {
  for (uint32_t l = 0; l < kLayers; ++l) {
    c.prefill(seq, l, token_slice(kv[l].keys, 0, tokens, H, D), token_slice(kv[l].values, 0, tokens, H, D), tokens);
  }
}

// Appends tokens [from, to) of each layer's data, token by token (layers in turn, as a model does).
void append_all(Cache& c, uint32_t seq, const std::vector<KvData>& kv, uint32_t from, uint32_t to) {
  for (uint32_t t = from; t < to; ++t) {
    for (uint32_t l = 0; l < kLayers; ++l) {
      c.append(seq, l, token_slice(kv[l].keys, t, 1, H, D), token_slice(kv[l].values, t, 1, H, D));
    }
  }
}

struct Decoded {
  std::vector<uint16_t> keys, values;
  bool operator==(const Decoded& o) const { return keys == o.keys && values == o.values; }
};
Decoded decoded(Cache& c, uint32_t seq, uint32_t layer) {
  Decoded d;
  c.dequantize(seq, layer, d.keys, d.values);
  return d;
}

// The cache's contents of one sequence without its id (snapshot() starts with it).
std::vector<uint8_t> contents(const Cache& c, uint32_t seq) {
  std::vector<uint8_t> s = snapshot(c, {seq});
  s.erase(s.begin(), s.begin() + sizeof(uint32_t));
  return s;
}

// Expects sequence `a` of `x` and `b` of `y` to hold the same: contents, dequantize and attention
// bit for bit, on every layer.
void expect_same(Cache& x, uint32_t a, Cache& y, uint32_t b, const std::vector<float>& q) {
  EXPECT_TRUE(contents(x, a) == contents(y, b));
  for (uint32_t l = 0; l < kLayers; ++l) {
    SCOPED_TRACE("layer " + std::to_string(l));
    EXPECT_EQ(x.tokens(a, l), y.tokens(b, l));
    EXPECT_TRUE(decoded(x, a, l) == decoded(y, b, l));
    EXPECT_EQ(x.attention(a, l, q), y.attention(b, l, q));
  }
}

// Fork after a prefill and some appends, then different appends on source and fork: each equals
// a cache fed its tokens directly. Freeing the source keeps the fork intact.
TEST_F(CacheFork, ForkThenDifferentAppendsEqualsCachesFedDirectly) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const uint32_t P = 100, common = 30, more = 90;  // more crosses a flush on both
  const auto a_data = layer_data(P + common + more, seed), b_data = layer_data(P + common + more, seed + 1);
  // b: the same first P + common tokens as a, then its own.
  auto b = b_data;
  for (uint32_t l = 0; l < kLayers; ++l) {
    const size_t n = size_t(P + common) * H * D;
    std::copy(a_data[l].keys.begin(), a_data[l].keys.begin() + n, b[l].keys.begin());
    std::copy(a_data[l].values.begin(), a_data[l].values.begin() + n, b[l].values.begin());
  }
  const auto q = realistic_query(a_data[0].keys, P, H, H * kRatio, D, seed + 2);
  for (const char* p : {"k1.5-v1.58", "kivi", "2bit", "fp16"}) {
    SCOPED_TRACE(p);
    Cache cache(ctx, kGeometry, settings_of(p), kMax), direct(ctx, kGeometry, settings_of(p), kMax);
    const uint32_t src = cache.create_sequence();
    prefill_all(cache, src, a_data, P);
    append_all(cache, src, a_data, P, P + common);
    const uint32_t fork = cache.fork_sequence(src);
    EXPECT_NE(fork, src);
    EXPECT_TRUE(contents(cache, fork) == contents(cache, src));
    append_all(cache, src, a_data, P + common, P + common + more);
    append_all(cache, fork, b, P + common, P + common + more);

    const uint32_t da = direct.create_sequence(), db = direct.create_sequence();
    prefill_all(direct, da, a_data, P);
    append_all(direct, da, a_data, P, P + common + more);
    prefill_all(direct, db, b, P);
    append_all(direct, db, b, P, P + common + more);
    expect_same(cache, src, direct, da, q);
    expect_same(cache, fork, direct, db, q);

    cache.free_sequence(src);
    EXPECT_FALSE(cache.has_sequence(src));
    expect_same(cache, fork, direct, db, q);
  }
}

// Shared segments and channel tables count once; each sequence's residual counts.
TEST_F(CacheFork, StatsCountSharedBytesOnce) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const auto kv = layer_data(400, seed);
  Cache cache(ctx, kGeometry, settings_of("k1.5-v1.58"), kMax);
  const uint32_t src = cache.create_sequence();
  prefill_all(cache, src, kv, 300);  // one segment of 288 and 12 residual tokens per layer
  const CacheStats one = cache.stats();
  ASSERT_EQ(one.segments, kLayers);
  const uint32_t fork = cache.fork_sequence(src);
  const CacheStats two = cache.stats();
  EXPECT_EQ(two.sequences, 2u);
  EXPECT_EQ(two.segments, one.segments);
  EXPECT_EQ(two.keys.total(), one.keys.total());
  EXPECT_EQ(two.values.total(), one.values.total());
  EXPECT_EQ(two.key_bits, one.key_bits);
  EXPECT_EQ(two.tokens, 2 * one.tokens);
  EXPECT_EQ(two.quantized_tokens, 2 * one.quantized_tokens);
  EXPECT_EQ(two.residual_bytes, 2 * one.residual_bytes);
  EXPECT_EQ(two.residual_capacity_bytes, 2 * one.residual_capacity_bytes);
  // A flush on the fork adds its own segment (and no second channel table).
  append_all(cache, fork, kv, 300, 300 + kResidual - 12);
  const CacheStats three = cache.stats();
  EXPECT_EQ(three.segments, 2 * kLayers);
  EXPECT_EQ(three.keys.maps, one.keys.maps);
  EXPECT_GT(three.keys.codes, one.keys.codes);
  // Freed source: the fork still holds the shared segments.
  cache.free_sequence(src);
  EXPECT_EQ(cache.stats().segments, 2 * kLayers);
  EXPECT_EQ(cache.stats().keys.total(), three.keys.total());
  cache.free_sequence(fork);
  EXPECT_EQ(cache.stats().segments, 0u);
  EXPECT_EQ(cache.stats().keys.total(), 0u);
}

// A cut inside the residual leaves exactly what a cache fed that many tokens holds, and both go on
// alike (appends crossing a flush).
TEST_F(CacheFork, TruncateInsideTheResidualEqualsACacheFedThatMany) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const uint32_t P = 100, appended = 40, kept = 115, after = 80;
  const auto kv = layer_data(P + appended + after, seed);
  auto other = layer_data(P + appended + after, seed + 5);  // what is appended after the cut
  for (uint32_t l = 0; l < kLayers; ++l) {
    const size_t n = size_t(kept) * H * D;
    std::copy(kv[l].keys.begin(), kv[l].keys.begin() + n, other[l].keys.begin());
    std::copy(kv[l].values.begin(), kv[l].values.begin() + n, other[l].values.begin());
  }
  const auto q = realistic_query(kv[0].keys, P, H, H * kRatio, D, seed + 2);
  for (const char* p : {"k1.5-v1.58", "kivi", "fp16"}) {
    SCOPED_TRACE(p);
    Cache cache(ctx, kGeometry, settings_of(p), kMax), direct(ctx, kGeometry, settings_of(p), kMax);
    const uint32_t s = cache.create_sequence(), d = direct.create_sequence();
    prefill_all(cache, s, kv, P);
    append_all(cache, s, kv, P, P + appended);  // 96 quantized + 44 in the residual
    cache.truncate_sequence(s, kept);
    prefill_all(direct, d, kv, P);
    append_all(direct, d, kv, P, kept);
    expect_same(cache, s, direct, d, q);
    append_all(cache, s, other, kept, kept + after);
    append_all(direct, d, other, kept, kept + after);
    expect_same(cache, s, direct, d, q);
  }
}

struct CutCase {
  const char* preset;
  bool portable;
};

class CacheTruncateSegment : public VulkanTest, public ::testing::WithParamInterface<CutCase> {};

// A cut inside a quantized segment: the kept tokens' dequantize is exactly the prefix of what
// the layer held, attention is the float64 reference over the kept tokens (the masked segment
// decoded exactly) within 1e-4 (fp32 sums: some seeds measure ~1.05e-5 relative), and appends
// after it fill a new residual whose flush makes a new segment.
TEST_P(CacheTruncateSegment, MasksTheSegmentTail) {
  const CutCase c = GetParam();
  const double tolerance = 1e-4;
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  // Prefill 330: one segment of 320 (ten groups), 10 in the residual; then 70 appends: a flush
  // (segment of 64) and 16 in the residual. Cuts: inside the second segment, inside the first
  // (mid group, and on a group edge), and to a few tokens.
  const uint32_t P = 330, A = 70, after = 100;
  const auto kv = layer_data(P + A + after, seed);
  const auto other = layer_data(P + A + after, seed + 9);
  const auto q = realistic_query(kv[0].keys, P, H, H * kRatio, D, seed + 2);
  struct Cut {
    uint32_t tokens;
    std::vector<uint32_t> visible;  // per kept segment
  };
  for (const Cut& cut : {Cut{350, {320, 30}}, Cut{201, {201}}, Cut{256, {256}}, Cut{7, {7}}}) {
    SCOPED_TRACE("cut to " + std::to_string(cut.tokens));
    Cache cache(ctx, kGeometry, settings_of(c.preset), kMax);
    cache.set_portable_attention(c.portable);
    const uint32_t s = cache.create_sequence();
    prefill_all(cache, s, kv, P);
    append_all(cache, s, kv, P, P + A);
    std::vector<Decoded> before;
    for (uint32_t l = 0; l < kLayers; ++l) before.push_back(decoded(cache, s, l));
    const CacheStats full = cache.stats();
    cache.truncate_sequence(s, cut.tokens);
    const size_t prefix = size_t(cut.tokens) * H * D;
    for (uint32_t l = 0; l < kLayers; ++l) {
      SCOPED_TRACE("layer " + std::to_string(l));
      EXPECT_EQ(cache.tokens(s, l), cut.tokens);
      EXPECT_EQ(cache.segment_count(s, l), cut.visible.size());
      const Decoded d = decoded(cache, s, l);
      EXPECT_TRUE(d.keys == std::vector<uint16_t>(before[l].keys.begin(), before[l].keys.begin() + prefix));
      EXPECT_TRUE(d.values == std::vector<uint16_t>(before[l].values.begin(), before[l].values.begin() + prefix));
      const auto out = cache.attention(s, l, q);
      EXPECT_LT(attention_error(out, reference_kept(cache, s, l, q, cut.visible), D), tolerance);
    }
    // The masked segments stay whole on the device: the stats count their bytes.
    EXPECT_EQ(cache.stats().quantized_tokens, uint64_t(cut.tokens) * kLayers);
    EXPECT_LE(cache.stats().keys.total(), full.keys.total());
    // Appends after the cut: the residual refills and flushes into a new segment.
    append_all(cache, s, other, cut.tokens, cut.tokens + after);
    for (uint32_t l = 0; l < kLayers; ++l) {
      SCOPED_TRACE("after appends, layer " + std::to_string(l));
      EXPECT_EQ(cache.tokens(s, l), cut.tokens + after);
      EXPECT_EQ(cache.segment_count(s, l), cut.visible.size() + 1);
      const Decoded d = decoded(cache, s, l);
      EXPECT_TRUE(std::vector<uint16_t>(d.keys.begin(), d.keys.begin() + prefix) ==
                  std::vector<uint16_t>(before[l].keys.begin(), before[l].keys.begin() + prefix));
      // The newest tokens are in the residual as given.
      const uint32_t residual = after - kResidual;
      EXPECT_TRUE(std::vector<uint16_t>(d.values.end() - size_t(residual) * H * D, d.values.end()) ==
                  token_slice(other[l].values, cut.tokens + kResidual, residual, H, D));
      const auto out = cache.attention(s, l, q);
      EXPECT_LT(attention_error(out, reference_kept(cache, s, l, q, cut.visible), D), tolerance);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Presets, CacheTruncateSegment,
                         ::testing::Values(CutCase{"k1.5-v1.58", false}, CutCase{"k1.5-v1.58", true},
                                           CutCase{"kivi", false}, CutCase{"kivi", true},
                                           CutCase{"k1.5-v2", false}, CutCase{"k1.5-v2", true},
                                           CutCase{"2bit", false}, CutCase{"2bit", true}),
                         [](const auto& info) {
                           std::string n = std::string(info.param.preset) + (info.param.portable ? "_portable" : "_sg8");
                           for (char& ch : n) ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                           return n;
                         });

// An STP prefill segment masks by position too: protected and other tokens past the cut get no
// weight.
TEST_F(CacheFork, TruncateInsideAnStpSegment) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const uint32_t T = 330;
  const KvData kv = random_kv(H, T, D, seed);
  const auto q = realistic_query(kv.keys, T, H, H * kRatio, D, seed + 2);
  std::mt19937_64 rng(seed + 3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  CacheStpInput stp;
  stp.first_visual = 16;
  stp.visual_tokens = 256;
  for (uint32_t i = 0; i < stp.visual_tokens; ++i) stp.scores.push_back(normal(rng));
  for (bool portable : {false, true}) {
    SCOPED_TRACE(portable ? "portable" : "sg8");
    Cache cache(ctx, {1, H, H * kRatio, D}, preset("k1.5-v1.58-stp"), kMax);
    cache.set_portable_attention(portable);
    const uint32_t s = cache.create_sequence();
    cache.prefill(s, 0, kv.keys, kv.values, T, stp);
    const Decoded before = decoded(cache, s, 0);
    for (uint32_t cut : {300u, 150u, 40u}) {
      SCOPED_TRACE("cut to " + std::to_string(cut));
      cache.truncate_sequence(s, cut);
      const Decoded d = decoded(cache, s, 0);
      EXPECT_TRUE(d.values == std::vector<uint16_t>(before.values.begin(), before.values.begin() + size_t(cut) * H * D));
      const auto out = cache.attention(s, 0, q);
      EXPECT_LT(attention_error(out, reference_kept(cache, s, 0, q, {cut}), D), 1e-4);  // fp32 sums: ~1.3e-5 on some seeds
    }
  }
}

// A fork shares a segment its source then truncates: the fork keeps every token.
TEST_F(CacheFork, TruncatingTheSourceLeavesItsForkWhole) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const auto kv = layer_data(300, seed);
  const auto q = realistic_query(kv[0].keys, 300, H, H * kRatio, D, seed + 2);
  Cache cache(ctx, kGeometry, settings_of("k1.5-v1.58"), kMax), direct(ctx, kGeometry, settings_of("k1.5-v1.58"), kMax);
  const uint32_t s = cache.create_sequence(), d = direct.create_sequence();
  prefill_all(cache, s, kv, 300);
  prefill_all(direct, d, kv, 300);
  const uint32_t fork = cache.fork_sequence(s);
  cache.truncate_sequence(s, 100);
  expect_same(cache, fork, direct, d, q);
  // And a fork of a truncated sequence keeps the mask.
  const uint32_t again = cache.fork_sequence(s);
  EXPECT_EQ(cache.tokens(again, 0), 100u);
  EXPECT_EQ(cache.attention(again, 0, q), cache.attention(s, 0, q));
  EXPECT_TRUE(decoded(cache, again, 1) == decoded(cache, s, 1));
}

// Per-head policies: full heads and the preset part are cut like any layer; a fork copies the
// full and window stores; window heads refuse a cut once their ring has wrapped (unless only the
// sink is kept).
TEST_F(CacheFork, MixedLayers) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const auto kv = layer_data(300, seed);
  const auto q = realistic_query(kv[0].keys, 200, H, H * kRatio, D, seed + 2);
  CacheSettings s = settings_of("k1.5-v1.58");
  s.head_policies.heads = {HeadPolicy::vidkv, HeadPolicy::full, HeadPolicy::full, HeadPolicy::window};
  s.head_policies.sink = 4;
  s.head_policies.recent = 60;
  // Layer 0: vidkv + full; layer 1: full + window.
  Cache cache(ctx, kGeometry, s, kMax), direct(ctx, kGeometry, s, kMax);
  const uint32_t a = cache.create_sequence(), d = direct.create_sequence();
  prefill_all(cache, a, kv, 50);  // the window (4 + 60) has not wrapped
  const uint32_t fork = cache.fork_sequence(a);
  append_all(cache, fork, kv, 50, 60);
  cache.truncate_sequence(fork, 40);
  prefill_all(direct, d, kv, 40);
  expect_same(cache, fork, direct, d, q);
  const uint32_t d50 = direct.create_sequence();
  prefill_all(direct, d50, kv, 50);
  expect_same(cache, a, direct, d50, q);  // the source as it was

  // Wrapped: the cut is refused (nothing changes), except one that keeps only the sink.
  append_all(cache, a, kv, 50, 200);
  const auto before = snapshot(cache, {a});
  const auto before_1 = decoded(cache, a, 1);
  expect_error([&] { cache.truncate_sequence(a, 150); }, "window heads");
  EXPECT_TRUE(snapshot(cache, {a}) == before);
  EXPECT_TRUE(decoded(cache, a, 1) == before_1);
  EXPECT_EQ(cache.tokens(a, 1), 200u);
  const Decoded before_0 = decoded(cache, a, 0);
  cache.truncate_sequence(a, 3);
  const size_t kept = size_t(3) * H * D;
  for (uint32_t l = 0; l < kLayers; ++l) {
    const Decoded& was = l == 0 ? before_0 : before_1;
    const Decoded now = decoded(cache, a, l);
    EXPECT_EQ(cache.tokens(a, l), 3u);
    EXPECT_TRUE(now.keys == std::vector<uint16_t>(was.keys.begin(), was.keys.begin() + kept));
    EXPECT_TRUE(now.values == std::vector<uint16_t>(was.values.begin(), was.values.begin() + kept));
  }
}

// A cut to 0 tokens leaves layers that fill again as a sequence fed by appends only: the first
// flush chooses the channels anew (a prefill stays refused where one was made).
TEST_F(CacheFork, TruncateToZeroFillsAgainLikeANewSequence) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const auto kv = layer_data(300, seed), other = layer_data(100, seed + 4);
  const auto q = realistic_query(other[0].keys, 100, H, H * kRatio, D, seed + 2);
  Cache cache(ctx, kGeometry, settings_of("k1.5-v1.58"), kMax), direct(ctx, kGeometry, settings_of("k1.5-v1.58"), kMax);
  const uint32_t s = cache.create_sequence(), d = direct.create_sequence();
  prefill_all(cache, s, kv, 300);
  cache.truncate_sequence(s, 0);
  EXPECT_EQ(cache.tokens(s, 0), 0u);
  EXPECT_EQ(cache.segment_count(s, 0), 0u);
  expect_error([&] { prefill_all(cache, s, kv, 10); }, "prefill twice");
  append_all(cache, s, other, 0, 100);
  append_all(direct, d, other, 0, 100);
  expect_same(cache, s, direct, d, q);
}

TEST_F(CacheFork, ErrorsChangeNothing) {
  const uint64_t seed = tools::test_seed();
  const auto kv = layer_data(300, seed);
  Cache cache(ctx, kGeometry, settings_of("k1.5-v1.58"), kMax);
  const uint32_t s = cache.create_sequence();
  prefill_all(cache, s, kv, 200);
  append_all(cache, s, kv, 200, 201);  // layer 0 and 1 at 201 tokens
  cache.append(s, 0, token_slice(kv[0].keys, 201, 1, H, D), token_slice(kv[0].values, 201, 1, H, D));
  // Layers at 202 and 201: the length is 202.
  const auto before = snapshot(cache, {s});
  const CacheStats stats = cache.stats();
  expect_error([&] { cache.fork_sequence(77); }, "unknown sequence 77");
  expect_error([&] { cache.truncate_sequence(77, 1); }, "unknown sequence 77");
  expect_error([&] { cache.truncate_sequence(s, 203); }, "it holds 202 (its longest layer)");
  cache.truncate_sequence(s, 202);  // the length: a no-op
  EXPECT_TRUE(snapshot(cache, {s}) == before);
  EXPECT_TRUE(same_stats(cache.stats(), stats));
  EXPECT_EQ(cache.sequence_ids(), std::vector<uint32_t>{s});
  // A freed source.
  const uint32_t fork = cache.fork_sequence(s);
  cache.free_sequence(fork);
  expect_error([&] { cache.fork_sequence(fork); }, "unknown sequence " + std::to_string(fork));
  EXPECT_EQ(cache.sequence_ids(), std::vector<uint32_t>{s});
  // 201 cuts layer 0 only (layer 1 holds 201).
  cache.truncate_sequence(s, 201);
  EXPECT_EQ(cache.tokens(s, 0), 201u);
  EXPECT_EQ(cache.tokens(s, 1), 201u);

  // A sequence with a masked segment is not saved or serialized; one cut in its residual is.
  TempDir dir;
  cache.truncate_sequence(s, 196);  // inside the residual (192 quantized)
  EXPECT_NO_THROW(cache.serialize_sequence(s));
  cache.truncate_sequence(s, 100);
  const auto masked = snapshot(cache, {s});
  expect_error([&] { cache.serialize_sequence(s); }, "truncated inside a quantized segment (100 of its 192");
  expect_error([&] { cache.save(dir.file("all.vkv")); }, "masked segment");
  expect_error([&] { cache.save(dir.file("one.vkv"), s); }, "masked segment");
  EXPECT_FALSE(std::filesystem::exists(dir.file("all.vkv")));
  EXPECT_TRUE(snapshot(cache, {s}) == masked);
}

}  // namespace
}  // namespace vidkv::test
