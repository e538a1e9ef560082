// Trits 5 per byte (ternary_pack.hpp): every digit tuple round-trips, the byte formula, and
// packing of whole 1.58-bit tensors.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "vidkv/error.hpp"
#include "vidkv/fp16.hpp"
#include "vidkv/ternary_pack.hpp"

using namespace vidkv;

TEST(TernaryPack, EveryDigitTupleRoundTrips) {
  std::set<uint8_t> bytes;
  for (uint32_t v = 0; v < 243; ++v) {
    uint8_t d[5];
    uint32_t rest = v;
    for (int i = 4; i >= 0; --i) d[i] = uint8_t(rest % 3), rest /= 3;  // d_0 is the most significant
    const uint8_t b = pack_trit_byte(d);
    EXPECT_EQ(uint32_t(b), (256 * v + 242) / 243) << "v " << v;  // b = ceil(256 v / 243)
    bytes.insert(b);
    for (uint32_t i = 0; i < 5; ++i) EXPECT_EQ(trit_digit(b, i), d[i]) << "v " << v << " digit " << i;
  }
  EXPECT_EQ(bytes.size(), 243u);  // 243 distinct bytes
}

TEST(TernaryPack, ByteFormulaByHand) {
  const uint8_t zeros[5] = {0, 0, 0, 0, 0}, twos[5] = {2, 2, 2, 2, 2};
  const uint8_t last[5] = {0, 0, 0, 0, 1}, first[5] = {1, 0, 0, 0, 0};
  EXPECT_EQ(pack_trit_byte(zeros), 0);
  EXPECT_EQ(pack_trit_byte(twos), 255);  // v = 242: ceil(61952 / 243) = ceil(254.95)
  EXPECT_EQ(pack_trit_byte(last), 2);    // v = 1: ceil(256 / 243)
  EXPECT_EQ(pack_trit_byte(first), 86);  // v = 81: ceil(85.33)
  // Digit 0 of byte 86: (86 * 3) >> 8 = 258 >> 8 = 1; digit 1: ((86 * 3) mod 256) * 3 >> 8 = 6 >> 8 = 0.
  EXPECT_EQ(trit_digit(86, 0), 1);
  EXPECT_EQ(trit_digit(86, 1), 0);
  const uint8_t bad[5] = {0, 3, 0, 0, 0};
  EXPECT_THROW(pack_trit_byte(bad), Error);
  EXPECT_THROW(trit_digit(0, 5), Error);
}

TEST(TernaryPack, Sizes) {
  EXPECT_EQ(trit_block_bytes(128, 32), 820u);  // 4096 trits / 5 = 819.2
  EXPECT_EQ(trit_block_bytes(10, 32), 64u);    // 320 / 5 exactly
  EXPECT_EQ(trit_packed_bytes(TensorShape{4, 6272, 128}, 32), 4u * 196u * 820u);
  EXPECT_THROW(trit_packed_bytes(TensorShape{1, 40, 128}, 32), Error);
}

TEST(TernaryPack, TensorsRoundTripAndFollowTheBlockLayout) {
  const TensorShape shape{3, 64, 126};  // 126 * 32 = 4032 trits: 806.4, the last byte padded
  std::mt19937 rng(7);
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::vector<uint16_t> x(shape.elements());
  for (auto& v : x) v = fp16::from_float(n(rng));
  const QuantSpec spec{QuantBits::b1_58, QuantAxis::channel, 32, TernaryScale::mean_abs};
  const QuantizedTensor q = reference::quantize(spec, shape, x.data(), TensorLayout::htd(shape));
  const std::vector<uint8_t> packed = reference::pack_trits(q);
  const uint64_t block = 807;
  ASSERT_EQ(packed.size(), 3u * 2u * block);
  // Trit index c * group_size + t of block (h, g), read with trit_digit, against code_at.
  size_t checked = 0;
  for (uint32_t h = 0; h < shape.heads; ++h)
    for (uint32_t t = 0; t < shape.tokens; ++t)
      for (uint32_t c = 0; c < shape.dim; ++c) {
        const uint64_t idx = uint64_t(c) * 32 + t % 32;
        const uint8_t byte = packed[(uint64_t(h) * 2 + t / 32) * block + idx / 5];
        ASSERT_EQ(int(trit_digit(byte, uint32_t(idx % 5))), reference::code_at(q, h, t, c) + 1);
        ++checked;
      }
  EXPECT_EQ(checked, shape.elements());
  EXPECT_EQ(reference::unpack_trits(packed, spec, shape), q.codes);
  EXPECT_THROW(reference::unpack_trits(std::vector<uint8_t>(10), spec, shape), Error);
  // Only 1.58-bit per-channel codes pack; a field holding 3 is corrupt.
  QuantizedTensor two = q;
  two.spec.bits = QuantBits::b2;
  EXPECT_THROW(reference::pack_trits(two), Error);
  QuantizedTensor bad = q;
  bad.codes[5] |= 3u;
  try {
    reference::pack_trits(bad);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::corrupt_data);
  }
}
