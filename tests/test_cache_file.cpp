// The saved-cache format on the host (no device): CRC-32C against published check values, the
// writer and the parser round trip for every preset and key layout, and every class of damage is
// refused with Error(corrupt_data) naming it: wrong magic, unsupported version, truncation at
// every length, every single-bit flip of a file, and content whose checksums are right but whose
// counts, lengths, ids, tables or settings disagree with the geometry.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>

#include "common/random_data.hpp"
#include "test_cache_file_data.hpp"

namespace vidkv::test {
namespace {

std::vector<uint8_t> bytes_of(const char* text) { return std::vector<uint8_t>(text, text + std::strlen(text)); }

TEST(CacheFileChecksum, MatchesPublishedCheckValues) {
  // The CRC-32C catalogue's check value, and the iSCSI test patterns of RFC 3720 B.4.
  const auto digits = bytes_of("123456789");
  EXPECT_EQ(crc32c(digits.data(), digits.size()), 0xE3069283u);
  std::vector<uint8_t> zeros(32, 0x00), ones(32, 0xFF), up(32), down(32);
  for (int i = 0; i < 32; ++i) {
    up[i] = uint8_t(i);
    down[i] = uint8_t(31 - i);
  }
  EXPECT_EQ(crc32c(zeros.data(), 32), 0x8A9136AAu);
  EXPECT_EQ(crc32c(ones.data(), 32), 0x62A8AB43u);
  EXPECT_EQ(crc32c(up.data(), 32), 0x46DD794Eu);
  EXPECT_EQ(crc32c(down.data(), 32), 0x113FDB5Cu);
  EXPECT_EQ(crc32c(nullptr, 0), 0u);
}

TEST(CacheFileChecksum, PiecewiseEqualsWhole) {
  // The 8-byte steps and the byte tail must agree wherever a buffer is split.
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> data(1000);
  for (auto& b : data) b = uint8_t(rng());
  const uint32_t whole = crc32c(data.data(), data.size());
  for (size_t cut = 0; cut <= data.size(); cut += 37) {
    const uint32_t first = crc32c(data.data(), cut);
    EXPECT_EQ(crc32c(data.data() + cut, data.size() - cut, first), whole) << "cut at " << cut;
  }
  // Bitwise definition, byte by byte.
  uint32_t crc = ~0u;
  for (uint8_t b : data) {
    crc ^= b;
    for (int k = 0; k < 8; ++k) crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
  }
  EXPECT_EQ(~crc, whole);
}

struct SettingsCase {
  const char* name;
  std::function<CacheSettings()> make;
};

std::vector<SettingsCase> settings_cases() {
  auto custom = [](double nbits, ChannelScope scope, FftLayout fft) {
    CacheSettings s = preset("k1.5-v1.58");
    s.keys.nbits = nbits;
    s.keys.scope = scope;
    s.keys.fft = fft;
    s.name = settings_name(s);
    return s;
  };
  return {
      {"fp16", [] { return preset("fp16"); }},
      {"2bit", [] { return preset("2bit"); }},
      {"kivi", [] { return preset("kivi"); }},
      {"k1_5_v2", [] { return preset("k1.5-v2"); }},
      {"k1_5_v1_58", [] { return preset("k1.5-v1.58"); }},
      {"k1_5_v1_58_stp", [] { return preset("k1.5-v1.58-stp"); }},
      {"scope_layer_full_fft", [=] { return custom(1.5, ChannelScope::layer, FftLayout::full); }},
      {"nbits_1_all_streams", [=] { return custom(1.0, ChannelScope::head, FftLayout::half); }},
      {"nbits_2_no_streams", [=] { return custom(2.0, ChannelScope::head, FftLayout::half); }},
      {"nbits_1_3_odd_split", [=] { return custom(1.3, ChannelScope::head, FftLayout::half); }},
  };
}

class CacheFileRoundTrip : public ::testing::TestWithParam<SettingsCase> {};

TEST_P(CacheFileRoundTrip, ParseOfSerializeIsIdentity) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  for (uint32_t dim : {64u, 128u}) {
    const CacheFileContents c = random_contents(GetParam().make(), {3, 2, 6, dim}, seed + dim);
    const std::vector<uint8_t> bytes = serialize_cache_file(c);
    expect_same_contents(parse_cache_file(bytes.data(), bytes.size(), "test"), c);
    // Serializing the parsed contents gives the same bytes: nothing is lost or reinterpreted.
    EXPECT_EQ(serialize_cache_file(parse_cache_file(bytes.data(), bytes.size(), "test")), bytes);
  }
}

INSTANTIATE_TEST_SUITE_P(Settings, CacheFileRoundTrip, ::testing::ValuesIn(settings_cases()),
                         [](const auto& info) { return std::string(info.param.name); });

// A small file of each kind: the damage tests run over every byte of it.
std::vector<uint8_t> small_file(const char* preset_name, uint64_t seed) {
  return serialize_cache_file(random_contents(preset(preset_name), {1, 1, 1, 64}, seed));
}

TEST(CacheFileDamage, EveryTruncationIsRefused) {
  for (const char* p : {"k1.5-v1.58", "fp16", "kivi", "k1.5-v1.58-stp"}) {
    const std::vector<uint8_t> bytes = small_file(p, 11);
    SCOPED_TRACE(std::string(p) + ", " + std::to_string(bytes.size()) + " bytes");
    for (size_t n = 0; n < bytes.size(); ++n) {
      const std::string m = corrupt_message(std::vector<uint8_t>(bytes.begin(), bytes.begin() + n));
      EXPECT_TRUE(mentions(m, "truncated")) << "cut at " << n << ": " << m;
    }
  }
}

TEST(CacheFileDamage, EveryByteFlipIsRefused) {
  for (const char* p : {"k1.5-v1.58", "fp16", "k1.5-v1.58-stp"}) {
    const std::vector<uint8_t> bytes = small_file(p, 12);
    SCOPED_TRACE(std::string(p) + ", " + std::to_string(bytes.size()) + " bytes");
    for (size_t i = 0; i < bytes.size(); ++i) {
      // Every bit of the header and the first section (counts and lengths live there), one bit
      // per byte, rotating, beyond.
      const int first = i < 128 ? 0 : int(i % 8), last = i < 128 ? 7 : first;
      for (int bit = first; bit <= last; ++bit) {
        std::vector<uint8_t> damaged = bytes;
        damaged[i] ^= uint8_t(1u << bit);
        const std::string m = corrupt_message(damaged);
        // The magic and the version are outside any section; every other byte is covered by a
        // checksum, or is a length the file cannot hold. A version flipped to another one this
        // library reads (3 to 2 or 1) is refused by the layout that version expects.
        const uint32_t version = uint32_t(damaged[8]) | uint32_t(damaged[9]) << 8 |
                                 uint32_t(damaged[10]) << 16 | uint32_t(damaged[11]) << 24;
        const bool readable = version >= kCacheFileOldestFormatVersion && version <= kCacheFileFormatVersion;
        const char* expected = i < 8 ? "wrong magic" : i < 12 ? (readable ? "" : "format version") : nullptr;
        if (expected) {
          EXPECT_TRUE(mentions(m, expected)) << "byte " << i << " bit " << bit << ": " << m;
        } else {
          EXPECT_TRUE(mentions(m, "checksum mismatch") || mentions(m, "truncated or corrupt"))
              << "byte " << i << " bit " << bit << ": " << m;
        }
      }
    }
  }
}

TEST(CacheFileDamage, WrongMagicAndVersionAreNamed) {
  std::vector<uint8_t> bytes = small_file("2bit", 13);
  EXPECT_TRUE(mentions(corrupt_message(bytes_of("{'not': 'a cache'}")), "not a vidkv cache file"));
  EXPECT_TRUE(mentions(corrupt_message({}), "truncated"));
  std::vector<uint8_t> future = bytes;
  future[8] = 4;
  EXPECT_TRUE(
      mentions(corrupt_message(future), "format version 4 is not supported (this library reads versions 1 to 3)"));
  future[8] = 0;
  EXPECT_TRUE(mentions(corrupt_message(future), "format version 0 is not supported"));
  CacheFileContents c = random_contents(preset("2bit"), {1, 1, 1, 64}, 13);
  c.format_version = 7;
  EXPECT_TRUE(mentions(corrupt_message(serialize_cache_file(c)), "format version 7"));
}

TEST(CacheFileDamage, TrailingBytesAreRefused) {
  std::vector<uint8_t> bytes = small_file("2bit", 14);
  bytes.push_back(0);
  EXPECT_TRUE(mentions(corrupt_message(bytes), "1 bytes follow the end section"));
}

// Files whose checksums are right but whose content is not a cache: each mutation and the words
// its message must contain.
struct Mutation {
  const char* what;
  std::function<void(CacheFileContents&)> apply;
  const char* message;
};

std::vector<Mutation> mutations() {
  using C = CacheFileContents;
  return {
      {"q_heads not a multiple", [](C& c) { c.geometry.q_heads = 3; }, "q_heads 3 is not a multiple of kv_heads 2"},
      {"head_dim 0", [](C& c) { c.geometry.head_dim = 0; }, "head_dim 0 is outside"},
      {"layers 0", [](C& c) { c.geometry.layers = 0; }, "layers 0 is outside"},
      {"max_tokens 0", [](C& c) { c.max_tokens = 0; }, "max_tokens 0 is outside"},
      {"group size 48", [](C& c) { c.settings.group_size = c.settings.keys.group_size = 48; }, "group_size 48"},
      {"nbits 3", [](C& c) { c.settings.keys.nbits = 3.0; }, "nbits 3 is outside [1, 2]"},
      {"unknown key mode", [](C& c) { c.settings.key_mode = CacheSettings::KeyMode(9); }, "key mode code 255 is not known"},
      {"STP segment without STP settings", [](C& c) { c.sequences[0].layers[1].segments[0].stp = true; },
       "segment 0: invalid_argument: a segment with semantic token protection in settings k1.5-v1.58, which have "
       "none"},
      {"protected tokens without the STP flag",
       [](C& c) { c.sequences[0].layers[0].segments[0].protected_count = 32; },
       "segment 0: invalid_argument: a segment without semantic token protection protects 32 tokens"},
      {"fp16 keys with quantized values", [](C& c) { c.settings.key_mode = CacheSettings::KeyMode::fp16; },
       "both in fp16 or neither"},
      {"unprintable name", [](C& c) { c.settings.name = "k1.5\n"; }, "settings name holds a byte that is not printable"},
      {"name too long", [](C& c) { c.settings.name.assign(300, 'x'); }, "settings name of 300 bytes (at most 256)"},
      {"sequence id 0", [](C& c) { c.sequences[0].id = 0; }, "sequence id 0"},
      {"repeated sequence id", [](C& c) { c.sequences[1].id = c.sequences[0].id; }, "sequence id 7 appears twice"},
      {"a layer missing", [](C& c) { c.sequences[0].layers.pop_back(); }, "2 layers; the geometry has 3"},
      {"channel table repeats a channel",
       [](C& c) { c.sequences[0].layers[0].channels[1] = c.sequences[0].layers[0].channels[0]; },
       "channel table unit 0 entry 1"},
      {"channel table out of range", [](C& c) { c.sequences[0].layers[1].channels.back() = 64; }, "is channel 64"},
      {"channel table short", [](C& c) { c.sequences[0].layers[0].channels.pop_back(); }, "channel table entries"},
      {"table without segments", [](C& c) { c.sequences[1].layers[0].channels = c.sequences[0].layers[0].channels; },
       "channel table entries with 0 segments"},
      {"segment of 33 tokens",
       [](C& c) {
         c.sequences[0].layers[0].segments[0].tokens = 33;
         c.sequences[0].layers[0].quantized = 33 + 128;
       },
       "segment 0: bad_group_size: segment of 33 tokens"},
      {"array one byte long", [](C& c) { c.sequences[0].layers[0].segments[0].arrays[0].bytes.push_back(0); },
       "array key_anomalous_codes holds"},
      {"array missing", [](C& c) { c.sequences[0].layers[0].segments[1].arrays.pop_back(); },
       "segment 1 has 6 arrays; the settings give 7"},
      {"array twice",
       [](C& c) {
         auto& a = c.sequences[0].layers[0].segments[0].arrays;
         a[2] = a[1];
       },
       "array key_anomalous_scales appears twice"},
      {"arrays out of order",
       [](C& c) {
         auto& a = c.sequences[0].layers[0].segments[0].arrays;
         std::swap(a[5], a[6]);
       },
       "array value_scales at position 5; value_codes belongs there"},
      {"unknown array id", [](C& c) { c.sequences[0].layers[0].segments[0].arrays[3].id = CacheFileArrayId(99); },
       "array id 99 (unknown) does not belong"},
      {"quantized count disagrees", [](C& c) { c.sequences[0].layers[1].quantized += 32; },
       "segments hold 64 tokens; the layer says 96 quantized"},
      {"residual of residual_length",
       [](C& c) {
         auto& l = c.sequences[1].layers[0];
         l.residual = 128;
         l.residual_keys.resize(128 * 2 * 64);
         l.residual_values.resize(128 * 2 * 64);
       },
       "128 residual tokens; at most 127"},
      {"residual data short", [](C& c) { c.sequences[1].layers[0].residual_values.pop_back(); },
       "residual values of 640 x 2 bytes"},
      {"tokens beyond max_tokens", [](C& c) { c.max_tokens = 100; }, "exceed max_tokens 100"},
      {"tokens without a write", [](C& c) { c.sequences[1].layers[0].appended = false; },
       "a layer holds tokens exactly when it was prefilled or appended to"},
      {"a write without tokens", [](C& c) { c.sequences[1].layers[2].prefilled = true; },
       "0 tokens with prefilled 1"},
  };
}

TEST(CacheFileContent, EveryInconsistencyIsNamed) {
  for (const Mutation& m : mutations()) {
    SCOPED_TRACE(m.what);
    CacheFileContents c = random_contents(preset("k1.5-v1.58"), {3, 2, 4, 64}, 21);
    m.apply(c);
    const std::string message = corrupt_message(serialize_cache_file(c));
    EXPECT_TRUE(mentions(message, m.message)) << message;
    EXPECT_TRUE(mentions(message, "cache file test: ")) << message;
  }
}

TEST(CacheFileContent, StatsCountEveryArray) {
  const CacheFileContents c = random_contents(preset("k1.5-v1.58"), {3, 2, 4, 64}, 22);
  const CacheStats st = cache_file_stats(c);
  uint64_t keys = 0, values = 0, maps = 0, tokens = 0, quantized = 0;
  for (const auto& s : c.sequences) {
    for (const auto& l : s.layers) {
      maps += l.channels.size() * 4;
      tokens += l.quantized + l.residual;
      quantized += l.quantized;
      for (const auto& seg : l.segments) {
        for (const auto& a : seg.arrays) (uint32_t(a.id) <= 5 ? keys : values) += a.bytes.size();
      }
    }
  }
  EXPECT_EQ(st.sequences, 2u);
  EXPECT_EQ(st.tokens, tokens);
  EXPECT_EQ(st.quantized_tokens, quantized);
  EXPECT_EQ(st.keys.total(), keys + maps);
  EXPECT_EQ(st.values.total(), values);
  EXPECT_EQ(st.keys.maps, maps);
  EXPECT_DOUBLE_EQ(st.key_bits, 8.0 * double(keys + maps) / double(quantized * 2 * 64));
}

// Semantic token protection: the protected count and list are checked before anything is sized
// from them or handed to the device, each problem named.
std::vector<Mutation> stp_mutations() {
  using C = CacheFileContents;
  // Layer 0 of sequence 7: an STP segment of 64 tokens protecting 32, then a flushed one of 128.
  auto list = [](C& c) -> std::vector<uint8_t>& {
    for (auto& a : c.sequences[0].layers[0].segments[0].arrays) {
      if (a.id == CacheFileArrayId::stp_protected_tokens) return a.bytes;
    }
    throw std::runtime_error("no protected list");
  };
  auto set = [](std::vector<uint8_t>& bytes, size_t i, uint32_t v) {
    for (int b = 0; b < 4; ++b) bytes[4 * i + b] = uint8_t(v >> (8 * b));
  };
  auto get = [](const std::vector<uint8_t>& bytes, size_t i) {
    uint32_t v = 0;
    for (int b = 3; b >= 0; --b) v = v << 8 | bytes[4 * i + b];
    return v;
  };
  return {
      {"protected count not a multiple of 32",
       [](C& c) { c.sequences[0].layers[0].segments[0].protected_count = 16; },
       "segment 0: invalid_argument: STP segment of 64 tokens protects 16; the count must be a multiple of "
       "group_size 32"},
      {"protected count above the tokens", [](C& c) { c.sequences[0].layers[0].segments[0].protected_count = 96; },
       "STP segment of 64 tokens protects 96"},
      {"protected count of 2^32 - 32",
       [](C& c) { c.sequences[0].layers[0].segments[0].protected_count = 0xFFFFFFE0u; },
       "protects 4294967264"},
      {"unsorted list",
       [=](C& c) {
         auto& l = list(c);
         const uint32_t a = get(l, 3), b = get(l, 4);
         set(l, 3, b);
         set(l, 4, a);
       },
       "protected token 4 is position"},
      {"repeated position", [=](C& c) { set(list(c), 9, get(list(c), 8)); }, "(the positions are strictly increasing)"},
      {"position out of range", [=](C& c) { set(list(c), 31, 64); },
       "segment 0: protected token 31 is position 64, outside the segment's 64 tokens"},
      {"list one entry short",
       [=](C& c) {
         auto& l = list(c);
         l.erase(l.end() - 4, l.end());  // (resize(size - 4) draws a false -Wstringop-overflow)
       },
       "array stp_protected_tokens holds 124 bytes; 64 tokens of this geometry and settings give 128"},
      {"protected part missing",
       [](C& c) {
         auto& a = c.sequences[0].layers[0].segments[0].arrays;
         a.erase(a.begin() + 7);  // value_high_codes
       },
       "segment 0 has 10 arrays; the settings give 11"},
      {"STP flag on a flushed segment", [](C& c) { c.sequences[0].layers[0].segments[1].stp = true; },
       "segment 1 is marked STP; only a layer's prefill segment"},
      {"STP segment in a layer not prefilled",
       [](C& c) {
         c.sequences[0].layers[1].prefilled = false;
         c.sequences[0].layers[1].appended = true;
       },
       "segment 0 is marked STP"},
      {"STP flag in settings without STP", [](C& c) { c.settings.stp = false; },
       "a segment with semantic token protection in settings"},
  };
}

TEST(CacheFileContent, EveryStpInconsistencyIsNamed) {
  for (const Mutation& m : stp_mutations()) {
    SCOPED_TRACE(m.what);
    CacheFileContents c = random_contents(preset("k1.5-v1.58-stp"), {3, 2, 4, 64}, 24);
    ASSERT_TRUE(c.sequences[0].layers[0].segments[0].stp);
    ASSERT_EQ(c.sequences[0].layers[0].segments[0].protected_count, 32u);
    m.apply(c);
    const std::string message = corrupt_message(serialize_cache_file(c));
    EXPECT_TRUE(mentions(message, m.message)) << message;
  }
}

TEST(CacheFileContent, UnknownSegmentFlagBitsAreNamed) {
  const CacheFileContents c = random_contents(preset("k1.5-v1.58-stp"), {1, 1, 1, 64}, 25);
  std::vector<uint8_t> bytes = serialize_cache_file(c);
  // The first LAYR payload: 6 words, the channel table, then segment 0: tokens, flags, count.
  const uint8_t tag[4] = {'L', 'A', 'Y', 'R'};
  const size_t layr = size_t(std::search(bytes.begin(), bytes.end(), tag, tag + 4) - bytes.begin());
  ASSERT_LT(layr, bytes.size());
  const size_t flags = layr + 12 + 24 + 4 * c.sequences[0].layers[0].channels.size() + 4;
  ASSERT_EQ(bytes[flags], 1u);      // STP
  ASSERT_EQ(bytes[flags + 4], 32u);  // protected count
  bytes[flags] = 0x05;
  repair_checksums(bytes);
  EXPECT_TRUE(mentions(corrupt_message(bytes), "segment 0: unknown flag bits 0x00000005")) << corrupt_message(bytes);
}

TEST(CacheFileContent, StpStatsCountTheTokenMap) {
  // The device keeps a uint32 token map per STP segment token (the attention reads it): the file's
  // statistics count it as the cache does, and the protected list itself not at all.
  const CacheFileContents c = random_contents(preset("k1.5-v1.58-stp"), {3, 2, 4, 64}, 26);
  const CacheStats st = cache_file_stats(c);
  uint64_t values = 0, maps = 0;
  for (const auto& s : c.sequences) {
    for (const auto& l : s.layers) {
      for (const auto& seg : l.segments) {
        if (seg.stp) maps += uint64_t(seg.tokens) * 4;
        for (const auto& a : seg.arrays) {
          if (uint32_t(a.id) >= 6 && a.id != CacheFileArrayId::stp_protected_tokens) values += a.bytes.size();
        }
      }
    }
  }
  EXPECT_EQ(maps, 3u * 64 * 4);  // every layer's prefill segment
  EXPECT_EQ(st.values.maps, maps);
  EXPECT_EQ(st.values.total(), values + maps);
}

TEST(CacheFileContent, ProtectedTokensAreReadBack) {
  const CacheFileContents c = random_contents(preset("k1.5-v1.58-stp"), {3, 2, 4, 64}, 27);
  const std::vector<uint8_t> bytes = serialize_cache_file(c);
  const CacheFileContents parsed = parse_cache_file(bytes.data(), bytes.size(), "test");
  const auto& layers = parsed.sequences[0].layers;
  const std::vector<uint32_t> list = cache_file_protected_tokens(layers[0].segments[0]);
  ASSERT_EQ(list.size(), 32u);
  EXPECT_TRUE(std::is_sorted(list.begin(), list.end()));
  EXPECT_EQ(std::adjacent_find(list.begin(), list.end()), list.end());
  EXPECT_LT(list.back(), 64u);
  // Layer 1 protects nothing (an STP segment all of whose tokens take 1.58 bits), layer 2 all.
  EXPECT_TRUE(layers[1].segments[0].stp);
  EXPECT_TRUE(cache_file_protected_tokens(layers[1].segments[0]).empty());
  EXPECT_EQ(cache_file_protected_tokens(layers[2].segments[0]).size(), 64u);
  EXPECT_FALSE(layers[0].segments[1].stp);
}

// Version 1 files (before segment flags): read as segments without protection, and written back in
// their own layout. tests/data/cache_format1_k1.5-v1.58.vkv was saved by the version 1 library
// (fuzz/corpus/k1.5-v1.58.vkv of that time: one layer, 40 tokens, a second empty sequence).
TEST(CacheFileVersions, Version1FilesAreRead) {
  const std::string path = std::string(VIDKV_TEST_DATA_DIR) + "/cache_format1_k1.5-v1.58.vkv";
  const CacheFileContents v1 = read_cache_file(path);
  EXPECT_EQ(v1.format_version, 1u);
  EXPECT_EQ(v1.settings.name, "k1.5-v1.58");
  ASSERT_EQ(v1.sequences.size(), 2u);
  ASSERT_EQ(v1.sequences[0].layers[0].segments.size(), 1u);
  EXPECT_EQ(v1.sequences[0].layers[0].segments[0].tokens, 32u);
  EXPECT_FALSE(v1.sequences[0].layers[0].segments[0].stp);
  EXPECT_EQ(v1.sequences[0].layers[0].residual, 8u);
  std::ifstream in(path, std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(serialize_cache_file(v1), bytes);
  // As version 2: 8 more bytes per segment (flags and protected count), the same contents; as
  // version 3 also the 24 bytes of "no per-head policies" in HEAD.
  CacheFileContents v2 = v1;
  v2.format_version = 2;
  const std::vector<uint8_t> v2_bytes = serialize_cache_file(v2);
  EXPECT_EQ(v2_bytes.size(), bytes.size() + 8);
  expect_same_contents(parse_cache_file(v2_bytes.data(), v2_bytes.size(), "v2"), v2);
  CacheFileContents v3 = v1;
  v3.format_version = kCacheFileFormatVersion;
  const std::vector<uint8_t> v3_bytes = serialize_cache_file(v3);
  EXPECT_EQ(v3_bytes.size(), bytes.size() + 8 + 24);
  expect_same_contents(parse_cache_file(v3_bytes.data(), v3_bytes.size(), "v3"), v3);
}

TEST(CacheFileVersions, OlderVersionsRoundTripForEveryPreset) {
  for (uint32_t version : {1u, 2u}) {
    for (const char* p : {"2bit", "kivi", "k1.5-v2", "k1.5-v1.58", "fp16"}) {
      SCOPED_TRACE(std::string(p) + ", version " + std::to_string(version));
      CacheFileContents c = random_contents(preset(p), {2, 2, 4, 64}, 28);
      c.format_version = version;
      const std::vector<uint8_t> bytes = serialize_cache_file(c);
      expect_same_contents(parse_cache_file(bytes.data(), bytes.size(), "old"), c);
      EXPECT_EQ(serialize_cache_file(parse_cache_file(bytes.data(), bytes.size(), "old")), bytes);
    }
  }
}

TEST(CacheFileIo, MissingAndUnwritablePathsAreIoErrors) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("vidkv_cache_file_io_" + std::to_string(tools::test_seed()));
  try {
    read_cache_file((dir / "none.vkv").string());
    ADD_FAILURE() << "a missing file was read";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::io_error);
    EXPECT_TRUE(mentions(e.what(), "none.vkv")) << e.what();
  }
  const std::vector<uint8_t> bytes = small_file("kivi", 23);
  try {
    write_cache_file((dir / "no_such_dir" / "x.vkv").string(), bytes);
    ADD_FAILURE() << "wrote into a missing directory";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::io_error);
  }
  fs::create_directories(dir);
  const std::string path = (dir / "x.vkv").string();
  write_cache_file(path, bytes);
  EXPECT_FALSE(fs::exists(path + ".partial"));
  expect_same_contents(read_cache_file(path), parse_cache_file(bytes.data(), bytes.size(), "x"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace vidkv::test
