// Saved caches with semantic token protection (format version 2 on): an STP cache (prefills with
// scores, with explicit lists protecting some, none or all of their tokens, appends across a flush)
// saves and loads bit for bit, split and token map included, so attention, dequantize and later
// appends equal the original's; load_sequences adds such sequences to an existing STP cache; a file
// whose STP fields are damaged (count, order, range) is refused before anything is loaded; a
// version 1 file still loads. (Caches with per-head policies: test_cache_file_heads.cpp.)
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <random>
#include <stdexcept>

#include "cache_test_helpers.hpp"
#include "temp_dir.hpp"
#include "test_cache_file_data.hpp"
#include "vulkan_fixture.hpp"

namespace vidkv::test {
namespace {


constexpr uint32_t H = 2, D = 64;
const CacheGeometry kGeometry{2, H, 4 * H, D};


// Every byte the cache holds for `sequences`, STP parts included: snapshot() of the helpers plus
// each segment's split (from which the token map is built) and its protected 2-bit part. Without
// the sequence ids, so that sequences loaded under new ids compare equal to their originals.
std::vector<uint8_t> stp_snapshot(const Cache& cache, const std::vector<uint32_t>& sequences) {
  std::vector<uint8_t> out;
  auto put_vec = [&](const auto& v) {
    const uint64_t n = v.size();
    const auto* b = reinterpret_cast<const uint8_t*>(&n);
    out.insert(out.end(), b, b + 8);
    const auto* d = reinterpret_cast<const uint8_t*>(v.data());
    out.insert(out.end(), d, d + n * sizeof(v[0]));
  };
  for (uint32_t seq : sequences) {
    const std::vector<uint8_t> plain = snapshot(cache, {seq});  // opens with the id (4 bytes)
    out.insert(out.end(), plain.begin() + sizeof(uint32_t), plain.end());
    for (uint32_t l = 0; l < cache.geometry().layers; ++l) {
      for (uint32_t i = 0; i < cache.segment_count(seq, l); ++i) {
        const CacheSegmentHost s = cache.segment_host(seq, l, i);
        put_vec(s.split.protected_tokens);
        put_vec(s.split.other_tokens);
        put_vec(s.values_high.codes);
        put_vec(s.values_high.scales);
        put_vec(s.values_high.mins);
      }
    }
  }
  return out;
}

// Attention (bit for bit) and dequantize of every layer of `sa` in `a` and `sb` in `b`.
void expect_same_outputs(Cache& a, uint32_t sa, Cache& b, uint32_t sb, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (uint32_t l = 0; l < a.geometry().layers; ++l) {
    SCOPED_TRACE("layer " + std::to_string(l));
    ASSERT_EQ(a.tokens(sa, l), b.tokens(sb, l));
    if (a.tokens(sa, l) == 0) continue;
    std::vector<float> q(size_t(a.geometry().q_heads) * D);
    for (float& v : q) v = normal(rng);
    const auto x = a.attention(sa, l, q), y = b.attention(sb, l, q);
    ASSERT_EQ(x.size(), y.size());
    EXPECT_EQ(0, std::memcmp(x.data(), y.data(), x.size() * 4)) << "attention outputs differ";
    std::vector<uint16_t> ak, av, bk, bv;
    a.dequantize(sa, l, ak, av);
    b.dequantize(sb, l, bk, bv);
    EXPECT_EQ(ak, bk);
    EXPECT_EQ(av, bv);
  }
}

CacheStpInput list_input(uint32_t from, uint32_t to) {
  CacheStpInput in;
  for (uint32_t t = from; t < to; ++t) in.protected_tokens.push_back(t);
  return in;
}

struct Filled {
  uint32_t a = 0, b = 0, c = 0;
  KvData kv;
};

// a: layer 0 prefilled from scores (330 tokens, 64 protected, a tail of 10) then 130 appends
//    across a flush; layer 1 prefilled with a list (100 tokens, 32 protected).
// b: layer 0 an STP segment protecting nothing, layer 1 one protecting all its 64 tokens.
// c: layer 0 a prefill shorter than a group, then appends flushing a plain segment; layer 1 empty.
Filled fill(Cache& cache, uint64_t seed) {
  Filled f;
  f.kv = random_kv(H, 800, D, seed);
  auto keys = [&](uint32_t from, uint32_t n) { return token_slice(f.kv.keys, from, n, H, D); };
  auto values = [&](uint32_t from, uint32_t n) { return token_slice(f.kv.values, from, n, H, D); };
  f.a = cache.create_sequence();
  f.b = cache.create_sequence();
  f.c = cache.create_sequence();
  CacheStpInput scores;
  scores.first_visual = 16;
  scores.visual_tokens = 256;
  std::mt19937_64 rng(seed + 1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (uint32_t i = 0; i < scores.visual_tokens; ++i) scores.scores.push_back(normal(rng));
  cache.prefill(f.a, 0, keys(0, 330), values(0, 330), 330, scores);
  for (uint32_t t = 330; t < 460; ++t) cache.append(f.a, 0, keys(t, 1), values(t, 1));
  cache.prefill(f.a, 1, keys(460, 100), values(460, 100), 100, list_input(32, 64));
  cache.prefill(f.b, 0, keys(560, 64), values(560, 64), 64, CacheStpInput{});
  cache.prefill(f.b, 1, keys(624, 64), values(624, 64), 64, list_input(0, 64));
  cache.prefill(f.c, 0, keys(688, 20), values(688, 20), 20, CacheStpInput{});
  for (uint32_t t = 0; t < 120; ++t) cache.append(f.c, 0, keys(t, 1), values(t, 1));
  return f;
}

using CacheFileStp = VulkanTest;

TEST_F(CacheFileStp, SaveLoadIsBitExactAndContinuesAlike) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  Cache original(ctx, kGeometry, preset("k1.5-v1.58-stp"), 1024);
  const Filled f = fill(original, seed);
  // What the fill made: the segments the file must carry.
  ASSERT_EQ(original.segment_count(f.a, 0), 2u);
  EXPECT_EQ(original.segment_host(f.a, 0, 0).split.protected_tokens.size(), 64u);
  EXPECT_TRUE(original.segment_host(f.a, 0, 1).split.protected_tokens.empty());
  EXPECT_EQ(original.segment_host(f.a, 1, 0).split.protected_tokens.size(), 32u);
  EXPECT_EQ(original.segment_host(f.b, 0, 0).split.other_tokens.size(), 64u);
  EXPECT_EQ(original.segment_host(f.b, 1, 0).split.protected_tokens.size(), 64u);
  ASSERT_EQ(original.segment_count(f.c, 0), 1u);
  const std::vector<uint32_t> ids{f.a, f.b, f.c};

  TempDir dir;
  const std::string path = dir.file("stp.vkv");
  original.save(path);
  const CacheFileContents parsed = read_cache_file(path);
  EXPECT_EQ(parsed.format_version, kCacheFileFormatVersion);
  EXPECT_TRUE(same_stats(cache_file_stats(parsed), original.stats()));
  // The file's STP fields are the cache's: flag and count per segment, the protected positions.
  for (size_t i = 0; i < ids.size(); ++i) {
    for (uint32_t l = 0; l < kGeometry.layers; ++l) {
      const auto& segments = parsed.sequences[i].layers[l].segments;
      ASSERT_EQ(segments.size(), original.segment_count(ids[i], l));
      for (uint32_t k = 0; k < segments.size(); ++k) {
        const TokenSplit split = original.segment_host(ids[i], l, k).split;
        const bool stp = !(split.protected_tokens.empty() && split.other_tokens.empty());
        EXPECT_EQ(segments[k].stp, stp) << "sequence " << ids[i] << " layer " << l << " segment " << k;
        EXPECT_EQ(segments[k].protected_count, split.protected_tokens.size());
        EXPECT_EQ(cache_file_protected_tokens(segments[k]), split.protected_tokens);
      }
    }
  }

  std::unique_ptr<Cache> loaded = Cache::load(path, ctx);
  EXPECT_EQ(loaded->sequence_ids(), original.sequence_ids());
  EXPECT_TRUE(same_configuration(loaded->settings(), original.settings()));
  EXPECT_TRUE(same_stats(loaded->stats(), original.stats()));
  EXPECT_TRUE(stp_snapshot(*loaded, ids) == stp_snapshot(original, ids));
  for (uint32_t seq : ids) expect_same_outputs(original, seq, *loaded, seq, seed + seq);
  // The loaded STP segments are read by the attention through their rebuilt token maps: within the
  // float64 reference's tolerance over the loaded cache's own contents.
  const auto q = realistic_query(f.kv.keys, 330, H, kGeometry.q_heads, D, seed + 3);
  std::vector<CacheSegmentHost> segments;
  EXPECT_LT(attention_error(loaded->attention(f.a, 0, q), reference_over_cache(*loaded, f.a, 0, q, segments), D),
            1e-3);

  // Both go on alike: sequence a's layer 0 holds 460 tokens (segments of 320 and 128, a residual of
  // 12): 140 more appends flush another plain segment; c's layer 1 takes a first prefill.
  for (Cache* c : {&original, loaded.get()}) {
    for (uint32_t t = 0; t < 140; ++t) {
      c->append(f.a, 0, token_slice(f.kv.keys, t, 1, H, D), token_slice(f.kv.values, t, 1, H, D));
    }
    c->prefill(f.c, 1, token_slice(f.kv.keys, 100, 96, H, D), token_slice(f.kv.values, 100, 96, H, D), 96,
               list_input(64, 96));
  }
  EXPECT_EQ(loaded->segment_count(f.a, 0), 3u);
  EXPECT_TRUE(same_stats(loaded->stats(), original.stats()));
  EXPECT_TRUE(stp_snapshot(*loaded, ids) == stp_snapshot(original, ids));
  for (uint32_t seq : ids) expect_same_outputs(original, seq, *loaded, seq, seed + 100 + seq);

  // Saved again, the loaded cache gives the same file as the original (library version aside,
  // which is the same library here).
  loaded->save(dir.file("again.vkv"));
  original.save(dir.file("original.vkv"));
  EXPECT_TRUE(file_bytes(dir.file("again.vkv")) == file_bytes(dir.file("original.vkv")));
}

TEST_F(CacheFileStp, LoadSequencesIntoAnExistingStpCache) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const CacheSettings s = preset("k1.5-v1.58-stp");
  Cache original(ctx, kGeometry, s, 1024);
  const Filled f = fill(original, seed);
  TempDir dir;
  original.save(dir.file("a.vkv"), f.a);

  Cache other(ctx, kGeometry, s, 2048);
  const Filled own = fill(other, seed + 1);
  const std::vector<uint8_t> own_before = stp_snapshot(other, {own.a, own.b, own.c});
  const auto first = other.load_sequences(dir.file("a.vkv"));
  const auto second = other.load_sequences(dir.file("a.vkv"));
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_NE(first[0], second[0]);
  EXPECT_EQ(other.sequence_ids().size(), 5u);
  EXPECT_TRUE(stp_snapshot(other, {first[0]}) == stp_snapshot(original, {f.a}));
  EXPECT_TRUE(stp_snapshot(other, {second[0]}) == stp_snapshot(original, {f.a}));
  expect_same_outputs(original, f.a, other, second[0], seed + 5);
  EXPECT_TRUE(stp_snapshot(other, {own.a, own.b, own.c}) == own_before);

  // The same file into a cache without STP: refused naming both settings, nothing added.
  Cache plain(ctx, kGeometry, preset("k1.5-v1.58"), 1024);
  try {
    plain.load_sequences(dir.file("a.vkv"));
    ADD_FAILURE() << "an STP file was loaded into a cache without STP";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_TRUE(mentions(e.what(), "has settings k1.5-v1.58-stp")) << e.what();
  }
  EXPECT_TRUE(plain.sequence_ids().empty());
}

TEST_F(CacheFileStp, DamagedStpFieldsAreRefusedAndNothingIsLoaded) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  Cache cache(ctx, kGeometry, preset("k1.5-v1.58-stp"), 1024);
  const Filled f = fill(cache, seed);
  TempDir dir;
  cache.save(dir.file("good.vkv"));
  const CacheFileContents good = read_cache_file(dir.file("good.vkv"));
  const std::vector<uint32_t> ids = cache.sequence_ids();
  const std::vector<uint8_t> before = stp_snapshot(cache, ids);
  const CacheStats stats_before = cache.stats();

  // Sequence a, layer 1: a prefill segment of 96 tokens protecting 32 (positions 32..63).
  auto list_of = [](CacheFileContents& c) -> std::vector<uint8_t>& {
    for (auto& a : c.sequences[0].layers[1].segments[0].arrays) {
      if (a.id == CacheFileArrayId::stp_protected_tokens) return a.bytes;
    }
    throw std::runtime_error("no protected list");
  };
  struct Damage {
    const char* what;
    std::function<void(CacheFileContents&)> apply;
    const char* message;
  };
  const std::vector<Damage> damages = {
      {"count not a multiple of 32", [](CacheFileContents& c) { c.sequences[0].layers[1].segments[0].protected_count = 48; },
       "protects 48; the count must be a multiple of group_size 32"},
      {"count above the tokens", [](CacheFileContents& c) { c.sequences[0].layers[1].segments[0].protected_count = 128; },
       "STP segment of 96 tokens protects 128"},
      {"unsorted list", [&](CacheFileContents& c) { std::swap(list_of(c)[0], list_of(c)[4]); },
       "protected token 1 is position 32, not above the previous 33"},
      {"position out of range", [&](CacheFileContents& c) { list_of(c)[124] = 200; },
       "protected token 31 is position 200, outside the segment's 96 tokens"},
  };
  for (const Damage& d : damages) {
    SCOPED_TRACE(d.what);
    CacheFileContents c = good;
    ASSERT_EQ(cache_file_protected_tokens(c.sequences[0].layers[1].segments[0]).front(), 32u);
    d.apply(c);
    const std::string path = dir.file("bad.vkv");
    write_cache_file(path, serialize_cache_file(c));
    expect_corrupt_file_refused(cache, ctx, path, d.message);
    EXPECT_EQ(cache.sequence_ids(), ids);
    EXPECT_TRUE(same_stats(cache.stats(), stats_before));
    EXPECT_TRUE(stp_snapshot(cache, ids) == before);
  }
  // The undamaged file still loads after all that.
  EXPECT_EQ(cache.load_sequences(dir.file("good.vkv")).size(), ids.size());
  (void)f;
}

TEST_F(CacheFileStp, Version1FileLoadsAndSavesAsTheCurrentVersion) {
  // Saved by the version 1 library (see test_cache_file.cpp): it loads, and saving the loaded
  // cache gives the current version with the same contents.
  const std::string path = std::string(VIDKV_TEST_DATA_DIR) + "/cache_format1_k1.5-v1.58.vkv";
  const CacheFileContents v1 = read_cache_file(path);
  std::unique_ptr<Cache> loaded = Cache::load(path, ctx);
  EXPECT_EQ(loaded->sequence_ids(), (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(loaded->tokens(1, 0), 40u);
  EXPECT_TRUE(same_stats(loaded->stats(), cache_file_stats(v1)));
  TempDir dir;
  loaded->save(dir.file("v2.vkv"));
  CacheFileContents v2 = read_cache_file(dir.file("v2.vkv"));
  EXPECT_EQ(v2.format_version, kCacheFileFormatVersion);
  v2.format_version = 1;
  v2.library_version = v1.library_version;
  expect_same_contents(v2, v1);
  // And it runs: attention over the loaded segment and residual.
  const std::vector<float> q(64, 0.125f);
  EXPECT_EQ(loaded->attention(1, 0, q).size(), 64u);
}

}  // namespace
}  // namespace vidkv::test
