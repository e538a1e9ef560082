// VidKV's mixed-precision keys, CPU reference (vidkv_keys.hpp): counts, ranges, selection, the
// DFT and its layouts against hand-computed spectra, exact round trips, empty parts, errors.
#include <gtest/gtest.h>

#include <random>

#include "vidkv/error.hpp"
#include "vidkv/fp16.hpp"
#include "vidkv/vidkv_keys.hpp"

using namespace vidkv;
using fp16::from_float;
using fp16::to_float;

TEST(KeysReference, CountsAndNames) {
  const auto k = [](double nbits) { return anomalous_channel_count(KeySpec{nbits}, 128); };
  EXPECT_EQ(k(1.5), 64u);
  EXPECT_EQ(k(1.25), 32u);
  EXPECT_EQ(k(1.75), 96u);
  EXPECT_EQ(k(1.0), 0u);
  EXPECT_EQ(k(2.0), 128u);
  EXPECT_EQ(k(1.3), 38u);  // floor(38.4)
  // 6 * (4/3 - 1) is 1.9999999999999996 in double: the guard makes it 2.
  EXPECT_EQ(anomalous_channel_count(KeySpec{4.0 / 3.0}, 6), 2u);
  for (double bad : {0.9, 2.1, double(NAN)}) {
    try {
      anomalous_channel_count(KeySpec{bad}, 128);
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::unsupported_bits);
    }
  }
  EXPECT_EQ(coefficient_streams(FftLayout::half, 64), 64u);
  EXPECT_EQ(coefficient_streams(FftLayout::full, 64), 128u);
  EXPECT_EQ(coefficient_streams(FftLayout::half, 0), 0u);
  EXPECT_STREQ(channel_scope_name(ChannelScope::layer), "layer");
  EXPECT_STREQ(fft_layout_name(FftLayout::half), "half");
  // k = floor(128 / 128) = 1: an odd split is accepted (127 normal channels go through the FFT).
  EXPECT_NO_THROW(validate(KeySpec{1.0078125}, TensorShape{1, 32, 128}));
  EXPECT_EQ(anomalous_channel_count(KeySpec{1.0078125}, 128), 1u);
  EXPECT_THROW(validate(KeySpec{1.5}, TensorShape{1, 40, 128}), Error);  // tokens not whole groups
}

TEST(KeysReference, RangesBySignedOrderAndScope) {
  // 2 heads x 3 tokens x 2 channels, htd. Channel 0: head 0 {1, -2, 0.5}, head 1 {4, 4, 4}.
  // Channel 1: signed zeros only.
  const TensorShape s{2, 3, 2};
  const std::vector<float> v{1, 0, -2, -0.0f, 0.5f, 0, 4, -0.0f, 4, 0, 4, -0.0f};
  std::vector<uint16_t> x;
  for (float f : v) x.push_back(from_float(f));
  const auto head = reference::channel_ranges(s, x.data(), TensorLayout::htd(s), ChannelScope::head);
  ASSERT_EQ(head.size(), 4u);
  EXPECT_EQ(to_float(head[0]), 3.0f);  // 1 - (-2)
  EXPECT_EQ(head[1], 0x0000u);         // +0 - (-0) = +0
  EXPECT_EQ(to_float(head[2]), 0.0f);  // constant channel
  const auto layer = reference::channel_ranges(s, x.data(), TensorLayout::htd(s), ChannelScope::layer);
  ASSERT_EQ(layer.size(), 2u);
  EXPECT_EQ(to_float(layer[0]), 6.0f);  // 4 - (-2) over both heads
  x[1] = 0x7e00u;                       // NaN
  EXPECT_THROW(reference::channel_ranges(s, x.data(), TensorLayout::htd(s), ChannelScope::head), Error);
}

TEST(KeysReference, SelectionTiesToLowerIndex) {
  const auto r = [](std::vector<float> f) {
    std::vector<uint16_t> h;
    for (float v : f) h.push_back(from_float(v));
    return h;
  };
  auto s = reference::select_channels(r({1, 3, 3, 2}), 4, 1, ChannelScope::head, 2);
  EXPECT_EQ(s[0].anomalous, (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(s[0].normal, (std::vector<uint32_t>{0, 3}));
  s = reference::select_channels(r({3, 1, 3, 3}), 4, 1, ChannelScope::head, 2);
  EXPECT_EQ(s[0].anomalous, (std::vector<uint32_t>{0, 2}));
  // Scope head: per head; scope layer: one range row shared by all heads.
  s = reference::select_channels(r({9, 1, 1, 1, 1, 1, 1, 9}), 4, 2, ChannelScope::head, 1);
  EXPECT_EQ(s[0].anomalous, (std::vector<uint32_t>{0}));
  EXPECT_EQ(s[1].anomalous, (std::vector<uint32_t>{3}));
  s = reference::select_channels(r({1, 1, 9, 1}), 4, 2, ChannelScope::layer, 1);
  EXPECT_EQ(s[1].anomalous, (std::vector<uint32_t>{2}));
  EXPECT_EQ(s[1].normal, (std::vector<uint32_t>{0, 1, 3}));
  EXPECT_THROW(reference::select_channels(r({1, 2, 3}), 4, 1, ChannelScope::head, 1), Error);
}

namespace {
// 1 head x 32 tokens x 6 channels; anomalous {0, 3} hold 7 and -5, normal {1, 2, 4, 5} hold
// (1, 2, 3, 4) in every token, so every coefficient stream is constant along the tokens.
struct SmallKeys {
  TensorShape shape{1, 32, 6};
  std::vector<uint16_t> x;
  std::vector<ChannelSplit> split{ChannelSplit{{0, 3}, {1, 2, 4, 5}}};
  SmallKeys() {
    const float row[6] = {7, 1, 2, -5, 3, 4};
    for (uint32_t t = 0; t < 32; ++t)
      for (float v : row) x.push_back(from_float(v));
  }
};
}  // namespace

// DFT of (1, 2, 3, 4): X0 = 10, X1 = -2 + 2i, X2 = -2, X3 = -2 - 2i.
TEST(KeysReference, CoefficientLayoutsByHand) {
  SmallKeys k;
  const TensorLayout l = TensorLayout::htd(k.shape);
  KeySpec spec{4.0 / 3.0, 32, ChannelScope::head, FftLayout::half};
  const auto half = reference::key_coefficients(spec, k.shape, k.x.data(), l, k.split);
  ASSERT_EQ(half.size(), 32u * 4);
  const float want_half[4] = {10, -2, 2, -2};  // Re X0, Re X1, Im X1, Re X2
  for (uint32_t t = 0; t < 32; ++t)
    for (int i = 0; i < 4; ++i) EXPECT_EQ(to_float(half[t * 4 + i]), want_half[i]) << t << " " << i;
  spec.fft = FftLayout::full;
  const auto full = reference::key_coefficients(spec, k.shape, k.x.data(), l, k.split);
  ASSERT_EQ(full.size(), 32u * 8);
  const float want_full[8] = {10, 0, -2, 2, -2, 0, -2, -2};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(to_float(full[i]), want_full[i]) << i;
}

// Constant streams quantize at 1 bit without loss (scale = |X|, code = sign), constant anomalous
// channels decode their min, so decoding must give the input back bit for bit in both layouts.
TEST(KeysReference, ConstantStreamsRoundTripExactly) {
  SmallKeys k;
  const TensorLayout l = TensorLayout::htd(k.shape);
  for (FftLayout fft : {FftLayout::half, FftLayout::full}) {
    const KeySpec spec{4.0 / 3.0, 32, ChannelScope::head, fft};
    // Every range is 0 here, so the selection's ties go to the lowest indices.
    EXPECT_EQ(reference::quantize_keys(spec, k.shape, k.x.data(), l).splits[0].anomalous,
              (std::vector<uint32_t>{0, 1}));
    const QuantizedKeys q = reference::quantize_keys_with(
        spec, k.shape, k.x.data(), l, k.split, reference::key_coefficients(spec, k.shape, k.x.data(), l, k.split));
    EXPECT_EQ(q.normal.shape.dim, fft == FftLayout::half ? 4u : 8u);
    EXPECT_EQ(to_float(q.normal.scales[0]), 10.0f);
    EXPECT_EQ(reference::dequantize_keys(q, l), k.x) << fft_layout_name(fft);
  }
}

TEST(KeysReference, EmptyPartsAtNbitsOneAndTwo) {
  const TensorShape s{2, 64, 16};
  std::mt19937 rng(3);
  std::normal_distribution<float> n(0.0f, 2.0f);
  std::vector<uint16_t> x(s.elements());
  for (auto& v : x) v = from_float(n(rng));
  const TensorLayout l = TensorLayout::htd(s);
  // nbits 2: no streams; the keys are plain per-channel 2-bit, identical to reference::quantize.
  const QuantizedKeys two = reference::quantize_keys(KeySpec{2.0}, s, x.data(), l);
  EXPECT_EQ(two.normal.shape.dim, 0u);
  EXPECT_TRUE(two.normal.codes.empty());
  EXPECT_TRUE(two.coefficients.empty());
  const QuantizedTensor plain = reference::quantize(QuantSpec{QuantBits::b2}, s, x.data(), l);
  EXPECT_EQ(two.anomalous.codes, plain.codes);
  EXPECT_EQ(reference::dequantize_keys(two, l), reference::dequantize(plain, l));
  // nbits 1: no anomalous channels; every channel decodes from the spectrum.
  const QuantizedKeys one = reference::quantize_keys(KeySpec{1.0}, s, x.data(), l);
  EXPECT_EQ(one.anomalous.shape.dim, 0u);
  EXPECT_TRUE(one.anomalous.scales.empty());
  EXPECT_EQ(one.normal.shape.dim, 16u);
  EXPECT_EQ(one.splits[1].normal.size(), 16u);
  const auto y = reference::dequantize_keys(one, l);
  ASSERT_EQ(y.size(), x.size());
  double err = 0, ref = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double d = double(to_float(y[i])) - to_float(x[i]);
    err += d * d, ref += double(to_float(x[i])) * to_float(x[i]);
  }
  // 1 bit on Gaussian coefficients keeps sqrt(2/pi) of the energy: error sqrt(1 - 2/pi) = 0.60.
  EXPECT_NEAR(std::sqrt(err / ref), 0.60, 0.05);
}

TEST(KeysReference, ScopeHeadChoosesPerHeadAndArgumentsAreChecked) {
  const TensorShape s{2, 32, 8};
  std::vector<uint16_t> x(s.elements(), from_float(0.0f));
  for (uint32_t t = 0; t < 32; ++t) {
    x[(0 * 32 + t) * 8 + 1] = from_float(t % 2 ? 50.0f : -50.0f);  // head 0: channel 1 wide
    x[(1 * 32 + t) * 8 + 6] = from_float(t % 2 ? 20.0f : -20.0f);  // head 1: channel 6 wide
    x[(0 * 32 + t) * 8 + 5] = x[(1 * 32 + t) * 8 + 2] = from_float(float(t % 3));
  }
  const TensorLayout l = TensorLayout::htd(s);
  const QuantizedKeys h = reference::quantize_keys(KeySpec{1.25, 32, ChannelScope::head}, s, x.data(), l);
  EXPECT_EQ(h.splits[0].anomalous, (std::vector<uint32_t>{1, 5}));
  EXPECT_EQ(h.splits[1].anomalous, (std::vector<uint32_t>{2, 6}));
  EXPECT_EQ(h.ranges.size(), 16u);
  const QuantizedKeys g = reference::quantize_keys(KeySpec{1.25, 32, ChannelScope::layer}, s, x.data(), l);
  EXPECT_EQ(g.splits[0].anomalous, (std::vector<uint32_t>{1, 6}));  // ranges 100 and 40 over both heads
  EXPECT_EQ(g.splits[1].anomalous, g.splits[0].anomalous);
  EXPECT_EQ(g.ranges.size(), 8u);
  const auto coeffs = reference::key_coefficients(h.spec, s, x.data(), l, h.splits);
  EXPECT_EQ(coeffs, h.coefficients);
  EXPECT_THROW(reference::quantize_keys_with(h.spec, s, x.data(), l, h.splits, std::vector<uint16_t>(5)), Error);
  EXPECT_THROW(reference::quantize_keys_with(h.spec, s, x.data(), l, {h.splits[0]}, coeffs), Error);
  auto bad = h.splits;
  bad[0].normal[0] = 1;  // channel 1 twice
  EXPECT_THROW(reference::quantize_keys_with(h.spec, s, x.data(), l, bad, coeffs), Error);
  // Per-head splits are not accepted with scope layer.
  EXPECT_THROW(reference::quantize_keys_with(g.spec, s, x.data(), l, h.splits, coeffs), Error);
}
