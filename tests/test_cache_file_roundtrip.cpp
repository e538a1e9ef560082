// Saved caches on the device: Cache::save then Cache::load (or load_sequences) gives segments,
// residuals, decoded K/V, statistics and attention outputs bit-identical to the original, and the
// loaded cache goes on exactly as the original does (appends across a residual flush, a prefill of
// a layer not written yet). A damaged or mismatched file throws and leaves the cache as it was.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "cache_test_helpers.hpp"
#include "temp_dir.hpp"
#include "test_cache_file_data.hpp"
#include "vidkv/version.hpp"
#include "vidkv/vidkv.h"
#include "vulkan_fixture.hpp"

namespace vidkv::test {
namespace {

namespace fs = std::filesystem;

// A directory of its own per test, removed at the end.


void expect_same_part(const QuantizedTensor& a, const QuantizedTensor& b, const char* what) {
  EXPECT_EQ(a.codes, b.codes) << what;
  EXPECT_EQ(a.scales, b.scales) << what;
  EXPECT_EQ(a.mins, b.mins) << what;
}

// Everything one (sequence, layer) holds, read back: bit-identical or not.
void expect_same_layer(const Cache& a, uint32_t sa, Cache& b, uint32_t sb, uint32_t layer) {
  SCOPED_TRACE("layer " + std::to_string(layer));
  ASSERT_EQ(a.tokens(sa, layer), b.tokens(sb, layer));
  ASSERT_EQ(a.segment_count(sa, layer), b.segment_count(sb, layer));
  for (uint32_t i = 0; i < a.segment_count(sa, layer); ++i) {
    SCOPED_TRACE("segment " + std::to_string(i));
    const CacheSegmentHost x = a.segment_host(sa, layer, i), y = b.segment_host(sb, layer, i);
    ASSERT_EQ(x.keys.splits.size(), y.keys.splits.size());
    for (size_t h = 0; h < x.keys.splits.size(); ++h) {
      EXPECT_EQ(x.keys.splits[h].anomalous, y.keys.splits[h].anomalous);
      EXPECT_EQ(x.keys.splits[h].normal, y.keys.splits[h].normal);
    }
    expect_same_part(x.keys.anomalous, y.keys.anomalous, "anomalous keys");
    expect_same_part(x.keys.normal, y.keys.normal, "key streams");
    expect_same_part(x.values, y.values, "values");
    EXPECT_EQ(x.trits, y.trits);
  }
  std::vector<uint16_t> ak, av, bk, bv;
  a.residual_host(sa, layer, ak, av);
  b.residual_host(sb, layer, bk, bv);
  EXPECT_EQ(ak, bk);
  EXPECT_EQ(av, bv);
}

void expect_same_outputs(Cache& a, uint32_t sa, Cache& b, uint32_t sb, uint32_t layer, uint64_t seed) {
  if (a.tokens(sa, layer) == 0) return;
  const CacheGeometry& g = a.geometry();
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> q(size_t(g.q_heads) * g.head_dim);
  for (float& v : q) v = normal(rng);
  const auto x = a.attention(sa, layer, q), y = b.attention(sb, layer, q);
  EXPECT_EQ(0, std::memcmp(x.data(), y.data(), x.size() * 4)) << "attention outputs differ";
  std::vector<uint16_t> ak, av, bk, bv;
  a.dequantize(sa, layer, ak, av);
  b.dequantize(sb, layer, bk, bv);
  EXPECT_EQ(ak, bk);
  EXPECT_EQ(av, bv);
}

// One token of K and V, [kv_heads][head_dim] each, from the random K/V of `kv` at `t`.
std::pair<std::vector<uint16_t>, std::vector<uint16_t>> token(const KvData& kv, uint32_t t, const CacheGeometry& g) {
  return {token_slice(kv.keys, t, 1, g.kv_heads, g.head_dim), token_slice(kv.values, t, 1, g.kv_heads, g.head_dim)};
}

struct Filled {
  uint32_t a = 0, b = 0;  // sequence ids
  KvData kv;              // enough tokens for everything the tests write
};

// Sequence a: layer 0 prefilled (3 groups + a tail) then appended to, layer 1 prefilled with a
// tail only (no segment); sequence b: layer 1 appended to only, layer 0 untouched.
Filled fill(Cache& cache, uint64_t seed) {
  const CacheGeometry& g = cache.geometry();
  Filled f;
  f.kv = random_kv(g.kv_heads, 512, g.head_dim, seed);
  f.a = cache.create_sequence();
  f.b = cache.create_sequence();
  cache.prefill(f.a, 0, token_slice(f.kv.keys, 0, 100, g.kv_heads, g.head_dim),
                token_slice(f.kv.values, 0, 100, g.kv_heads, g.head_dim), 100);
  for (uint32_t t = 100; t < 130; ++t) {
    const auto [k, v] = token(f.kv, t, g);
    cache.append(f.a, 0, k, v);
  }
  cache.prefill(f.a, 1, token_slice(f.kv.keys, 200, 20, g.kv_heads, g.head_dim),
                token_slice(f.kv.values, 200, 20, g.kv_heads, g.head_dim), 20);
  for (uint32_t t = 300; t < 310; ++t) {
    const auto [k, v] = token(f.kv, t, g);
    cache.append(f.b, 1, k, v);
  }
  return f;
}

class CacheFileDevice : public VulkanTest {};

class CacheSaveLoad : public VulkanTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(CacheSaveLoad, RoundTripIsBitExactAndContinuesAlike) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const CacheGeometry g{2, 2, 4, 64};
  Cache original(ctx, g, preset(GetParam()), 1024);
  const Filled f = fill(original, seed);
  TempDir dir;
  const std::string path = dir.file("cache.vkv");
  original.save(path);

  // The file as the host parser sees it.
  const CacheFileContents parsed = read_cache_file(path);
  EXPECT_EQ(parsed.library_version, VIDKV_VERSION_STRING);
  EXPECT_TRUE(same_stats(cache_file_stats(parsed), original.stats()));

  std::unique_ptr<Cache> loaded = Cache::load(path, ctx);
  EXPECT_EQ(loaded->sequence_ids(), original.sequence_ids());
  EXPECT_EQ(loaded->max_tokens(), original.max_tokens());
  EXPECT_TRUE(same_configuration(loaded->settings(), original.settings()));
  EXPECT_EQ(loaded->settings().name, original.settings().name);
  EXPECT_TRUE(same_stats(loaded->stats(), original.stats()));
  for (uint32_t seq : {f.a, f.b}) {
    for (uint32_t l = 0; l < g.layers; ++l) {
      expect_same_layer(original, seq, *loaded, seq, l);
      expect_same_outputs(original, seq, *loaded, seq, l, seed + seq * 10 + l);
    }
  }

  // Both go on alike: 100 more tokens on layer 0 cross the residual flush at 128 (the residual
  // held 34); a first prefill of sequence b's untouched layer 0 is accepted by both.
  for (Cache* c : {&original, loaded.get()}) {
    for (uint32_t t = 130; t < 230; ++t) {
      const auto [k, v] = token(f.kv, t, g);
      c->append(f.a, 0, k, v);
    }
    c->prefill(f.b, 0, token_slice(f.kv.keys, 400, 70, g.kv_heads, g.head_dim),
               token_slice(f.kv.values, 400, 70, g.kv_heads, g.head_dim), 70);
    expect_error([&] { c->prefill(f.a, 1, f.kv.keys, f.kv.values, 512); }, "prefill twice");
  }
  if (std::string(GetParam()) != "fp16") {
    EXPECT_EQ(loaded->segment_count(f.a, 0), 2u);
  }
  EXPECT_TRUE(same_stats(loaded->stats(), original.stats()));
  for (uint32_t seq : {f.a, f.b}) {
    for (uint32_t l = 0; l < g.layers; ++l) {
      expect_same_layer(original, seq, *loaded, seq, l);
      expect_same_outputs(original, seq, *loaded, seq, l, seed + 100 + seq * 10 + l);
    }
  }
  // New sequences continue after the loaded ids.
  EXPECT_GT(loaded->create_sequence(), std::max(f.a, f.b));
}

INSTANTIATE_TEST_SUITE_P(Presets, CacheSaveLoad, ::testing::Values("fp16", "2bit", "kivi", "k1.5-v2", "k1.5-v1.58"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (c == '.' || c == '-') c = '_';
                           return n;
                         });

// Key layouts beyond the presets: channel scope layer with the full spectrum, and odd splits.
TEST_F(CacheFileDevice, KeyLayoutsRoundTrip) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  for (double nbits : {1.3, 1.0, 2.0}) {
    CacheSettings s = preset("k1.5-v1.58");
    s.keys.nbits = nbits;
    s.keys.scope = nbits == 1.3 ? ChannelScope::layer : ChannelScope::head;
    s.keys.fft = nbits == 1.3 ? FftLayout::full : FftLayout::half;
    s.name = settings_name(s);
    SCOPED_TRACE(s.name);
    const CacheGeometry g{2, 2, 2, 64};
    Cache original(ctx, g, s, 512);
    const Filled f = fill(original, seed);
    TempDir dir;
    original.save(dir.file("c.vkv"));
    auto loaded = Cache::load(dir.file("c.vkv"), ctx);
    for (uint32_t l = 0; l < g.layers; ++l) {
      expect_same_layer(original, f.a, *loaded, f.a, l);
      expect_same_outputs(original, f.a, *loaded, f.a, l, seed + l);
    }
  }
}

TEST_F(CacheFileDevice, SaveOneSequenceLoadIntoAnotherCache) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const CacheGeometry g{2, 2, 4, 64};
  const CacheSettings s = preset("k1.5-v1.58");
  Cache original(ctx, g, s, 1024);
  const Filled f = fill(original, seed);
  TempDir dir;
  original.save(dir.file("a.vkv"), f.a);
  EXPECT_EQ(read_cache_file(dir.file("a.vkv")).sequences.size(), 1u);
  expect_error([&] { original.save(dir.file("none.vkv"), 99); }, "unknown sequence 99");
  EXPECT_FALSE(fs::exists(dir.file("none.vkv")));

  // A cache with its own sequence and a larger max_tokens takes the file's sequence twice.
  Cache other(ctx, g, s, 4096);
  const Filled own = fill(other, seed + 1);
  const auto first = other.load_sequences(dir.file("a.vkv"));
  const auto second = other.load_sequences(dir.file("a.vkv"));
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_NE(first[0], second[0]);
  EXPECT_EQ(other.sequence_ids().size(), 4u);
  for (uint32_t l = 0; l < g.layers; ++l) {
    expect_same_layer(original, f.a, other, first[0], l);
    expect_same_layer(original, f.a, other, second[0], l);
    expect_same_outputs(original, f.a, other, second[0], l, seed + l);
  }
  // Its own sequence is untouched: compare with a fresh fill of the same data.
  Cache reference(ctx, g, s, 4096);
  const Filled again = fill(reference, seed + 1);
  for (uint32_t l = 0; l < g.layers; ++l) expect_same_layer(reference, again.a, other, own.a, l);
}

// What a refused file must leave: the same ids, statistics and attention output.
struct Snapshot {
  std::vector<uint32_t> ids;
  CacheStats stats;
  std::vector<float> out;
};
Snapshot snapshot(Cache& c, uint32_t seq) {
  const CacheGeometry& g = c.geometry();
  std::vector<float> q(size_t(g.q_heads) * g.head_dim);
  for (size_t i = 0; i < q.size(); ++i) q[i] = float(int(i % 7) - 3) * 0.25f;
  return {c.sequence_ids(), c.stats(), c.attention(seq, 0, q)};
}
void expect_unchanged(Cache& c, uint32_t seq, const Snapshot& before) {
  const Snapshot after = snapshot(c, seq);
  EXPECT_EQ(after.ids, before.ids);
  EXPECT_TRUE(same_stats(after.stats, before.stats));
  EXPECT_EQ(after.out, before.out);
}

TEST_F(CacheFileDevice, BadFilesAreRefusedAndChangeNothing) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const CacheGeometry g{2, 2, 4, 64};
  const CacheSettings s = preset("k1.5-v2");
  Cache cache(ctx, g, s, 1024);
  const Filled f = fill(cache, seed);
  TempDir dir;
  const std::string good = dir.file("good.vkv");
  cache.save(good);
  const std::vector<uint8_t> bytes = file_bytes(good);
  const Snapshot before = snapshot(cache, f.a);

  // `whole`: the file itself is sound (another layout), so Cache::load takes it.
  auto refused = [&](const std::string& path, ErrorCode code, const char* words, bool whole = false) {
    SCOPED_TRACE(words);
    try {
      cache.load_sequences(path);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_TRUE(mentions(e.what(), words)) << e.what();
      EXPECT_TRUE(mentions(e.what(), path.c_str())) << e.what();
    }
    if (!whole) {
      try {
        Cache::load(path, ctx);
        ADD_FAILURE() << "Cache::load accepted";
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), code) << e.what();
      }
    }
    expect_unchanged(cache, f.a, before);
  };

  std::vector<uint8_t> damaged = bytes;
  damaged[bytes.size() / 2] ^= 0x10;
  write_bytes(dir.file("flipped.vkv"), damaged);
  refused(dir.file("flipped.vkv"), ErrorCode::corrupt_data, "checksum mismatch");
  write_bytes(dir.file("cut.vkv"), std::vector<uint8_t>(bytes.begin(), bytes.end() - 5));
  refused(dir.file("cut.vkv"), ErrorCode::corrupt_data, "truncated");
  damaged = bytes;
  damaged[0] = 'X';
  write_bytes(dir.file("magic.vkv"), damaged);
  refused(dir.file("magic.vkv"), ErrorCode::corrupt_data, "wrong magic");
  damaged = bytes;
  damaged[8] = 9;
  write_bytes(dir.file("version.vkv"), damaged);
  refused(dir.file("version.vkv"), ErrorCode::corrupt_data, "format version 9");
  refused(dir.file("missing.vkv"), ErrorCode::io_error, "cannot open");

  // Whole files of another cache layout: refused by load_sequences, before any upload.
  Cache wide(ctx, {2, 4, 4, 64}, s, 1024);
  fill(wide, seed + 2);
  wide.save(dir.file("wide.vkv"));
  refused(dir.file("wide.vkv"), ErrorCode::invalid_argument, "kv_heads 4", true);
  Cache other_settings(ctx, g, preset("2bit"), 1024);
  fill(other_settings, seed + 3);
  other_settings.save(dir.file("2bit.vkv"));
  try {
    cache.load_sequences(dir.file("2bit.vkv"));
    ADD_FAILURE() << "accepted other settings";
  } catch (const Error& e) {
    EXPECT_TRUE(mentions(e.what(), "has settings 2bit")) << e.what();
  }
  expect_unchanged(cache, f.a, before);
  // A sound file of a geometry the runtime does not offer: Cache::load names the file and the value.
  write_cache_file(dir.file("d32.vkv"), serialize_cache_file(random_contents(s, {1, 1, 1, 32}, seed)));
  try {
    Cache::load(dir.file("d32.vkv"), ctx);
    ADD_FAILURE() << "loaded head_dim 32";
  } catch (const Error& e) {
    const std::string prefix = "invalid_argument: cache file '" + dir.file("d32.vkv") + "': cache: head_dim 32";
    EXPECT_EQ(std::string(e.what()).rfind(prefix, 0), 0u) << e.what();
  }
  Cache small(ctx, g, s, 64);
  try {
    small.load_sequences(good);
    ADD_FAILURE() << "accepted a sequence above max_tokens";
  } catch (const Error& e) {
    EXPECT_TRUE(mentions(e.what(), "above this cache's max_tokens 64")) << e.what();
  }
  EXPECT_TRUE(small.sequence_ids().empty());
}

TEST_F(CacheFileDevice, SavedFileDamageAtEveryByte) {
  // A file from the save path itself (not the test's writer): every truncation and every byte
  // flipped is refused by the parser that load runs first.
  const CacheGeometry g{1, 1, 1, 64};
  Cache cache(ctx, g, preset("k1.5-v1.58"), 64);
  const KvData kv = random_kv(1, 40, 64, tools::test_seed());
  const uint32_t seq = cache.create_sequence();
  cache.prefill(seq, 0, kv.keys, kv.values, 40);
  TempDir dir;
  cache.save(dir.file("small.vkv"));
  const std::vector<uint8_t> bytes = file_bytes(dir.file("small.vkv"));
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_TRUE(mentions(corrupt_message(std::vector<uint8_t>(bytes.begin(), bytes.begin() + n)), "truncated"));
  }
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::vector<uint8_t> damaged = bytes;
    damaged[i] ^= uint8_t(1u << (i % 8));
    EXPECT_FALSE(corrupt_message(damaged).empty()) << "byte " << i;
  }
}

// A sequence as bytes (disaggregated prefill and decode): the bytes are what save(path, sequence)
// writes; deserialized into another cache it holds and computes exactly what the original does,
// and goes on alike. Bytes that are damaged, of other settings or of two sequences change nothing.
TEST_F(CacheFileDevice, SequenceBytesMoveBetweenCaches) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const CacheGeometry g{2, 2, 4, 64};
  const CacheSettings s = preset("k1.5-v1.58");
  Cache prefill_side(ctx, g, s, 1024);
  const Filled f = fill(prefill_side, seed);
  const std::vector<uint8_t> bytes = prefill_side.serialize_sequence(f.a);
  TempDir dir;
  prefill_side.save(dir.file("a.vkv"), f.a);
  EXPECT_EQ(bytes, file_bytes(dir.file("a.vkv")));
  expect_error([&] { prefill_side.serialize_sequence(99); }, "unknown sequence 99");

  Cache decode_side(ctx, g, s, 2048);
  const uint32_t got = decode_side.deserialize_sequence(bytes.data(), bytes.size());
  for (uint32_t l = 0; l < g.layers; ++l) {
    expect_same_layer(prefill_side, f.a, decode_side, got, l);
    expect_same_outputs(prefill_side, f.a, decode_side, got, l, seed + l);
  }
  // Both go on alike across a residual flush.
  for (uint32_t t = 130; t < 130 + 100; ++t) {
    const auto [k, v] = token(f.kv, t, g);
    prefill_side.append(f.a, 0, k, v);
    decode_side.append(got, 0, k, v);
  }
  expect_same_layer(prefill_side, f.a, decode_side, got, 0);
  expect_same_outputs(prefill_side, f.a, decode_side, got, 0, seed + 7);

  const Snapshot before = snapshot(decode_side, got);
  std::vector<uint8_t> damaged = bytes;
  damaged[damaged.size() / 2] ^= 0x10;
  expect_error([&] { decode_side.deserialize_sequence(damaged.data(), damaged.size()); }, "sequence bytes");
  expect_error([&] { decode_side.deserialize_sequence(bytes.data(), bytes.size() / 3); }, "sequence bytes");
  Cache other_settings(ctx, g, preset("2bit"), 1024);
  const Filled o = fill(other_settings, seed + 2);
  const std::vector<uint8_t> two_bit = other_settings.serialize_sequence(o.a);
  expect_error([&] { decode_side.deserialize_sequence(two_bit.data(), two_bit.size()); },
               "sequence bytes has settings");
  prefill_side.save(dir.file("both.vkv"));
  const std::vector<uint8_t> both = file_bytes(dir.file("both.vkv"));
  expect_error([&] { decode_side.deserialize_sequence(both.data(), both.size()); }, "hold 2 sequences");
  Cache small(ctx, g, s, 64);
  expect_error([&] { small.deserialize_sequence(bytes.data(), bytes.size()); }, "above this cache's max_tokens 64");
  EXPECT_TRUE(small.sequence_ids().empty());
  expect_unchanged(decode_side, got, before);
}

TEST_F(CacheFileDevice, SequenceBytesThroughTheCApi) {
  vidkv_context* c_ctx = nullptr;
  ASSERT_EQ(vidkv_context_create(nullptr, &c_ctx), VIDKV_OK) << vidkv_last_error_message();
  vidkv_cache *a = nullptr, *b = nullptr;
  ASSERT_EQ(vidkv_cache_create(c_ctx, 2, 2, 4, 64, "k1.5-v1.58", 1024, &a), VIDKV_OK);
  ASSERT_EQ(vidkv_cache_create(c_ctx, 2, 2, 4, 64, "k1.5-v1.58", 1024, &b), VIDKV_OK);
  const KvData kv = random_kv(2, 100, 64, tools::test_seed());
  uint32_t s = 0, moved = 0;
  ASSERT_EQ(vidkv_sequence_create(a, &s), VIDKV_OK);
  ASSERT_EQ(vidkv_prefill(a, s, 0, kv.keys.data(), kv.values.data(), 100), VIDKV_OK) << vidkv_last_error_message();
  size_t size = 0;
  ASSERT_EQ(vidkv_sequence_serialize(a, s, nullptr, 0, &size), VIDKV_OK);
  EXPECT_GT(size, 0u);
  std::vector<uint8_t> bytes(size);
  size_t small = 7;
  EXPECT_EQ(vidkv_sequence_serialize(a, s, bytes.data(), size - 1, &small), VIDKV_ERROR_BUFFER_TOO_SMALL);
  EXPECT_TRUE(mentions(vidkv_last_error_message(), ("needs " + std::to_string(size) + " bytes").c_str()));
  EXPECT_EQ(small, 7u);  // outputs untouched on error
  EXPECT_EQ(vidkv_sequence_serialize(a, s + 5, bytes.data(), size, &small), VIDKV_ERROR_INVALID_ARGUMENT);
  size_t written = 0;
  ASSERT_EQ(vidkv_sequence_serialize(a, s, bytes.data(), size, &written), VIDKV_OK);
  EXPECT_EQ(written, size);
  bytes[40] ^= 1;
  EXPECT_EQ(vidkv_sequence_deserialize(b, bytes.data(), size, &moved), VIDKV_ERROR_CORRUPT_FILE);
  bytes[40] ^= 1;
  ASSERT_EQ(vidkv_sequence_deserialize(b, bytes.data(), size, &moved), VIDKV_OK) << vidkv_last_error_message();
  std::vector<float> q(4 * 64, 0.5f), out_a(4 * 64), out_b(4 * 64);
  ASSERT_EQ(vidkv_attention(a, s, 0, q.data(), 0.0f, out_a.data()), VIDKV_OK);
  ASSERT_EQ(vidkv_attention(b, moved, 0, q.data(), 0.0f, out_b.data()), VIDKV_OK);
  EXPECT_EQ(out_a, out_b);
  vidkv_cache_destroy(a);
  vidkv_cache_destroy(b);
  vidkv_context_destroy(c_ctx);
}

TEST_F(CacheFileDevice, ThroughTheCApi) {
  const CacheGeometry g{2, 2, 4, 64};
  Cache original(ctx, g, preset("kivi"), 1024);
  const Filled f = fill(original, tools::test_seed());
  TempDir dir;
  original.save(dir.file("c.vkv"));

  vidkv_context* c_ctx = nullptr;
  ASSERT_EQ(vidkv_context_create(nullptr, &c_ctx), VIDKV_OK) << vidkv_last_error_message();
  vidkv_cache* loaded = nullptr;
  ASSERT_EQ(vidkv_cache_load(c_ctx, dir.file("c.vkv").c_str(), &loaded), VIDKV_OK) << vidkv_last_error_message();
  uint32_t ids[4] = {0, 0, 0, 0}, count = 0;
  EXPECT_EQ(vidkv_sequence_ids(loaded, ids, 4, &count), VIDKV_OK);
  EXPECT_EQ(count, 2u);
  EXPECT_EQ(std::vector<uint32_t>(ids, ids + count), original.sequence_ids());
  EXPECT_EQ(vidkv_cache_save_sequence(loaded, dir.file("a.vkv").c_str(), f.a), VIDKV_OK);

  // Too little room: nothing is loaded. Enough: the new ids.
  EXPECT_EQ(vidkv_cache_load_sequences(loaded, dir.file("c.vkv").c_str(), ids, 1, &count),
            VIDKV_ERROR_BUFFER_TOO_SMALL);
  EXPECT_TRUE(mentions(vidkv_last_error_message(), "holds 2 sequences"));
  EXPECT_EQ(vidkv_sequence_ids(loaded, ids, 4, &count), VIDKV_OK);
  EXPECT_EQ(count, 2u);
  EXPECT_EQ(vidkv_cache_load_sequences(loaded, dir.file("a.vkv").c_str(), ids, 4, &count), VIDKV_OK);
  EXPECT_EQ(count, 1u);
  EXPECT_EQ(vidkv_sequence_ids(loaded, ids, 2, &count), VIDKV_ERROR_BUFFER_TOO_SMALL);

  write_bytes(dir.file("bad.vkv"), {'V', 'K', 'V'});
  vidkv_cache* none = nullptr;
  EXPECT_EQ(vidkv_cache_load(c_ctx, dir.file("bad.vkv").c_str(), &none), VIDKV_ERROR_CORRUPT_FILE);
  EXPECT_EQ(none, nullptr);
  EXPECT_TRUE(mentions(vidkv_last_error_message(), "truncated"));
  EXPECT_EQ(vidkv_cache_load(c_ctx, dir.file("absent.vkv").c_str(), &none), VIDKV_ERROR_IO);
  EXPECT_EQ(vidkv_cache_save(loaded, dir.file("no_dir/x.vkv").c_str()), VIDKV_ERROR_IO);
  vidkv_cache_destroy(loaded);
  vidkv_context_destroy(c_ctx);
}

}  // namespace
}  // namespace vidkv::test
