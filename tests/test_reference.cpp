// The CPU reference quantizer on small cases whose codes, scales and decodings can be checked by
// hand, plus properties on random data.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "vidkv/error.hpp"
#include "vidkv/fp16.hpp"
#include "vidkv/reference.hpp"

using namespace vidkv;
using fp16::from_float;
using fp16::to_float;

namespace {

QuantSpec make_spec(QuantBits b, QuantAxis a = QuantAxis::channel,
                    TernaryScale ts = TernaryScale::mean_abs) {
  QuantSpec s;
  s.bits = b, s.axis = a, s.ternary_scale = ts;
  return s;
}

// One head, 32 tokens, 2 channels in htd layout; channel 0 holds `c0`, channel 1 holds `c1`.
std::vector<uint16_t> two_channels(const std::vector<float>& c0, const std::vector<float>& c1) {
  std::vector<uint16_t> x(64);
  for (int t = 0; t < 32; ++t) x[t * 2] = from_float(c0[t]), x[t * 2 + 1] = from_float(c1[t]);
  return x;
}

std::vector<float> pattern(const std::function<float(int)>& f, int n = 32) {
  std::vector<float> v(n);
  for (int i = 0; i < n; ++i) v[i] = f(i);
  return v;
}

const TensorShape kSmall{1, 32, 2};

QuantizedTensor quantize_small(const QuantSpec& s, const std::vector<uint16_t>& x) {
  return reference::quantize(s, kSmall, x.data(), TensorLayout::htd(kSmall));
}

float decoded(const QuantizedTensor& q, uint32_t t, uint32_t d) {
  return to_float(reference::dequantize(q, TensorLayout::htd(q.shape))[t * q.shape.dim + d]);
}

std::vector<float> random_normal(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist;
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Root-mean-square error of quantize + dequantize on fp16 data in htd layout.
double rmse(const QuantSpec& s, const TensorShape& shape, const std::vector<uint16_t>& x) {
  const auto layout = TensorLayout::htd(shape);
  const auto y = reference::dequantize(reference::quantize(s, shape, x.data(), layout), layout);
  double sum = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double d = double(to_float(x[i])) - to_float(y[i]);
    sum += d * d;
  }
  return std::sqrt(sum / double(x.size()));
}

}  // namespace

TEST(Reference, TwoBitHandChecked) {
  // Channel 0: 0,1,2,3,...: mn 0, s = half(3 * (1/3)) = 1, codes = values.
  // Channel 1: -1, 0.5 alternating: mn -1, s = half(1.5/3) = 0.5, codes 0, 3.
  const auto q = quantize_small(make_spec(QuantBits::b2),
                                two_channels(pattern([](int t) { return float(t % 4); }),
                                             pattern([](int t) { return t % 2 ? 0.5f : -1.0f; })));
  ASSERT_EQ(q.codes.size(), 4u);  // 2 rows x 2 words
  EXPECT_EQ(q.codes[0], 0xe4e4e4e4u);  // fields 0,1,2,3 from the lowest bits up
  EXPECT_EQ(q.codes[1], 0xe4e4e4e4u);
  EXPECT_EQ(q.codes[2], 0xccccccccu);  // fields 0,3,0,3
  EXPECT_EQ(q.codes[3], 0xccccccccu);
  EXPECT_EQ(q.scales, (std::vector<uint16_t>{0x3c00, 0x3800}));  // 1.0, 0.5
  EXPECT_EQ(q.mins, (std::vector<uint16_t>{0x0000, 0xbc00}));    // 0, -1
  for (uint32_t t = 0; t < 32; ++t) {
    EXPECT_EQ(decoded(q, t, 0), float(t % 4));
    EXPECT_EQ(decoded(q, t, 1), t % 2 ? 0.5f : -1.0f);
  }
}

TEST(Reference, TwoBitRoundsHalfToEven) {
  // mn 0, mx 3, s 1: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, 2.49 -> 2, 0.51 -> 1.
  const std::vector<float> c0 = {0, 3, 0.5f, 1.5f, 2.5f, 2.49f, 0.51f, 1, 0, 0, 0, 0, 0, 0, 0, 0,
                                 0, 0, 0,    0,    0,    0,     0,     0, 0, 0, 0, 0, 0, 0, 0, 0};
  const auto q = quantize_small(make_spec(QuantBits::b2), two_channels(c0, c0));
  const int want[] = {0, 3, 0, 2, 2, 2, 1, 1};
  for (uint32_t t = 0; t < 8; ++t) EXPECT_EQ(reference::code_at(q, 0, t, 0), want[t]) << t;
}

TEST(Reference, FourAndEightBitHandChecked) {
  const auto q4 = quantize_small(make_spec(QuantBits::b4),
                                 two_channels(pattern([](int t) { return float(t % 16); }),
                                              pattern([](int t) { return float(15 - t % 16); })));
  ASSERT_EQ(q4.codes.size(), 8u);  // 2 rows x 4 words of 8 fields
  EXPECT_EQ(q4.codes[0], 0x76543210u);
  EXPECT_EQ(q4.codes[1], 0xfedcba98u);
  EXPECT_EQ(q4.codes[4], 0x89abcdefu);
  EXPECT_EQ(q4.scales[0], 0x3c00);  // half(15 * (1/15)) = 1
  // 8 bit: tokens 0..30 hold their index, token 31 holds 255; s = 1, codes = values.
  const auto q8 = quantize_small(make_spec(QuantBits::b8),
                                 two_channels(pattern([](int t) { return t == 31 ? 255.f : t; }),
                                              pattern([](int t) { return -0.25f * t; })));
  ASSERT_EQ(q8.codes.size(), 16u);
  EXPECT_EQ(q8.codes[0], 0x03020100u);
  EXPECT_EQ(q8.codes[7], 0xff1e1d1cu);
  EXPECT_EQ(q8.scales[0], 0x3c00);
  EXPECT_EQ(q8.mins[1], from_float(-7.75f));
  for (uint32_t t = 0; t < 32; ++t) EXPECT_EQ(decoded(q8, t, 0), t == 31 ? 255.f : float(t));
}

TEST(Reference, OneBitHandChecked) {
  // +2 at even tokens, -1 at odd ones (token 1 is -0): mean|x| = (16*2 + 15*1 + 0) / 32.
  const auto c0 = pattern([](int t) { return t == 1 ? -0.0f : (t % 2 ? -1.0f : 2.0f); });
  const auto q = quantize_small(make_spec(QuantBits::b1), two_channels(c0, c0));
  ASSERT_EQ(q.codes.size(), 2u);
  EXPECT_EQ(q.codes[0], 0x55555557u);  // even tokens 1, odd 0, but -0 (token 1) gives 1
  const float s = 47.0f / 32.0f;       // 1.46875, exact in half
  EXPECT_EQ(q.scales[0], from_float(s));
  EXPECT_EQ(q.mins[0], 0x0000);
  EXPECT_EQ(decoded(q, 0, 0), s);
  EXPECT_EQ(decoded(q, 1, 0), s);   // -0 decodes as positive
  EXPECT_EQ(decoded(q, 3, 0), -s);  // the paper's (2q - 1) * s, not the original's 0
}

TEST(Reference, TernaryHandCheckedBothScales) {
  // Per 4 tokens: 2, -2, 0.25, 0.25: mean|x| = 1.125, threshold 0.5625.
  const auto c0 = pattern([](int t) { return t % 4 == 0 ? 2.0f : t % 4 == 1 ? -2.0f : 0.25f; });
  // 4 x 6, 8 x 0.5, 8 x -0.5, 12 x 0: mean 1, threshold exactly 0.5, so +-0.5 give code 0.
  const auto c1 = pattern([](int t) { return t < 4 ? 6.0f : t < 12 ? 0.5f : t < 20 ? -0.5f : 0; });
  const auto x = two_channels(c0, c1);
  const auto qm = quantize_small(make_spec(QuantBits::b1_58), x);
  EXPECT_EQ(qm.codes[0], 0x52525252u);  // fields code + 1 = 2, 0, 1, 1
  EXPECT_EQ(qm.scales[0], from_float(1.125f));
  EXPECT_EQ(qm.mins[0], 0xbc00);  // -1, as the original stores
  EXPECT_EQ(decoded(qm, 0, 0), 1.125f);
  EXPECT_EQ(decoded(qm, 1, 0), -1.125f);
  EXPECT_EQ(decoded(qm, 2, 0), 0.0f);
  for (uint32_t t = 0; t < 32; ++t) EXPECT_EQ(reference::code_at(qm, 0, t, 1), t < 4 ? 1 : 0);
  EXPECT_EQ(qm.scales[1], 0x3c00);
  // lsq: mean|x| over the nonzero codes: 2 for channel 0, 6 for channel 1.
  const auto ql = quantize_small(make_spec(QuantBits::b1_58, QuantAxis::channel,
                                           TernaryScale::lsq), x);
  EXPECT_EQ(ql.codes, qm.codes);
  EXPECT_EQ(ql.scales, (std::vector<uint16_t>{from_float(2.0f), from_float(6.0f)}));
  EXPECT_EQ(decoded(ql, 1, 0), -2.0f);
  EXPECT_EQ(decoded(ql, 3, 1), 6.0f);
}

TEST(Reference, ConstantGroupsDecodeToTheirValue) {
  for (float v : {1.5f, -3.0f, 0.0f, -0.0f, 1e-7f, 60000.0f}) {
    for (QuantBits b : {QuantBits::b1, QuantBits::b1_58, QuantBits::b2, QuantBits::b4,
                        QuantBits::b8}) {
      for (TernaryScale ts : {TernaryScale::mean_abs, TernaryScale::lsq}) {
        const auto c = pattern([&](int) { return v; });
        const auto q = quantize_small(make_spec(b, QuantAxis::channel, ts), two_channels(c, c));
        const float want = to_float(from_float(v));
        for (uint32_t t = 0; t < 32; ++t) {
          const float got = decoded(q, t, 0);
          EXPECT_TRUE(std::isfinite(got)) << bits_name(b) << " " << v;
          EXPECT_EQ(got, want) << bits_name(b) << " value " << v << " token " << t;
        }
        if (max_code(b) != 0) {
          EXPECT_EQ(q.scales[0] & 0x7fff, 0) << "s = 0 for a constant group";
          EXPECT_EQ(reference::code_at(q, 0, 5, 0), 0);
        }
      }
    }
  }
}

TEST(Reference, SignedZerosPickMinusZeroAsMin) {
  // A group of +0 and -0: min is -0 (ordered below +0), s = 0, decodes to zero, never NaN.
  const auto c0 = pattern([](int t) { return t % 3 ? 0.0f : -0.0f; });
  const auto q = quantize_small(make_spec(QuantBits::b2), two_channels(c0, c0));
  EXPECT_EQ(q.mins[0], 0x8000);
  EXPECT_EQ(q.scales[0], 0x0000);
  for (uint32_t t = 0; t < 32; ++t) EXPECT_EQ(decoded(q, t, 0), 0.0f);
}

TEST(Reference, Fp32InputEqualsFp16Input) {
  const TensorShape shape{2, 64, 16};
  const auto layout = TensorLayout::thd(shape);
  auto f = random_normal(shape.elements(), 5);
  std::vector<uint16_t> h(f.size());
  for (size_t i = 0; i < f.size(); ++i) h[i] = from_float(f[i]);
  for (QuantBits b : {QuantBits::b1, QuantBits::b1_58, QuantBits::b2, QuantBits::b4,
                      QuantBits::b8}) {
    const auto a = reference::quantize(make_spec(b), shape, h.data(), layout);
    const auto c = reference::quantize(make_spec(b), shape, f.data(), layout);  // rounds first
    EXPECT_EQ(a.codes, c.codes) << bits_name(b);
    EXPECT_EQ(a.scales, c.scales) << bits_name(b);
    std::vector<float> exact(f.size());
    for (size_t i = 0; i < f.size(); ++i) exact[i] = to_float(h[i]);
    const auto e = reference::quantize(make_spec(b), shape, exact.data(), layout);
    EXPECT_EQ(a.codes, e.codes) << bits_name(b);
    EXPECT_EQ(a.mins, e.mins) << bits_name(b);
  }
}

TEST(Reference, RejectsNonFiniteInputNamingThePosition) {
  const TensorShape shape{2, 32, 4};
  const auto layout = TensorLayout::htd(shape);
  const size_t at = 1 * 32 * 4 + 5 * 4 + 3;  // head 1, token 5, channel 3
  for (uint16_t bad : {uint16_t(0x7e00), uint16_t(0x7c00), uint16_t(0xfc00)}) {
    std::vector<uint16_t> x(shape.elements(), from_float(0.5f));
    x[at] = bad;
    try {
      reference::quantize(make_spec(QuantBits::b2), shape, x.data(), layout);
      ADD_FAILURE() << "accepted a non-finite value";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
      EXPECT_NE(std::string(e.what()).find("(head 1, token 5, channel 3)"), std::string::npos)
          << e.what();
    }
  }
  for (float bad : {NAN, INFINITY, 1e6f}) {  // 1e6 is finite but overflows fp16
    std::vector<float> x(shape.elements(), 0.5f);
    x[at] = bad;
    EXPECT_THROW(reference::quantize(make_spec(QuantBits::b1), shape, x.data(), layout), Error);
  }
  // A group whose largest code would decode past the fp16 range is refused rather than giving inf.
  std::vector<uint16_t> x(shape.elements(), 0);
  x[at] = from_float(65504.0f);
  EXPECT_THROW(reference::quantize(make_spec(QuantBits::b2), shape, x.data(), layout), Error);
  x[at] = from_float(60000.0f);
  EXPECT_NO_THROW(reference::quantize(make_spec(QuantBits::b2), shape, x.data(), layout));
}

TEST(Reference, ErrorDecreasesWithBits) {
  const TensorShape shape{2, 128, 16};
  const auto f = random_normal(shape.elements(), 42);
  std::vector<uint16_t> x(f.size());
  for (size_t i = 0; i < f.size(); ++i) x[i] = from_float(f[i]);
  double prev = 1e9;
  for (QuantBits b : {QuantBits::b1, QuantBits::b1_58, QuantBits::b2, QuantBits::b4,
                      QuantBits::b8}) {
    const double e = rmse(make_spec(b), shape, x);
    EXPECT_LT(e, prev) << bits_name(b);
    prev = e;
  }
  EXPECT_LT(prev, 0.02);  // 8 bit on N(0,1): steps of about 6/255
  // The least-squares ternary scale beats mean|x| on Gaussian data (DESIGN section 2).
  EXPECT_LT(rmse(make_spec(QuantBits::b1_58, QuantAxis::channel, TernaryScale::lsq), shape, x),
            rmse(make_spec(QuantBits::b1_58), shape, x));
}

TEST(Reference, PerTokenLayout) {
  // 1 head, 2 tokens, 64 channels: token 0 holds c % 4, token 1 holds 8 - 2 * (c % 4) (+8 in the
  // second group): groups run along channels, one row per token.
  const TensorShape shape{1, 2, 64};
  std::vector<uint16_t> x(128);
  for (int c = 0; c < 64; ++c) {
    x[c] = from_float(float(c % 4));
    x[64 + c] = from_float(8.0f - 2.0f * float(c % 4) + (c >= 32 ? 8.0f : 0.0f));
  }
  const auto q = reference::quantize(make_spec(QuantBits::b2, QuantAxis::token), shape, x.data(),
                                     TensorLayout::htd(shape));
  ASSERT_EQ(q.codes.size(), 8u);   // 2 rows x 4 words
  ASSERT_EQ(q.scales.size(), 4u);  // 2 rows x 2 groups
  for (int w = 0; w < 4; ++w) EXPECT_EQ(q.codes[w], 0xe4e4e4e4u) << w;
  for (int w = 4; w < 8; ++w) EXPECT_EQ(q.codes[w], 0x1b1b1b1bu) << w;  // fields 3,2,1,0
  EXPECT_EQ(q.scales, (std::vector<uint16_t>{0x3c00, 0x3c00, 0x4000, 0x4000}));  // 1, 1, 2, 2
  EXPECT_EQ(q.mins, (std::vector<uint16_t>{0, 0, from_float(2.0f), from_float(10.0f)}));
  const auto y = reference::dequantize(q, TensorLayout::htd(shape));
  EXPECT_EQ(y, x);
  EXPECT_EQ(reference::code_at(q, 0, 1, 33), 2);
}

TEST(Reference, CodeAtMatchesThePackedLayoutAndLayoutsAgree) {
  const TensorShape shape{3, 64, 8};
  const auto f = random_normal(shape.elements(), 9);
  for (QuantBits b : {QuantBits::b1, QuantBits::b1_58, QuantBits::b2, QuantBits::b4,
                      QuantBits::b8}) {
    for (QuantAxis a : {QuantAxis::channel, QuantAxis::token}) {
      if (a == QuantAxis::token && max_code(b) == 0) continue;
      const TensorShape s = a == QuantAxis::channel ? shape : TensorShape{3, 8, 64};
      // The same logical tensor in thd and in a padded strided layout.
      const TensorLayout thd = TensorLayout::thd(s), padded{s.tokens * (s.dim + 6) + 3, s.dim + 6};
      std::vector<float> x1(thd.span(s)), x2(padded.span(s), 0.0f);
      for (uint32_t h = 0; h < s.heads; ++h)
        for (uint32_t t = 0; t < s.tokens; ++t)
          for (uint32_t d = 0; d < s.dim; ++d) {
            const float v = f[(h * s.tokens + t) * s.dim + d];
            x1[h * thd.head_stride + t * thd.token_stride + d] = v;
            x2[h * padded.head_stride + t * padded.token_stride + d] = v;
          }
      const auto q1 = reference::quantize(make_spec(b, a), s, x1.data(), thd);
      const auto q2 = reference::quantize(make_spec(b, a), s, x2.data(), padded);
      EXPECT_EQ(q1.codes, q2.codes);
      EXPECT_EQ(q1.scales, q2.scales);
      const auto y = reference::dequantize(q2, padded);
      const PackedSizes p = packed_sizes(q1.spec, s);
      const bool ch = a == QuantAxis::channel;
      for (uint32_t h = 0; h < s.heads; ++h)
        for (uint32_t t = 0; t < s.tokens; ++t)
          for (uint32_t d = 0; d < s.dim; ++d) {
            // The header's layout: row (h, c) / (h, t), position k in word k / fpi.
            const uint64_t row = ch ? h * s.dim + d : h * s.tokens + t;
            const uint32_t k = ch ? t : d;
            const uint32_t word = q1.codes[row * p.words_per_row + k / p.fields_per_word];
            const int32_t field = int32_t((word >> (k % p.fields_per_word * p.field_bits)) &
                                          ((1u << p.field_bits) - 1));
            const int32_t code = reference::code_at(q1, h, t, d);
            ASSERT_EQ(code, b == QuantBits::b1_58 ? field - 1 : field);
            const uint16_t s16 = q1.scales[row * p.groups_per_row + k / 32];
            const uint16_t mn = q1.mins[row * p.groups_per_row + k / 32];
            const float want =
                b == QuantBits::b1     ? (code ? 1.0f : -1.0f) * to_float(s16)
                : b == QuantBits::b1_58 ? float(code) * to_float(s16)
                : to_float(from_float(to_float(from_float(code * to_float(s16))) + to_float(mn)));
            ASSERT_EQ(to_float(y[h * padded.head_stride + t * padded.token_stride + d]), want);
          }
      EXPECT_EQ(y[padded.token_stride - 1], 0u) << "padding stays 0";
    }
  }
}

TEST(Reference, DecodeAndCodeAtRejectBadTensors) {
  auto q = quantize_small(make_spec(QuantBits::b1_58), two_channels(pattern([](int t) {
                            return float(t % 3) - 1.0f;
                          }), pattern([](int) { return 1.0f; })));
  EXPECT_THROW(reference::code_at(q, 0, 32, 0), Error);
  EXPECT_THROW(reference::code_at(q, 1, 0, 0), Error);
  q.codes[0] |= 3u;  // field value 3 is not a trit
  try {
    reference::code_at(q, 0, 0, 0);
    ADD_FAILURE() << "field 3 accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::corrupt_data);
  }
  q.codes.pop_back();
  EXPECT_THROW(reference::dequantize(q, TensorLayout::htd(q.shape)), Error);
}
