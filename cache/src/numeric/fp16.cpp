// IEEE binary16 conversions in integer arithmetic (no _Float16, no F16C), so the result does not
// depend on the compiler, the CPU or the floating-point environment.
#include "vidkv/fp16.hpp"

#include <bit>
#include <cstdint>

namespace vidkv::fp16 {
namespace {

constexpr uint16_t kInf = 0x7c00u;

// The half nearest to m * 2^e (m > 0, exact), ties to even; sign is applied by the caller.
// Every finite binary float or double is such an m * 2^e, so one routine serves both inputs and
// the division below.
uint16_t round_magnitude(uint64_t m, int e) {
  const int msb = 63 - std::countl_zero(m);
  const int E = msb + e;  // the value lies in [2^E, 2^(E+1))
  if (E > 15) return kInf;
  // Quantum of the halves around the value: 2^(E-10) for normals, 2^-24 for subnormals.
  const int q = E >= -14 ? E - 10 : -24;
  const int shift = q - e;  // r = m / 2^shift, rounded
  uint64_t r;
  if (shift <= 0) {
    r = m << -shift;  // exact: r < 2^11 because the value has at most 11 bits above 2^q
  } else if (shift >= 64) {
    r = 0;  // m < 2^53, so the value is below half a quantum: it rounds to zero
  } else {
    r = m >> shift;
    const uint64_t rem = m & ((uint64_t(1) << shift) - 1);
    const uint64_t half = uint64_t(1) << (shift - 1);
    if (rem > half || (rem == half && (r & 1u))) ++r;
  }
  // Subnormal: r * 2^-24 is the bit pattern itself (r == 1024 is the smallest normal).
  if (E < -14) return uint16_t(r);
  // Normal: r in [1024, 2048]; r == 2048 carries into the exponent, which the sum does naturally.
  const uint32_t bits = (uint32_t(E + 15) << 10) + uint32_t(r) - 1024u;
  return bits >= kInf ? kInf : uint16_t(bits);
}

uint16_t from_double(double value) {
  const uint64_t bits = std::bit_cast<uint64_t>(value);
  const uint16_t sign = uint16_t((bits >> 48) & 0x8000u);
  const int exp = int((bits >> 52) & 0x7ffu);
  const uint64_t mant = bits & 0xfffffffffffffull;
  if (exp == 0x7ff) return uint16_t(sign | (mant ? 0x7e00u : kInf));
  if (exp == 0 && mant == 0) return sign;
  const uint64_t m = exp ? (mant | (uint64_t(1) << 52)) : mant;
  const int e = (exp ? exp : 1) - 1075;
  return uint16_t(sign | round_magnitude(m, e));
}

}  // namespace

uint16_t from_float(float value) noexcept {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint16_t sign = uint16_t((bits >> 16) & 0x8000u);
  const int exp = int((bits >> 23) & 0xffu);
  const uint32_t mant = bits & 0x7fffffu;
  if (exp == 0xff) {
    // Keep the top payload bits of a NaN and force the quiet bit so it cannot turn into inf.
    return mant ? uint16_t(sign | 0x7e00u | (mant >> 13)) : uint16_t(sign | kInf);
  }
  if (exp == 0 && mant == 0) return sign;
  const uint64_t m = exp ? (mant | 0x800000u) : mant;
  const int e = (exp ? exp : 1) - 150;
  return uint16_t(sign | round_magnitude(m, e));
}

float to_float(uint16_t half) noexcept {
  const uint32_t sign = uint32_t(half & 0x8000u) << 16;
  const uint32_t exp = (half >> 10) & 0x1fu;
  uint32_t mant = half & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {
    // Subnormal half: mant * 2^-24 is a normal float; normalise the significand.
    int e = -14;
    while (!(mant & 0x400u)) {
      mant <<= 1;
      --e;
    }
    bits = sign | (uint32_t(e + 127) << 23) | ((mant & 0x3ffu) << 13);
  }
  return std::bit_cast<float>(bits);
}

// The double quotient of two floats is within 2^-53 (relative) of the exact quotient, while an
// exact quotient that is not itself a half midpoint lies at least about 2^-37 (relative) away from
// every midpoint (a midpoint has 12 significant bits, the operands 24). So rounding the double to
// half cannot land on the wrong side of a midpoint, and exact midpoints stay exact: the result is
// the once-rounded quotient.
uint16_t divide_round(float numerator, float denominator) noexcept {
  return from_double(double(numerator) / double(denominator));
}

}  // namespace vidkv::fp16
