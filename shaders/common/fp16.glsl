// IEEE binary16 in integer arithmetic, identical bit for bit to cache/src/fp16.cpp. Vulkan leaves
// the rounding of float->half conversions and the exactness of division to the implementation, so
// nothing here relies on packHalf2x16 or on '/' being correctly rounded; fp32 add, sub and mul are
// correctly rounded in Vulkan and are used as such.

// half -> float, exact for every half.
float f16_to_f32(uint h) {
  uint sign = (h & 0x8000u) << 16;
  uint e = (h >> 10) & 0x1fu;
  uint m = h & 0x3ffu;
  if (e == 0u) {
    // zero or subnormal: m * 2^-24, exact in fp32
    float v = float(m) * uintBitsToFloat(0x33800000u);
    return uintBitsToFloat(floatBitsToUint(v) | sign);
  }
  if (e == 31u) return uintBitsToFloat(sign | 0x7f800000u | (m << 13));
  return uintBitsToFloat(sign | ((e + 112u) << 23) | (m << 13));
}

// Rounds m >> s to nearest even (s in 1..31).
uint shift_round_even(uint m, uint s) {
  uint q = m >> s;
  uint rem = m & ((1u << s) - 1u);
  uint halfway = 1u << (s - 1u);
  if (rem > halfway || (rem == halfway && (q & 1u) == 1u)) q += 1u;
  return q;
}

// float -> half, round to nearest even; overflow gives inf; NaN stays NaN.
uint f32_to_f16(float f) {
  uint x = floatBitsToUint(f);
  uint sign = (x >> 16) & 0x8000u;
  uint e = (x >> 23) & 0xffu;
  uint m = x & 0x7fffffu;
  if (e == 0xffu) return sign | 0x7c00u | (m != 0u ? 0x200u : 0u);
  if (e == 0u) return sign;  // fp32 zero or subnormal: far below half's smallest subnormal
  int E = int(e) - 127;
  if (E > 15) return sign | 0x7c00u;
  if (E >= -14) {
    // normal half; a carry out of the mantissa correctly bumps the exponent (up to inf)
    uint q = shift_round_even(m, 13u);
    return sign | ((uint(E + 15) << 10) + q);
  }
  // subnormal half: value / 2^-24 = (m | 2^23) * 2^(E + 1)
  uint s = uint(-E - 1);
  if (s > 24u) return sign;
  return sign | shift_round_even(m | 0x800000u, s);
}

// Value of the half that follows non-negative finite half h; 65520 stands for the rounding
// boundary above the largest finite half.
float f16_midpoint_up(uint h) {
  if (h == 0x7bffu) return 65520.0;
  return (f16_to_f32(h) + f16_to_f32(h + 1u)) * 0.5;
}

// Half of n / d rounded once, to nearest even, for finite n >= 0 and d > 0 where d has at most 12
// significant bits (a half, or an integer count up to 4096): then m * d is exact in fp32 for every
// midpoint m between halves, so comparing n with it decides the rounding exactly.
uint f16_divide_round(float n, float d) {
  uint h = f32_to_f16(n / d) & 0x7fffu;
  if (h >= 0x7c00u) h = 0x7bffu;
  precise float up = f16_midpoint_up(h) * d;
  if (n > up || (n == up && (h & 1u) == 1u)) return h + 1u;
  if (h > 0u) {
    precise float down = f16_midpoint_up(h - 1u) * d;
    if (n < down || (n == down && (h & 1u) == 1u)) return h - 1u;
  }
  return h;
}

// The half in the low (slot 0) or high (slot 1) 16 bits of a word.
uint half_in_word(uint word, uint slot) { return (word >> (16u * slot)) & 0xffffu; }
