// Saved caches with per-head policies (format version 3, head_policy.hpp). On the host: the policy
// spec (an explicit list, or head scores with a sparsity) and mixed layers' stores round trip
// through the writer and the parser, the file's statistics count every store as the cache does, and
// every damaged policy field or store length is refused with Error(corrupt_data) naming it. On the
// device: a cache mixing vidkv, full and window heads in one layer, with a layer without preset
// heads and GQA, and one whose policies come from scores (STP prefills among them), filled past the
// window capacity and across a residual flush, save and load bit for bit (dequantize, attention,
// stats) and go on alike; load_sequences takes them into a cache with the same policies only, and
// a damaged file loads nothing.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include "cache_test_helpers.hpp"
#include "common/random_data.hpp"
#include "temp_dir.hpp"
#include "test_cache_file_data.hpp"
#include "vidkv/head_policy.hpp"
#include "vulkan_fixture.hpp"

namespace vidkv::test {
namespace {

using P = HeadPolicy;

// Layer 0 mixes all three policies, layer 1 has no preset head, layer 2 is all preset.
const std::vector<HeadPolicy> kExplicit{P::vidkv, P::full,   P::window,  // layer 0
                                        P::full,  P::window, P::window,  // layer 1
                                        P::vidkv, P::vidkv,  P::vidkv};  // layer 2
const CacheGeometry kHostGeometry{3, 3, 6, 64};

CacheSettings explicit_settings(const char* name, uint32_t sink, uint32_t recent, uint32_t residual) {
  CacheSettings s = preset(name);
  s.residual_length = residual;
  s.head_policies.heads = kExplicit;
  s.head_policies.sink = sink;
  s.head_policies.recent = recent;
  s.name = settings_name(s);
  return s;
}

// Scores for `layers` x `heads` heads (distinct, from the seed), the lower half of them `low`.
CacheSettings scored_settings(const char* name, uint32_t layers, uint32_t heads, HeadPolicy low, HeadPolicy high,
                              uint64_t seed) {
  CacheSettings s = preset(name);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  for (uint32_t l = 0; l < layers; ++l) {
    for (uint32_t h = 0; h < heads; ++h) s.head_policies.scores.push_back({l, h, u01(rng)});
  }
  // Scores in a file's order, not sorted: the order is kept as given.
  std::shuffle(s.head_policies.scores.begin(), s.head_policies.scores.end(), rng);
  s.head_policies.sparsity = 0.5;
  s.head_policies.low = low;
  s.head_policies.high = high;
  s.head_policies.sink = 4;
  s.head_policies.recent = 12;
  s.head_policies.score_source = "test scores";
  s.name = settings_name(s);
  return s;
}

bool same_policy_stats(const CacheStats& a, const CacheStats& b) {
  for (size_t i = 0; i < 3; ++i) {
    const CachePolicyStats &x = a.policies[i], &y = b.policies[i];
    if (x.heads != y.heads || x.tokens != y.tokens || x.bytes != y.bytes ||
        x.fp16_equivalent_bytes != y.fp16_equivalent_bytes) {
      return false;
    }
  }
  return same_stats(a, b);
}

// ---- host ----

TEST(CacheFileHeadsHost, PoliciesAndStoresRoundTrip) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  for (const CacheSettings& s : {explicit_settings("k1.5-v1.58", 4, 12, 64),
                                 scored_settings("kivi", 3, 3, P::window, P::full, seed),
                                 scored_settings("k1.5-v1.58-stp", 3, 3, P::window, P::vidkv, seed + 1)}) {
    SCOPED_TRACE(describe(s));
    const CacheFileContents c = random_policy_contents(s, kHostGeometry, seed);
    const std::vector<uint8_t> bytes = serialize_cache_file(c);
    const CacheFileContents parsed = parse_cache_file(bytes.data(), bytes.size(), "test");
    expect_same_contents(parsed, c);
    EXPECT_TRUE(same_head_policies(parsed.settings.head_policies, s.head_policies));
    // Scores keep the file's order; where they were read from is not saved.
    ASSERT_EQ(parsed.settings.head_policies.scores.size(), s.head_policies.scores.size());
    for (size_t i = 0; i < s.head_policies.scores.size(); ++i) {
      EXPECT_EQ(parsed.settings.head_policies.scores[i].layer, s.head_policies.scores[i].layer);
      EXPECT_EQ(parsed.settings.head_policies.scores[i].score, s.head_policies.scores[i].score);
    }
    EXPECT_TRUE(parsed.settings.head_policies.score_source.empty());
    EXPECT_EQ(serialize_cache_file(parsed), bytes);
    // The parser marks exactly the layers the policies mix.
    const std::vector<CacheFileLayerHeads> heads = cache_file_layer_heads(c.geometry, c.settings);
    for (const CacheFileSequence& seq : parsed.sequences) {
      for (size_t l = 0; l < seq.layers.size(); ++l) EXPECT_EQ(seq.layers[l].mixed, heads[l].mixed()) << l;
    }
  }
  // The explicit list: layer 0 mixed with 1 preset head, layer 1 without any, layer 2 plain.
  const std::vector<CacheFileLayerHeads> heads =
      cache_file_layer_heads(kHostGeometry, explicit_settings("k1.5-v1.58", 4, 12, 64));
  EXPECT_EQ(heads[0].preset, 1u);
  EXPECT_EQ(heads[0].full, 1u);
  EXPECT_EQ(heads[0].window, 1u);
  EXPECT_EQ(heads[1].preset, 0u);
  EXPECT_FALSE(heads[2].mixed());
}

TEST(CacheFileHeadsHost, StatsCountEveryStore) {
  const CacheSettings s = explicit_settings("k1.5-v1.58", 4, 12, 64);
  const CacheFileContents c = random_policy_contents(s, kHostGeometry, 31);
  const CacheStats st = cache_file_stats(c);
  const uint64_t D = 64, W = 16;
  uint64_t tokens = 0, full_tokens = 0, window_tokens = 0, full_bytes = 0, window_bytes = 0, preset_tokens = 0;
  for (const CacheFileSequence& seq : c.sequences) {
    for (const CacheFileLayer& l : seq.layers) {
      tokens += l.mixed ? l.count : l.quantized + l.residual;
      full_tokens += l.full_keys.size() / D;  // count x full heads
      window_tokens += l.window_keys.size() / D;
      preset_tokens += uint64_t(l.quantized + l.residual) * (l.mixed ? (&l == &seq.layers[0] ? 1 : 0) : 3);
    }
    // Written layers allocate: layer 0 one full and one window head, layer 1 one full and two window.
    for (size_t i = 0; i < 2; ++i) {
      if (!(seq.layers[i].prefilled || seq.layers[i].appended)) continue;
      full_bytes += 2 * 512 * 1 * D * 2;
      window_bytes += 2 * W * (i == 0 ? 1 : 2) * D * 2;
    }
  }
  EXPECT_EQ(st.tokens, tokens);
  EXPECT_EQ(st.fp16_equivalent_bytes, tokens * 3 * D * 2 * 2);
  EXPECT_EQ(st.policies[size_t(P::vidkv)].heads, 4u);
  EXPECT_EQ(st.policies[size_t(P::full)].heads, 2u);
  EXPECT_EQ(st.policies[size_t(P::window)].heads, 3u);
  EXPECT_EQ(st.policies[size_t(P::vidkv)].tokens, preset_tokens);
  EXPECT_EQ(st.policies[size_t(P::full)].tokens, full_tokens);
  EXPECT_EQ(st.policies[size_t(P::window)].tokens, window_tokens);
  EXPECT_EQ(st.policies[size_t(P::full)].bytes, full_bytes);
  EXPECT_EQ(st.policies[size_t(P::window)].bytes, window_bytes);
  EXPECT_EQ(st.policies[size_t(P::vidkv)].bytes, st.keys.total() + st.values.total() + st.residual_capacity_bytes);
  // The channel table of layer 0's single preset head: D entries, not kv_heads x D.
  EXPECT_EQ(c.sequences[0].layers[0].channels.size(), D);
}

struct Mutation {
  const char* what;
  std::function<void(CacheFileContents&)> apply;
  const char* message;
};

// Sequence 5 (index 0): layer 0 mixed (1 preset head: segments of 64 and 64, residual 9, count 137),
// layer 1 without preset heads (count 73), layer 2 plain. Sequence 2: layer 0 appended (5 tokens).
std::vector<Mutation> policy_mutations() {
  using C = CacheFileContents;
  return {
      {"list one head short", [](C& c) { c.settings.head_policies.heads.pop_back(); },
       "8 head policy entries; the geometry has 3 layers x 3 KV heads = 9 (one entry per head)"},
      {"unknown policy code", [](C& c) { c.settings.head_policies.heads[4] = HeadPolicy(7); },
       "head policy 4 (layer 1, head 1) code 255 is not known"},
      {"unknown low policy", [](C& c) { c.settings.head_policies.low = HeadPolicy(9); },
       "low head policy code 255 is not known"},
      {"empty window", [](C& c) { c.settings.head_policies.sink = c.settings.head_policies.recent = 0; },
       "sink + recent must be > 0"},
      {"sparsity with a list", [](C& c) { c.settings.head_policies.sparsity = 0.25; },
       "sparsity 0.25 is given without head scores"},
      {"another list", [](C& c) { c.settings.head_policies.heads[1] = HeadPolicy::vidkv; },
       "64 channel table entries with 2 segments; 128 expected"},  // layer 0 would have 2 preset heads
      {"count above its preset part", [](C& c) { c.sequences[0].layers[0].count += 1; },
       "token count 138; its preset heads hold 137 (quantized + residual)"},
      {"count above max_tokens",
       [](C& c) {
         c.max_tokens = 137;
         c.sequences[0].layers[1].count = 138;
       },
       "token count 138 exceeds max_tokens 137"},
      {"count without a write", [](C& c) { c.sequences[1].layers[1].count = 1; },
       "1 tokens with prefilled 0 and appended 0"},
      // The stores' lengths follow from the count: one half short shows in the last one read.
      {"full keys short", [](C& c) { c.sequences[0].layers[1].full_keys.pop_back(); },
       "window values of 2048 x 2 bytes; the section has 4094 left"},
      {"window values long", [](C& c) { c.sequences[0].layers[1].window_values.push_back(0); },
       "2 unread bytes at the end of its payload"},
      {"window sized for every token",
       [](C& c) {
         auto& l = c.sequences[0].layers[1];
         l.window_keys.resize(size_t(l.count) * 2 * 64);
         l.window_values.resize(l.window_keys.size());
       },
       "unread bytes"},
      {"residual without preset heads",
       [](C& c) {
         auto& l = c.sequences[0].layers[1];
         l.residual = 3;
       },
       "no preset heads (every head of the layer is full or window) but 0 segments and 3 tokens"},
      {"residual of every head",
       [](C& c) {
         auto& l = c.sequences[1].layers[0];
         l.residual_keys.resize(5 * 3 * 64);
         l.residual_values.resize(5 * 3 * 64);
       },
       "token count"},  // the bytes after the residual are read as the count
      {"stores missing", [](C& c) { c.sequences[0].layers[0].mixed = false; }, "layer token count at offset"},
  };
}

TEST(CacheFileHeadsHost, EveryPolicyInconsistencyIsNamed) {
  for (const Mutation& m : policy_mutations()) {
    SCOPED_TRACE(m.what);
    CacheFileContents c = random_policy_contents(explicit_settings("k1.5-v1.58", 4, 12, 64), kHostGeometry, 32);
    ASSERT_EQ(c.sequences[0].layers[0].count, 137u);
    ASSERT_EQ(c.sequences[0].layers[1].count, 73u);
    m.apply(c);
    const std::string message = corrupt_message(serialize_cache_file(c));
    EXPECT_TRUE(mentions(message, m.message)) << message;
  }
}

TEST(CacheFileHeadsHost, EveryScoreInconsistencyIsNamed) {
  using C = CacheFileContents;
  const std::vector<Mutation> mutations = {
      {"a head scored twice", [](C& c) { c.settings.head_policies.scores[0] = c.settings.head_policies.scores[1]; },
       "is scored twice"},
      {"a head outside the geometry", [](C& c) { c.settings.head_policies.scores[2].head = 3; },
       "head 3 is not below the cache's 3 KV heads"},
      {"a score that is not finite", [](C& c) { c.settings.head_policies.scores[3].score = std::nan(""); },
       "is nan"},
      {"sparsity 1", [](C& c) { c.settings.head_policies.sparsity = 1.0; }, "sparsity 1 is not in [0, 1)"},
      {"a score missing", [](C& c) { c.settings.head_policies.scores.pop_back(); },
       "8 head policy entries; the geometry has 3 layers x 3 KV heads = 9"},
  };
  for (const Mutation& m : mutations) {
    SCOPED_TRACE(m.what);
    CacheFileContents c = random_policy_contents(scored_settings("kivi", 3, 3, P::window, P::full, 33),
                                                 kHostGeometry, 33);
    m.apply(c);
    const std::string message = corrupt_message(serialize_cache_file(c));
    EXPECT_TRUE(mentions(message, m.message)) << message;
  }
}

TEST(CacheFileHeadsHost, DamagedPolicyFieldsAreNamed) {
  const CacheFileContents c = random_policy_contents(explicit_settings("k1.5-v1.58", 4, 12, 64), kHostGeometry, 34);
  const std::vector<uint8_t> bytes = serialize_cache_file(c);
  // HEAD payload at 24: version string, 20 bytes of geometry, settings name, 40 bytes of settings,
  // then the policy block: kind, low, high, reserved, sink, recent, sparsity, entries, list.
  const size_t q = 24 + 4 + c.library_version.size() + 20 + 4 + c.settings.name.size() + 40;
  ASSERT_EQ(bytes[q], 1u);       // an explicit list
  ASSERT_EQ(bytes[q + 4], 4u);   // sink
  ASSERT_EQ(bytes[q + 8], 12u);  // recent
  ASSERT_EQ(bytes[q + 20], 9u);  // entries
  struct Patch {
    size_t at;
    uint8_t value;
    const char* message;
  };
  for (const Patch& p : {Patch{q, 3, "head policy kind 3 is not known"},
                         Patch{q, 0, "9 head policy entries with kind 0 (none)"},
                         Patch{q + 3, 1, "head policy reserved byte is 1, not 0"},
                         Patch{q + 2, 5, "high head policy code 5 is not known"},
                         Patch{q + 23, 0x80, "2147483657 head policy entries"},
                         Patch{q + 24 + 5, 3, "head policy 5 (layer 1, head 2) code 3 is not known"}}) {
    SCOPED_TRACE(p.message);
    std::vector<uint8_t> damaged = bytes;
    damaged[p.at] = p.value;
    repair_checksums(damaged);
    const std::string message = corrupt_message(damaged);
    EXPECT_TRUE(mentions(message, p.message)) << message;
    EXPECT_TRUE(mentions(message, "section HEAD")) << message;
  }
  // The same file with the list from a scores file: kind 2 with 9 entries of 1 byte each cannot be
  // 9 scores of 16 bytes.
  std::vector<uint8_t> damaged = bytes;
  damaged[q] = 2;
  repair_checksums(damaged);
  EXPECT_TRUE(mentions(corrupt_message(damaged), "9 head scores of 16 bytes; the section has"));
}

TEST(CacheFileHeadsHost, OlderVersionsHoldNoPolicies) {
  // A version 2 file is the same but for HEAD's 24 bytes of "no policies"; it reads as such.
  CacheFileContents c = random_contents(preset("k1.5-v1.58"), {2, 2, 4, 64}, 35);
  const std::vector<uint8_t> v3 = serialize_cache_file(c);
  c.format_version = 2;
  const std::vector<uint8_t> v2 = serialize_cache_file(c);
  EXPECT_EQ(v3.size(), v2.size() + 24);
  EXPECT_TRUE(parse_cache_file(v2.data(), v2.size(), "v2").settings.head_policies.uniform());
  // A mixed layer's stores written into a version 2 file are bytes no version 2 layer has.
  CacheFileContents mixed = random_policy_contents(explicit_settings("k1.5-v1.58", 4, 12, 64), kHostGeometry, 35);
  mixed.format_version = 2;
  mixed.settings.head_policies = HeadPolicySpec{};
  EXPECT_FALSE(corrupt_message(serialize_cache_file(mixed)).empty());
}

TEST(CacheFileHeadsHost, EveryTruncationAndFlipIsRefused) {
  // A small mixed file: one layer of 2 KV heads (one full, one window) and no preset head.
  CacheSettings s = preset("k1.5-v1.58");
  s.residual_length = 32;
  s.head_policies.heads = {P::full, P::window};
  s.head_policies.sink = 1;
  s.head_policies.recent = 2;
  const CacheFileContents c = random_policy_contents(s, {1, 2, 2, 64}, 36);
  const std::vector<uint8_t> bytes = serialize_cache_file(c);
  for (size_t n = 0; n < bytes.size(); n += 7) {
    EXPECT_TRUE(mentions(corrupt_message(std::vector<uint8_t>(bytes.begin(), bytes.begin() + n)), "truncated")) << n;
  }
  for (size_t i = 12; i < bytes.size(); i += 5) {
    std::vector<uint8_t> damaged = bytes;
    damaged[i] ^= uint8_t(1u << (i % 8));
    const std::string m = corrupt_message(damaged);
    EXPECT_TRUE(mentions(m, "checksum mismatch") || mentions(m, "truncated or corrupt")) << i << ": " << m;
  }
}

// ---- device ----



// Attention (memcmp) and dequantize of every layer of `sa` in `a` and `sb` in `b`, and the preset
// parts' bytes (segments, residuals).
void expect_same_sequence(Cache& a, uint32_t sa, Cache& b, uint32_t sb, uint64_t seed) {
  const CacheGeometry& g = a.geometry();
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<uint8_t> x = snapshot(a, {sa}), y = snapshot(b, {sb});
  // Without the ids they open with.
  EXPECT_TRUE(std::equal(x.begin() + 4, x.end(), y.begin() + 4, y.end())) << "preset parts differ";
  for (uint32_t l = 0; l < g.layers; ++l) {
    SCOPED_TRACE("layer " + std::to_string(l));
    ASSERT_EQ(a.tokens(sa, l), b.tokens(sb, l));
    if (a.tokens(sa, l) == 0) continue;
    std::vector<float> q(size_t(g.q_heads) * g.head_dim);
    for (float& v : q) v = normal(rng);
    const auto u = a.attention(sa, l, q), v = b.attention(sb, l, q);
    ASSERT_EQ(u.size(), v.size());
    EXPECT_EQ(0, std::memcmp(u.data(), v.data(), u.size() * 4)) << "attention outputs differ";
    std::vector<uint16_t> ak, av, bk, bv;
    a.dequantize(sa, l, ak, av);
    b.dequantize(sb, l, bk, bv);
    EXPECT_EQ(ak, bk);
    EXPECT_EQ(av, bv);
  }
}

constexpr uint32_t kH = 4, kD = 64;
const CacheGeometry kGeometry{3, kH, 2 * kH, kD};  // GQA: 2 query heads per KV head

// Layer 0: vidkv, full, window, vidkv; layer 1: no preset head; layer 2: all preset.
CacheSettings device_explicit(const char* name) {
  CacheSettings s = preset(name);
  s.residual_length = 64;
  s.head_policies.heads = {P::vidkv, P::full,   P::window, P::vidkv,  P::full,  P::window,
                           P::window, P::full,  P::vidkv, P::vidkv, P::vidkv, P::vidkv};
  s.head_policies.sink = 4;
  s.head_policies.recent = 20;  // 24 slots
  s.name = settings_name(s);
  return s;
}

struct Filled {
  uint32_t a = 0, b = 0, c = 0;
  KvData kv;
};

// a: every layer prefilled with 100 tokens (window past its 24 slots), then 70 appends on layers 0
//    and 1 (layer 0's preset part: 96 quantized + 4, a flush at 64 in the residual);
// b: layer 0 appended to only (10 tokens, the window not yet full), layer 2 a short prefill;
// c: created, empty.
// STP settings need an input to every prefill: `stp` for a's, an empty one (protecting nothing)
// for the others.
void prefill(Cache& cache, uint32_t seq, uint32_t layer, const KvData& kv, uint32_t from, uint32_t n,
             const CacheStpInput* stp = nullptr) {
  const auto k = token_slice(kv.keys, from, n, kH, kD), v = token_slice(kv.values, from, n, kH, kD);
  if (cache.settings().stp) {
    cache.prefill(seq, layer, k, v, n, stp ? *stp : CacheStpInput{});
  } else {
    cache.prefill(seq, layer, k, v, n);
  }
}

Filled fill(Cache& cache, uint64_t seed, const CacheStpInput* stp = nullptr) {
  Filled f;
  f.kv = random_kv(kH, 500, kD, seed);
  auto k = [&](uint32_t from, uint32_t n) { return token_slice(f.kv.keys, from, n, kH, kD); };
  auto v = [&](uint32_t from, uint32_t n) { return token_slice(f.kv.values, from, n, kH, kD); };
  f.a = cache.create_sequence();
  f.b = cache.create_sequence();
  f.c = cache.create_sequence();
  for (uint32_t l = 0; l < 3; ++l) prefill(cache, f.a, l, f.kv, l * 10, 100, stp);
  for (uint32_t t = 100; t < 170; ++t) {
    for (uint32_t l = 0; l < 2; ++l) cache.append(f.a, l, k(t + l, 1), v(t + l, 1));
  }
  for (uint32_t t = 200; t < 210; ++t) cache.append(f.b, 0, k(t, 1), v(t, 1));
  prefill(cache, f.b, 2, f.kv, 220, 20);
  return f;
}

// Saves `original`, checks the file, loads it and compares; then both go on alike (60 appends: a
// flush in a's and b's preset parts, b's window ring filled and overwritten; a first prefill of b's
// layer 1 and a first append to c) and compare again;
// saved again, the loaded cache gives the same file.
void save_load_continue(const std::shared_ptr<rt::Context>& ctx, Cache& original, const Filled& f, uint64_t seed) {
  const std::vector<uint32_t> ids{f.a, f.b, f.c};
  TempDir dir;
  const std::string path = dir.file("heads.vkv");
  original.save(path);
  const CacheFileContents parsed = read_cache_file(path);
  EXPECT_EQ(parsed.format_version, kCacheFileFormatVersion);
  EXPECT_TRUE(same_head_policies(parsed.settings.head_policies, original.settings().head_policies));
  EXPECT_TRUE(same_policy_stats(cache_file_stats(parsed), original.stats()));

  std::unique_ptr<Cache> loaded = Cache::load(path, ctx);
  EXPECT_EQ(loaded->sequence_ids(), original.sequence_ids());
  EXPECT_TRUE(same_configuration(loaded->settings(), original.settings()));
  EXPECT_EQ(loaded->settings().name, original.settings().name);
  EXPECT_TRUE(same_policy_stats(loaded->stats(), original.stats()));
  for (uint32_t s : ids) expect_same_sequence(original, s, *loaded, s, seed + s);

  for (Cache* c : {&original, loaded.get()}) {
    for (uint32_t t = 0; t < 60; ++t) {
      for (uint32_t l = 0; l < 2; ++l) {
        c->append(f.a, l, token_slice(f.kv.keys, 300 + t, 1, kH, kD), token_slice(f.kv.values, 300 + t, 1, kH, kD));
      }
      c->append(f.b, 0, token_slice(f.kv.keys, 350 + t, 1, kH, kD), token_slice(f.kv.values, 350 + t, 1, kH, kD));
    }
    prefill(*c, f.b, 1, f.kv, 0, 40);
    c->append(f.c, 0, token_slice(f.kv.keys, 5, 1, kH, kD), token_slice(f.kv.values, 5, 1, kH, kD));
  }
  EXPECT_TRUE(same_policy_stats(loaded->stats(), original.stats()));
  for (uint32_t s : ids) expect_same_sequence(original, s, *loaded, s, seed + 100 + s);

  loaded->save(dir.file("again.vkv"));
  original.save(dir.file("original.vkv"));
  EXPECT_TRUE(file_bytes(dir.file("again.vkv")) == file_bytes(dir.file("original.vkv")));
}

using CacheFileHeads = VulkanTest;

TEST_F(CacheFileHeads, ExplicitPoliciesSaveLoadBitExactAndContinueAlike) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  for (const char* p : {"k1.5-v1.58", "kivi"}) {
    SCOPED_TRACE(p);
    Cache original(ctx, kGeometry, device_explicit(p), 512);
    const Filled f = fill(original, seed);
    // What the fill made: layer 0's preset part flushed a segment; layer 1 has none.
    EXPECT_EQ(original.segment_count(f.a, 0), 2u);
    EXPECT_EQ(original.segment_count(f.a, 1), 0u);
    EXPECT_EQ(original.tokens(f.a, 1), 170u);
    const CacheStats st = original.stats();
    EXPECT_EQ(st.policies[size_t(P::window)].heads, 3u);
    EXPECT_EQ(st.policies[size_t(P::full)].heads, 3u);
    save_load_continue(ctx, original, f, seed);
  }
}

TEST_F(CacheFileHeads, ScoredPoliciesSaveLoadBitExactAndContinueAlike) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  // Half of the 12 heads (the lowest scores) take window, the others the STP preset; prefills
  // protect their second group.
  CacheSettings s = scored_settings("k1.5-v1.58-stp", 3, kH, P::window, P::vidkv, seed);
  s.residual_length = 64;
  s.head_policies.recent = 20;
  s.name = settings_name(s);
  const std::vector<CacheFileLayerHeads> heads = cache_file_layer_heads(kGeometry, s);
  uint32_t windows = 0;
  for (const CacheFileLayerHeads& h : heads) windows += h.window;
  ASSERT_EQ(windows, 6u);
  Cache original(ctx, kGeometry, s, 512);
  CacheStpInput stp;
  for (uint32_t t = 32; t < 64; ++t) stp.protected_tokens.push_back(t);
  const Filled f = fill(original, seed, &stp);
  save_load_continue(ctx, original, f, seed);
}

TEST_F(CacheFileHeads, LoadSequencesNeedsTheSamePolicies) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const CacheSettings s = device_explicit("k1.5-v1.58");
  Cache original(ctx, kGeometry, s, 512);
  const Filled f = fill(original, seed);
  TempDir dir;
  original.save(dir.file("a.vkv"), f.a);

  // The same policies, a larger max_tokens and a sequence of its own: taken twice, equal.
  Cache other(ctx, kGeometry, s, 1024);
  const Filled own = fill(other, seed + 1);
  const std::vector<uint8_t> own_before = snapshot(other, {own.a, own.b});
  const auto first = other.load_sequences(dir.file("a.vkv"));
  const auto second = other.load_sequences(dir.file("a.vkv"));
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(second.size(), 1u);
  expect_same_sequence(original, f.a, other, first[0], seed + 1);
  expect_same_sequence(original, f.a, other, second[0], seed + 2);
  EXPECT_TRUE(snapshot(other, {own.a, own.b}) == own_before);
  // A loaded sequence goes on like the original (the full store sized for this cache's 1024).
  for (Cache* c : {&original, &other}) {
    const uint32_t id = c == &original ? f.a : second[0];
    for (uint32_t t = 0; t < 30; ++t) {
      c->append(id, 1, token_slice(f.kv.keys, t, 1, kH, kD), token_slice(f.kv.values, t, 1, kH, kD));
    }
  }
  expect_same_sequence(original, f.a, other, second[0], seed + 3);

  // Other policies (one head moved, another window, none at all): refused naming both settings.
  CacheSettings moved = s;
  moved.head_policies.heads[0] = P::full;
  CacheSettings shorter = s;
  shorter.head_policies.recent = 19;
  for (const CacheSettings& t : {moved, shorter, preset("k1.5-v1.58")}) {
    SCOPED_TRACE(describe(t));
    CacheSettings u = t;
    u.residual_length = 64;
    Cache differs(ctx, kGeometry, u, 512);
    const uint32_t mine = differs.create_sequence();
    try {
      differs.load_sequences(dir.file("a.vkv"));
      ADD_FAILURE() << "a file of other policies was loaded";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
      EXPECT_TRUE(mentions(e.what(), "has settings")) << e.what();
      EXPECT_TRUE(mentions(e.what(), "heads: explicit list (12:")) << e.what();
    }
    EXPECT_EQ(differs.sequence_ids(), std::vector<uint32_t>{mine});
  }
}

TEST_F(CacheFileHeads, DamagedStoresAreRefusedAndNothingIsLoaded) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  Cache cache(ctx, kGeometry, device_explicit("k1.5-v1.58"), 512);
  const Filled f = fill(cache, seed);
  TempDir dir;
  cache.save(dir.file("good.vkv"));
  const CacheFileContents good = read_cache_file(dir.file("good.vkv"));
  const std::vector<uint32_t> ids = cache.sequence_ids();
  const std::vector<uint8_t> before = snapshot(cache, {f.a, f.b, f.c});
  const CacheStats stats_before = cache.stats();
  std::vector<uint16_t> dk, dv;
  cache.dequantize(f.a, 1, dk, dv);

  using C = CacheFileContents;
  const std::vector<Mutation> damages = {
      {"count", [](C& c) { c.sequences[0].layers[0].count = 171; }, "token count 171; its preset heads hold 170"},
      {"full store short", [](C& c) { c.sequences[0].layers[1].full_values.resize(10); }, "full values of"},
      {"window store long", [](C& c) { c.sequences[0].layers[1].window_values.resize(25 * 2 * 64); },
       "unread bytes"},
      {"policy list", [](C& c) { c.settings.head_policies.heads.resize(8); }, "8 head policy entries"},
  };
  for (const Mutation& d : damages) {
    SCOPED_TRACE(d.what);
    C c = good;
    d.apply(c);
    const std::string path = dir.file("bad.vkv");
    write_cache_file(path, serialize_cache_file(c));
    expect_corrupt_file_refused(cache, ctx, path, d.message);
    EXPECT_EQ(cache.sequence_ids(), ids);
    EXPECT_TRUE(same_policy_stats(cache.stats(), stats_before));
    EXPECT_TRUE(snapshot(cache, {f.a, f.b, f.c}) == before);
    std::vector<uint16_t> k, v;
    cache.dequantize(f.a, 1, k, v);
    EXPECT_EQ(k, dk);
    EXPECT_EQ(v, dv);
  }
  EXPECT_EQ(cache.load_sequences(dir.file("good.vkv")).size(), ids.size());
}

}  // namespace
}  // namespace vidkv::test
