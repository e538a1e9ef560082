#pragma once
// Constants of the saved-cache format shared by the writer and the parser (docs/cache-format.md):
// the magic, the section tags, and the numbers that stand for enum settings in a file. The
// numbers are the file's, not the C++ enums' ordinals, so reordering an enum cannot change what
// an old file means.
#include <cstdint>
#include <optional>

#include "vidkv/head_policy.hpp"
#include "vidkv/presets.hpp"

namespace vidkv::cache_file {

inline constexpr uint8_t kMagic[8] = {'V', 'K', 'V', 'C', 'A', 'C', 'H', 'E'};
inline constexpr uint64_t kFileHeaderBytes = 12;  // magic + format version

// Each section: tag (4 ASCII bytes), payload length (u64), payload, CRC-32C (u32) of all before.
inline constexpr uint64_t kSectionOverhead = 4 + 8 + 4;
inline constexpr char kTagHead[4] = {'H', 'E', 'A', 'D'};
inline constexpr char kTagSequence[4] = {'S', 'E', 'Q', 'N'};
inline constexpr char kTagLayer[4] = {'L', 'A', 'Y', 'R'};
inline constexpr char kTagEnd[4] = {'E', 'N', 'D', '!'};

// Longest strings a file may hold (library version, settings name): more is a corrupt file.
inline constexpr uint32_t kMaxVersionBytes = 64;
inline constexpr uint32_t kMaxNameBytes = 256;

// Layer flags.
inline constexpr uint32_t kLayerPrefilled = 1u << 0;
inline constexpr uint32_t kLayerAppended = 1u << 1;

inline uint8_t code_of(CacheSettings::KeyMode m) {
  switch (m) {
    case CacheSettings::KeyMode::fp16: return 0;
    case CacheSettings::KeyMode::per_channel_2bit: return 1;
    case CacheSettings::KeyMode::vidkv: return 2;
  }
  return 0xFF;
}
inline std::optional<CacheSettings::KeyMode> key_mode_of(uint8_t c) {
  switch (c) {
    case 0: return CacheSettings::KeyMode::fp16;
    case 1: return CacheSettings::KeyMode::per_channel_2bit;
    case 2: return CacheSettings::KeyMode::vidkv;
  }
  return std::nullopt;
}

inline uint8_t code_of(CacheSettings::ValueMode m) {
  switch (m) {
    case CacheSettings::ValueMode::fp16: return 0;
    case CacheSettings::ValueMode::per_channel_2bit: return 1;
    case CacheSettings::ValueMode::per_channel_ternary: return 2;
    case CacheSettings::ValueMode::per_token_2bit: return 3;
  }
  return 0xFF;
}
inline std::optional<CacheSettings::ValueMode> value_mode_of(uint8_t c) {
  switch (c) {
    case 0: return CacheSettings::ValueMode::fp16;
    case 1: return CacheSettings::ValueMode::per_channel_2bit;
    case 2: return CacheSettings::ValueMode::per_channel_ternary;
    case 3: return CacheSettings::ValueMode::per_token_2bit;
  }
  return std::nullopt;
}

inline uint8_t code_of(ChannelScope s) { return s == ChannelScope::head ? 0 : s == ChannelScope::layer ? 1 : 0xFF; }
inline std::optional<ChannelScope> scope_of(uint8_t c) {
  if (c == 0) return ChannelScope::head;
  if (c == 1) return ChannelScope::layer;
  return std::nullopt;
}

inline uint8_t code_of(FftLayout f) { return f == FftLayout::half ? 0 : f == FftLayout::full ? 1 : 0xFF; }
inline std::optional<FftLayout> fft_of(uint8_t c) {
  if (c == 0) return FftLayout::half;
  if (c == 1) return FftLayout::full;
  return std::nullopt;
}

inline uint8_t code_of(TernaryScale t) { return t == TernaryScale::mean_abs ? 0 : t == TernaryScale::lsq ? 1 : 0xFF; }
inline std::optional<TernaryScale> ternary_of(uint8_t c) {
  if (c == 0) return TernaryScale::mean_abs;
  if (c == 1) return TernaryScale::lsq;
  return std::nullopt;
}

// Per-head policies (format version 3): how HEAD gives them, and each policy's number.
inline constexpr uint8_t kPoliciesNone = 0;    // every head takes the preset
inline constexpr uint8_t kPoliciesList = 1;    // an explicit list, [layers][kv_heads]
inline constexpr uint8_t kPoliciesScores = 2;  // head scores and a sparsity
inline constexpr uint64_t kScoreEntryBytes = 16;  // u32 layer, u32 head, f64 score

inline uint8_t code_of(HeadPolicy p) {
  switch (p) {
    case HeadPolicy::vidkv: return 0;
    case HeadPolicy::full: return 1;
    case HeadPolicy::window: return 2;
  }
  return 0xFF;
}
inline std::optional<HeadPolicy> policy_of(uint8_t c) {
  switch (c) {
    case 0: return HeadPolicy::vidkv;
    case 1: return HeadPolicy::full;
    case 2: return HeadPolicy::window;
  }
  return std::nullopt;
}

}  // namespace vidkv::cache_file
