// Bit accounting (bit_accounting.hpp). Every expected number is derived by hand in the comments.
#include <gtest/gtest.h>

#include "vidkv/bit_accounting.hpp"
#include "vidkv/error.hpp"

using namespace vidkv;

namespace {
// LLaVA-OneVision-like: 4 KV heads, 32 frames x 196 tokens = 6272 = 196 groups of 32, D = 128.
const TensorShape kShape{4, 6272, 128};
const double kValues = 4.0 * 6272 * 128;  // 3,211,264 quantized values
}  // namespace

// Preset k1.5-v1.58, compact:
//  keys, nbits 1.5: k = floor(128 * 0.5) = 64 anomalous, N = 64 normal channels.
//    anomalous: 2 code bits + (16-bit scale + 16-bit min) / 32 tokens = 2 + 1 = 3 bits per value;
//    normal (half spectrum: 64 streams for 64 channels): 1 code bit + 16 / 32 = 1.5 bits per value;
//    mean over the channels (64 each): (3 + 1.5) / 2 = 2.25 bits;
//    map: a 128-bit mask per head = 16 bytes x 4 heads = 512 bits -> 512 / 3,211,264 = 1.594e-4.
//  values, 1.58 base 3: per (head, group) ceil(128 * 32 / 5) = 820 bytes for 4096 trits
//    = 1.6015625 bits per value, + 16 / 32 = 0.5 for the scale -> 2.1015625 bits.
//  average over K and V: (2.2501594 + 2.1015625) / 2 = 2.1758609 <= 2.25.
TEST(BitAccounting, CompactPresetK15V158) {
  const KeySpec ks{1.5, 32, ChannelScope::head, FftLayout::half};
  const StorageBreakdown k = key_storage(ks, kShape, StorageFormat::compact);
  EXPECT_EQ(k.values, 3211264u);
  EXPECT_EQ(k.code_bytes, 4u * 64 * 6272 * 2 / 8 + 4u * 64 * 6272 / 8);  // 200704 + 200704 / 2
  EXPECT_EQ(k.scale_bytes, 4u * 64 * 196 * 2 * 2);                       // both parts, fp16
  EXPECT_EQ(k.min_bytes, 4u * 64 * 196 * 2);                             // anomalous only
  EXPECT_EQ(k.map_bytes, 64u);
  EXPECT_NEAR(k.bits_per_value(), 2.25 + 512.0 / kValues, 1e-12);

  const StorageBreakdown v =
      value_storage(ValueStorageSpec{QuantBits::b1_58, true, 32, 0}, kShape, StorageFormat::compact);
  EXPECT_EQ(v.code_bytes, 4u * 196 * 820);
  EXPECT_EQ(v.scale_bytes, 4u * 128 * 196 * 2);
  EXPECT_EQ(v.min_bytes, 0u);
  EXPECT_EQ(v.map_bytes, 0u);
  EXPECT_NEAR(v.bits_per_value(), 2.1015625, 1e-12);
  const double avg = (k.bits_per_value() + v.bits_per_value()) / 2;
  EXPECT_NEAR(avg, (2.25 + 512.0 / kValues + 2.1015625) / 2, 1e-12);
  EXPECT_LE(avg, 2.25);
}

// The same preset as the original stores it:
//  keys: anomalous 2 + 1 = 3 bits; normal: full spectrum, 128 streams for 64 channels, each stream
//    1 code bit + (scale + min) 32 / 32 = 2 bits per token -> 4 bits per value of the normal half;
//    mean (3 + 4) / 2 = 3.5; + 128 int64 indices = 8192 bits / 3,211,264 = 0.00255.
//  values: trits in 2-bit fields + scale + min = 2 + 1 = 3.0.
//  average: (3.50255 + 3.0) / 2 = 3.2513.
TEST(BitAccounting, OriginalPresetK15V158) {
  const KeySpec ks{1.5, 32, ChannelScope::layer, FftLayout::full};
  const StorageBreakdown k = key_storage(ks, kShape, StorageFormat::original);
  EXPECT_EQ(k.map_bytes, 1024u);
  EXPECT_NEAR(k.bits_per_value(), 3.5 + 8192.0 / kValues, 1e-12);
  const StorageBreakdown v =
      value_storage(ValueStorageSpec{QuantBits::b1_58, true, 32, 0}, kShape, StorageFormat::original);
  EXPECT_NEAR(v.bits_per_value(), 3.0, 1e-12);
  EXPECT_NEAR((k.bits_per_value() + v.bits_per_value()) / 2, (3.5 + 8192.0 / kValues + 3.0) / 2, 1e-12);
  // Compact storage with the full spectrum kept (fft full) still drops the 1-bit mins and the int64
  // indices, but pays for 128 streams:
  const StorageBreakdown full_compact =
      key_storage(KeySpec{1.5, 32, ChannelScope::layer, FftLayout::full}, kShape, StorageFormat::compact);
  // full compact: normal 128 streams x (1 + 0.5) = 3 bits per normal value -> (3 + 3) / 2 = 3.0, map 16 B.
  EXPECT_NEAR(full_compact.bits_per_value(), 3.0 + 128.0 / kValues, 1e-12);
}

// Other formats, by hand on a small shape: 2 heads, 64 tokens, D = 128 (16384 values).
TEST(BitAccounting, OtherFormats) {
  const TensorShape s{2, 64, 128};
  // 2-bit values: 2 + (16 + 16) / 32 = 3 bits, compact and original alike.
  EXPECT_DOUBLE_EQ(value_storage({QuantBits::b2, true, 32, 0}, s, StorageFormat::compact).bits_per_value(), 3.0);
  // 1.58 in 2-bit fields, compact: 2 + 0.5 = 2.5.
  EXPECT_DOUBLE_EQ(value_storage({QuantBits::b1_58, false, 32, 0}, s, StorageFormat::compact).bits_per_value(), 2.5);
  // STP, 32 protected tokens: 2-bit part 2 heads x 128 x 32 tokens x 3 bits = 24576 bits; trit part
  // 2 heads x 1 group x 820 bytes = 13120 bits + scales 2 x 128 x 1 x 16 = 4096 bits; token map
  // ceil(64 / 8) = 8 bytes = 64 bits. Total 41856 bits / 16384 values = 2.5546875.
  const StorageBreakdown stp = value_storage({QuantBits::b1_58, true, 32, 32}, s, StorageFormat::compact);
  EXPECT_EQ(stp.map_bytes, 8u);
  EXPECT_DOUBLE_EQ(stp.bits_per_value(), 41856.0 / 16384.0);
  // Original STP: 3 bits everywhere + 32 int64 token indices = 2048 bits: 3 + 2048 / 16384 = 3.125.
  EXPECT_DOUBLE_EQ(value_storage({QuantBits::b1_58, true, 32, 32}, s, StorageFormat::original).bits_per_value(),
                   3.125);
  // Keys nbits 2: plain 2-bit, no map: 3 bits. nbits 1: all 128 channels in the FFT path, half:
  // 1 + 0.5 = 1.5 bits, no map; original: full spectrum, 2 streams x 2 bits = 4 bits.
  EXPECT_DOUBLE_EQ(key_storage({2.0, 32, ChannelScope::head, FftLayout::half}, s, StorageFormat::compact).bits_per_value(), 3.0);
  EXPECT_DOUBLE_EQ(key_storage({1.0, 32, ChannelScope::head, FftLayout::half}, s, StorageFormat::compact).bits_per_value(), 1.5);
  EXPECT_DOUBLE_EQ(key_storage({1.0, 32, ChannelScope::head, FftLayout::half}, s, StorageFormat::original).bits_per_value(), 4.0);
  // nbits 1.25, scope layer: k = 32 -> (32 x 3 + 96 x 1.5) / 128 = 1.875 bits + one 16-byte map
  // = 128 bits / 16384 = 0.0078125.
  EXPECT_DOUBLE_EQ(key_storage({1.25, 32, ChannelScope::layer, FftLayout::half}, s, StorageFormat::compact).bits_per_value(),
                   1.875 + 0.0078125);
}

TEST(BitAccounting, RejectsBadSpecs) {
  const TensorShape s{2, 64, 128};
  EXPECT_THROW(value_storage({QuantBits::b1_58, true, 32, 48}, s, StorageFormat::compact), Error);  // not a group
  EXPECT_THROW(value_storage({QuantBits::b1_58, true, 32, 96}, s, StorageFormat::compact), Error);  // > tokens
  EXPECT_THROW(value_storage({QuantBits::b2, true, 32, 32}, s, StorageFormat::compact), Error);     // STP on 2-bit
  EXPECT_THROW(value_storage({QuantBits::b4, true, 32, 0}, s, StorageFormat::compact), Error);
  EXPECT_THROW(key_storage({2.5, 32, ChannelScope::head, FftLayout::half}, s, StorageFormat::compact), Error);
  EXPECT_THROW(key_storage({1.5, 32, ChannelScope::head, FftLayout::half}, TensorShape{2, 40, 128},
                           StorageFormat::compact), Error);
}
