#pragma once
// Saved-cache contents for the file tests without a device: random bytes of the exact sizes the
// schema gives, valid channel tables, and a comparison of two contents field by field.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "vidkv/cache_file.hpp"

namespace vidkv::test {

// A valid table: per unit, k random channels increasing, then the others increasing.
inline std::vector<uint32_t> random_channel_table(const CacheGeometry& g, const CacheSettings& s, std::mt19937_64& rng) {
  const uint64_t entries = cache_file_channel_table_entries(g, s);
  KeySpec ks = s.keys;
  if (s.key_mode != CacheSettings::KeyMode::vidkv) ks.nbits = 2.0;
  const uint32_t D = g.head_dim, k = anomalous_channel_count(ks, D);
  std::vector<uint32_t> table;
  for (uint64_t unit = 0; unit * D < entries; ++unit) {
    std::vector<uint32_t> order(D);
    std::iota(order.begin(), order.end(), 0u);
    std::shuffle(order.begin(), order.end(), rng);
    std::sort(order.begin(), order.begin() + k);
    std::sort(order.begin() + k, order.end());
    table.insert(table.end(), order.begin(), order.end());
  }
  return table;
}

// `count` distinct positions below `tokens`, increasing, as u32 little-endian bytes.
inline std::vector<uint8_t> random_protected_list(uint32_t tokens, uint32_t count, std::mt19937_64& rng) {
  std::vector<uint32_t> all(tokens);
  std::iota(all.begin(), all.end(), 0u);
  std::shuffle(all.begin(), all.end(), rng);
  all.resize(count);
  std::sort(all.begin(), all.end());
  std::vector<uint8_t> bytes;
  for (uint32_t p : all) {
    for (int i = 0; i < 4; ++i) bytes.push_back(uint8_t(p >> (8 * i)));
  }
  return bytes;
}

// A layer holding segments of `segment_tokens` each and `residual` fp16 tokens. `protect` >= 0:
// segment 0 is an STP segment protecting that many tokens (at random positions).
inline CacheFileLayer random_layer(const CacheGeometry& g, const CacheSettings& s,
                                   const std::vector<uint32_t>& segment_tokens, uint32_t residual, bool prefilled,
                                   bool appended, std::mt19937_64& rng, int protect = -1) {
  CacheFileLayer l;
  l.prefilled = prefilled;
  l.appended = appended;
  l.residual = residual;
  for (uint32_t t : segment_tokens) {
    CacheFileSegment seg;
    seg.tokens = t;
    if (protect >= 0 && l.segments.empty()) {
      seg.stp = true;
      seg.protected_count = uint32_t(protect);
    }
    for (const CacheFileArraySpec& spec : cache_file_segment_arrays(g, s, t, seg.stp, seg.protected_count)) {
      std::vector<uint8_t> bytes(spec.bytes);
      for (auto& b : bytes) b = uint8_t(rng());
      if (spec.id == CacheFileArrayId::stp_protected_tokens) bytes = random_protected_list(t, seg.protected_count, rng);
      seg.arrays.push_back({spec.id, std::move(bytes)});
    }
    l.segments.push_back(std::move(seg));
    l.quantized += t;
  }
  if (!segment_tokens.empty()) l.channels = random_channel_table(g, s, rng);
  l.residual_keys.resize(size_t(residual) * g.kv_heads * g.head_dim);
  l.residual_values.resize(l.residual_keys.size());
  for (auto& h : l.residual_keys) h = uint16_t(rng());
  for (auto& h : l.residual_values) h = uint16_t(rng());
  return l;
}

// A file's contents without sequences: the geometry and settings given, max_tokens 512.
inline CacheFileContents empty_contents(const CacheSettings& s, const CacheGeometry& g) {
  CacheFileContents c;
  c.library_version = "test";
  c.geometry = g;
  c.settings = s;
  c.max_tokens = 512;
  return c;
}

// Two sequences over `g.layers` layers: a prefilled one with a segment and a tail (and a flushed
// segment on layer 0), and one with an appended-only layer and empty layers. With STP settings
// the prefill segments protect G, 0, 2G (all), G, 0, ... tokens by layer.
inline CacheFileContents random_contents(const CacheSettings& s, const CacheGeometry& g, uint64_t seed) {
  std::mt19937_64 rng(seed);
  CacheFileContents c = empty_contents(s, g);
  const bool fp16 = s.key_mode == CacheSettings::KeyMode::fp16;
  const uint32_t G = s.group_size, R = s.residual_length;
  CacheFileSequence a{7, {}}, b{3, {}};
  for (uint32_t l = 0; l < g.layers; ++l) {
    if (fp16) {
      a.layers.push_back(random_layer(g, s, {}, 37 + l, true, l == 0, rng));
      b.layers.push_back(l == 0 ? random_layer(g, s, {}, 5, false, true, rng) : CacheFileLayer{});
    } else {
      std::vector<uint32_t> segs{2 * G};
      if (l == 0) segs.push_back(R);
      const int protect = s.stp ? int((l % 3 == 2 ? 2 : l % 3 == 0 ? 1 : 0) * G) : -1;
      a.layers.push_back(random_layer(g, s, segs, l == 0 ? 9 : G - 1, true, l == 0, rng, protect));
      b.layers.push_back(l == 0 ? random_layer(g, s, {}, 5, false, true, rng) : CacheFileLayer{});
    }
  }
  c.sequences = {a, b};
  return c;
}

// A layer of a cache with per-head policies: the preset part over `heads.preset` heads (as
// random_layer gives it over the part geometry), then, in a mixed layer, `count` tokens of random
// full and window stores. A layer without preset heads takes no segments or residual.
inline CacheFileLayer random_policy_layer(const CacheFileContents& c, const CacheFileLayerHeads& heads,
                                          const std::vector<uint32_t>& segment_tokens, uint32_t residual,
                                          uint32_t count, bool prefilled, bool appended, std::mt19937_64& rng) {
  CacheFileLayer l;
  if (heads.preset > 0) {
    l = random_layer(cache_file_part_geometry(c.geometry, heads.preset), c.settings, segment_tokens, residual,
                     prefilled, appended, rng);
  }
  l.prefilled = prefilled;
  l.appended = appended;
  if (!heads.mixed()) return l;
  l.mixed = true;
  l.count = count;
  const HeadPolicySpec& h = c.settings.head_policies;
  const size_t D = c.geometry.head_dim, window = std::min<size_t>(count, size_t(h.sink) + h.recent);
  for (auto* store : {&l.full_keys, &l.full_values}) store->resize(size_t(count) * heads.full * D);
  for (auto* store : {&l.window_keys, &l.window_values}) store->resize(window * heads.window * D);
  for (auto* store : {&l.full_keys, &l.full_values, &l.window_keys, &l.window_values}) {
    for (auto& x : *store) x = uint16_t(rng());
  }
  return l;
}

// Two sequences of a cache with per-head policies (quantized settings): sequence 5 prefilled on
// every layer (preset part: a segment of 2G and a tail of 9; layer 0 also a flushed segment of R,
// and appended to), sequence 2 with layer 0 appended to only (5 tokens) and its other layers empty.
inline CacheFileContents random_policy_contents(const CacheSettings& s, const CacheGeometry& g, uint64_t seed) {
  std::mt19937_64 rng(seed);
  CacheFileContents c = empty_contents(s, g);
  const uint32_t G = s.group_size, R = s.residual_length;
  const std::vector<CacheFileLayerHeads> heads = cache_file_layer_heads(g, s);
  CacheFileSequence a{5, {}}, b{2, {}};
  for (uint32_t l = 0; l < g.layers; ++l) {
    std::vector<uint32_t> segs{2 * G};
    if (l == 0) segs.push_back(R);
    const uint32_t count = 2 * G + (l == 0 ? R : 0) + 9;
    a.layers.push_back(random_policy_layer(c, heads[l], segs, 9, count, true, l == 0, rng));
    b.layers.push_back(l == 0 ? random_policy_layer(c, heads[l], {}, 5, 5, false, true, rng)
                              : random_policy_layer(c, heads[l], {}, 0, 0, false, false, rng));
  }
  c.sequences = {a, b};
  return c;
}

inline void expect_same_contents(const CacheFileContents& a, const CacheFileContents& b) {
  EXPECT_EQ(a.format_version, b.format_version);
  EXPECT_EQ(a.library_version, b.library_version);
  EXPECT_EQ(a.geometry.layers, b.geometry.layers);
  EXPECT_EQ(a.geometry.kv_heads, b.geometry.kv_heads);
  EXPECT_EQ(a.geometry.q_heads, b.geometry.q_heads);
  EXPECT_EQ(a.geometry.head_dim, b.geometry.head_dim);
  EXPECT_EQ(a.settings.name, b.settings.name);
  EXPECT_TRUE(same_configuration(a.settings, b.settings)) << describe(a.settings) << " vs " << describe(b.settings);
  EXPECT_EQ(a.max_tokens, b.max_tokens);
  ASSERT_EQ(a.sequences.size(), b.sequences.size());
  for (size_t i = 0; i < a.sequences.size(); ++i) {
    const CacheFileSequence &x = a.sequences[i], &y = b.sequences[i];
    EXPECT_EQ(x.id, y.id);
    ASSERT_EQ(x.layers.size(), y.layers.size());
    for (size_t l = 0; l < x.layers.size(); ++l) {
      SCOPED_TRACE("sequence " + std::to_string(i) + " layer " + std::to_string(l));
      const CacheFileLayer &p = x.layers[l], &q = y.layers[l];
      EXPECT_EQ(p.prefilled, q.prefilled);
      EXPECT_EQ(p.appended, q.appended);
      EXPECT_EQ(p.quantized, q.quantized);
      EXPECT_EQ(p.residual, q.residual);
      EXPECT_EQ(p.channels, q.channels);
      EXPECT_EQ(p.residual_keys, q.residual_keys);
      EXPECT_EQ(p.residual_values, q.residual_values);
      EXPECT_EQ(p.mixed, q.mixed);
      EXPECT_EQ(p.count, q.count);
      EXPECT_EQ(p.full_keys, q.full_keys);
      EXPECT_EQ(p.full_values, q.full_values);
      EXPECT_EQ(p.window_keys, q.window_keys);
      EXPECT_EQ(p.window_values, q.window_values);
      ASSERT_EQ(p.segments.size(), q.segments.size());
      for (size_t s = 0; s < p.segments.size(); ++s) {
        EXPECT_EQ(p.segments[s].tokens, q.segments[s].tokens);
        EXPECT_EQ(p.segments[s].stp, q.segments[s].stp);
        EXPECT_EQ(p.segments[s].protected_count, q.segments[s].protected_count);
        ASSERT_EQ(p.segments[s].arrays.size(), q.segments[s].arrays.size());
        for (size_t k = 0; k < p.segments[s].arrays.size(); ++k) {
          EXPECT_EQ(p.segments[s].arrays[k].id, q.segments[s].arrays[k].id);
          EXPECT_EQ(p.segments[s].arrays[k].bytes, q.segments[s].arrays[k].bytes)
              << "segment " << s << " array " << cache_file_array_name(p.segments[s].arrays[k].id);
        }
      }
    }
  }
}

// Parses `bytes` expecting Error(corrupt_data); returns the message ("" and a failure otherwise).
inline std::string corrupt_message(const std::vector<uint8_t>& bytes) {
  try {
    parse_cache_file(bytes.data(), bytes.size(), "test");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::corrupt_data) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "a corrupt file of " << bytes.size() << " bytes was accepted";
  return "";
}

inline bool mentions(const std::string& message, const char* what) { return message.find(what) != std::string::npos; }

// Walks the sections of a whole file and writes the right CRC into each (after a patch), so that a
// damaged field reaches the checks behind the checksum.
inline void repair_checksums(std::vector<uint8_t>& bytes) {
  size_t at = 12;
  while (at + 12 <= bytes.size()) {
    uint64_t length = 0;
    for (int i = 11; i >= 4; --i) length = length << 8 | bytes[at + i];
    const uint32_t crc = crc32c(bytes.data() + at, 12 + length);
    for (int i = 0; i < 4; ++i) bytes[at + 12 + length + i] = uint8_t(crc >> (8 * i));
    at += 12 + length + 4;
  }
}

}  // namespace vidkv::test
