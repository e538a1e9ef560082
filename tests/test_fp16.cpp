// fp16 conversions and the exactly rounded division, each against an independent computation:
// the nearest half found by search over the sorted halves with exact double arithmetic.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "vidkv/fp16.hpp"

using namespace vidkv;

namespace {

float bits_to_float(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

// The value of a half from its fields, by the IEEE 754 definition.
double half_value(uint16_t h) {
  const int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  const double mag = exp == 0 ? std::ldexp(double(mant), -24) : std::ldexp(1024.0 + mant, exp - 25);
  return (h & 0x8000) ? -mag : mag;
}

// Nearest half to a non-negative, finite x (exact in double), ties to even; overflow at 65520,
// the midpoint between 65504 and the next binade's first value 65536 (whose mantissa is even).
uint16_t nearest_half_magnitude(double x) {
  if (x >= 65520.0) return 0x7c00;
  uint16_t lo = 0, hi = 0x7bff;  // largest half <= x by binary search over increasing patterns
  while (lo < hi) {
    const uint16_t mid = uint16_t((lo + hi + 1) / 2);
    if (half_value(mid) <= x) lo = mid; else hi = uint16_t(mid - 1);
  }
  if (lo == 0x7bff) return x - 65504.0 < 65520.0 - x ? lo : 0x7c00;
  const double below = x - half_value(lo), above = half_value(uint16_t(lo + 1)) - x;
  if (below < above) return lo;
  if (above < below) return uint16_t(lo + 1);
  return (lo & 1) ? uint16_t(lo + 1) : lo;
}

uint16_t independent_from_float(float f) {
  if (std::isnan(f)) return 0x7e00;  // only NaN-ness is compared
  const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  if (std::isinf(f)) return sign | 0x7c00;
  return sign | nearest_half_magnitude(std::fabs(double(f)));
}

// Exactly rounded half of n / d (n >= 0, d > 0), using only products that are exact in double:
// a half has 11 significant bits, a midpoint 12, a float 24, so h * d fits in 53 bits.
uint16_t independent_divide(float n, float d) {
  const double num = n, den = d;
  uint16_t lo = 0, hi = 0x7bff;
  while (lo < hi) {
    const uint16_t mid = uint16_t((lo + hi + 1) / 2);
    if (half_value(mid) * den <= num) lo = mid; else hi = uint16_t(mid - 1);
  }
  const double upper = lo == 0x7bff ? 65536.0 : half_value(uint16_t(lo + 1));
  const double mid2 = (half_value(lo) + upper) * den;  // twice the midpoint times den, exact
  const uint16_t up = lo == 0x7bff ? 0x7c00 : uint16_t(lo + 1);
  if (2 * num < mid2) return lo;
  if (2 * num > mid2) return up;
  return (lo & 1) ? up : lo;
}

void expect_same_half(uint16_t want, uint16_t got, const std::string& what) {
  if ((want & 0x7fff) > 0x7c00) {
    EXPECT_TRUE((got & 0x7fff) > 0x7c00) << what << ": expected NaN, got " << std::hex << got;
  } else {
    EXPECT_EQ(want, got) << what << std::hex << " want 0x" << want << " got 0x" << got;
  }
}

}  // namespace

TEST(Fp16, ToFloatMatchesTheDefinitionForEveryPattern) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = fp16::to_float(uint16_t(h));
    const int exp = (h >> 10) & 0x1f;
    if (exp == 0x1f) {
      EXPECT_EQ(std::isnan(f), (h & 0x3ff) != 0) << h;
      EXPECT_EQ(std::signbit(f), (h & 0x8000) != 0) << h;
      continue;
    }
    EXPECT_EQ(double(f), half_value(uint16_t(h))) << h;
    EXPECT_EQ(std::signbit(f), (h & 0x8000) != 0) << h;  // -0 stays -0
  }
}

TEST(Fp16, EveryHalfRoundTripsThroughFloat) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const uint16_t back = fp16::from_float(fp16::to_float(uint16_t(h)));
    const bool nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
    if (nan) {
      // NaN stays NaN with its sign and payload; a signalling NaN comes back quiet.
      EXPECT_EQ(back, h | 0x200) << h;
    } else {
      EXPECT_EQ(back, h) << h;
    }
  }
}

TEST(Fp16, HandCheckedConversions) {
  EXPECT_EQ(fp16::from_float(1.0f), 0x3c00);
  EXPECT_EQ(fp16::from_float(-2.0f), 0xc000);
  EXPECT_EQ(fp16::from_float(0.0f), 0x0000);
  EXPECT_EQ(fp16::from_float(-0.0f), 0x8000);
  EXPECT_EQ(fp16::from_float(65504.0f), 0x7bff);
  EXPECT_EQ(fp16::from_float(65519.99f), 0x7bff);
  EXPECT_EQ(fp16::from_float(65520.0f), 0x7c00);  // tie between 65504 and 2^16: even is inf
  EXPECT_EQ(fp16::from_float(1e10f), 0x7c00);
  EXPECT_EQ(fp16::from_float(-INFINITY), 0xfc00);
  EXPECT_EQ(fp16::from_float(std::ldexp(1.0f, -24)), 0x0001);        // smallest subnormal
  EXPECT_EQ(fp16::from_float(std::ldexp(1.0f, -25)), 0x0000);        // tie to even: zero
  EXPECT_EQ(fp16::from_float(std::ldexp(3.0f, -25)), 0x0002);        // tie to even: 2
  EXPECT_EQ(fp16::from_float(std::ldexp(1.0f, -14)), 0x0400);        // smallest normal
  EXPECT_EQ(fp16::from_float(std::ldexp(1023.5f, -24)), 0x0400);     // rounds up into normals
  EXPECT_EQ(fp16::from_float(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie, even is 1.0
  EXPECT_EQ(fp16::from_float(1.0f + std::ldexp(3.0f, -11)), 0x3c02);  // tie, even is up
  EXPECT_EQ(fp16::from_float(std::ldexp(1.0f, -140)), 0x0000);       // float subnormal
  const uint16_t nan = fp16::from_float(-NAN);
  EXPECT_TRUE((nan & 0x7c00) == 0x7c00 && (nan & 0x3ff) != 0);
  EXPECT_TRUE(nan & 0x8000);
  EXPECT_FALSE(fp16::is_finite(0x7c00));
  EXPECT_FALSE(fp16::is_finite(0xfe00));
  EXPECT_TRUE(fp16::is_finite(0x7bff));
}

TEST(Fp16, FromFloatMatchesIndependentRoundingOnRandomFloats) {
  std::mt19937 rng(12345);
  std::uniform_int_distribution<uint32_t> any_bits;
  std::uniform_int_distribution<int> exp_in_half_range(-28, 17);
  std::uniform_int_distribution<uint32_t> mant(0, 0x7fffff);
  std::uniform_int_distribution<uint32_t> any_half(0, 0x7bfe);
  for (int i = 0; i < 200000; ++i) {
    float f;
    switch (i % 4) {
      case 0: f = bits_to_float(any_bits(rng)); break;  // everything, NaN and float subnormals too
      case 1:  // around the half range: subnormal halves up to overflow
        f = std::ldexp(1.0f + float(mant(rng)) * 0x1p-23f, exp_in_half_range(rng));
        break;
      case 2: {  // exact midpoints between neighbouring halves (ties)
        const auto h = uint16_t(any_half(rng));
        f = float((half_value(h) + half_value(uint16_t(h + 1))) / 2);
        break;
      }
      default: {  // one float ulp on either side of a midpoint
        const auto h = uint16_t(any_half(rng));
        const float m = float((half_value(h) + half_value(uint16_t(h + 1))) / 2);
        f = std::nextafter(m, (i & 8) ? INFINITY : 0.0f);
      }
    }
    if (i & 1) f = -f;
    expect_same_half(independent_from_float(f), fp16::from_float(f), "from_float(" +
                     std::to_string(f) + ")");
  }
}

TEST(Fp16, DivideRoundMatchesIndependentExactDivision) {
  std::mt19937 rng(777);
  std::uniform_int_distribution<uint32_t> half_bits(0, 0x7bff);
  std::uniform_int_distribution<int> count(1, 1024);
  std::uniform_real_distribution<float> den_any(0.01f, 4096.0f);
  int double_rounding_differs = 0;
  for (int i = 0; i < 200000; ++i) {
    float num, den;
    if (i % 3 == 0) {
      // A mean: fp32 sum of n halves divided by n, as the quantizer computes it.
      const int n = (i % 2) ? 32 : count(rng);
      num = 0.0f;
      for (int k = 0; k < n; ++k) num += fp16::to_float(uint16_t(half_bits(rng) & 0x4fff));
      den = float(n);
    } else if (i % 3 == 1) {
      // A code: half / half, the b-bit q before clamping.
      num = fp16::to_float(uint16_t(half_bits(rng)));
      den = fp16::to_float(uint16_t(half_bits(rng) | 1));
      if (num / den > 60000.0f) continue;
    } else {
      num = fp16::to_float(uint16_t(half_bits(rng))) * 3.0f;
      den = den_any(rng);
    }
    const uint16_t want = independent_divide(num, den);
    EXPECT_EQ(fp16::divide_round(num, den), want) << num << " / " << den;
    double_rounding_differs += fp16::from_float(num / den) != want;
  }
  EXPECT_EQ(fp16::divide_round(0.0f, 3.0f), 0x0000);
  EXPECT_EQ(fp16::divide_round(3.0f, 3.0f), 0x3c00);
  EXPECT_EQ(fp16::divide_round(1.0f, 3.0f), 0x3555);  // 0.333251953125, the nearest half to 1/3
  EXPECT_EQ(fp16::divide_round(1e9f, 1.0f), 0x7c00);
  // Not asserted either way: how often a float division rounded again would have differed.
  RecordProperty("double_rounding_differs", double_rounding_differs);
}
