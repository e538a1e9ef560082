// The saved-cache format on the host (no device): CRC-32C against published check values, the
// writer and the parser round trip for every preset and key layout, and every class of damage is
// refused with Error(corrupt_data) naming it: wrong magic, unsupported version, truncation at
// every length, every single-bit flip of a file, and content whose checksums are right but whose
// counts, lengths, ids, tables or settings disagree with the geometry.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <functional>

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
  for (const char* p : {"k1.5-v1.58", "fp16", "kivi"}) {
    const std::vector<uint8_t> bytes = small_file(p, 11);
    SCOPED_TRACE(std::string(p) + ", " + std::to_string(bytes.size()) + " bytes");
    for (size_t n = 0; n < bytes.size(); ++n) {
      const std::string m = corrupt_message(std::vector<uint8_t>(bytes.begin(), bytes.begin() + n));
      EXPECT_TRUE(mentions(m, "truncated")) << "cut at " << n << ": " << m;
    }
  }
}

TEST(CacheFileDamage, EveryByteFlipIsRefused) {
  for (const char* p : {"k1.5-v1.58", "fp16"}) {
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
        // checksum, or is a length the file cannot hold.
        const char* expected = i < 8 ? "wrong magic" : i < 12 ? "format version" : nullptr;
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
  future[8] = 2;
  EXPECT_TRUE(mentions(corrupt_message(future), "format version 2 is not supported (this library reads version 1)"));
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
      {"STP segments", [](C& c) { c.settings.stp = true; },
       "segment 0: unsupported_bits: settings k1.5-v1.58: segments with semantic token protection have no saved form"},
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
