#version 450
#extension GL_GOOGLE_include_directive : require
// Grouped quantize + pack, per channel or per token, at 1, 1.58, 2, 4 or 8 bits. One invocation
// quantizes two consecutive groups (flat index 2p and 2p + 1), so the two halves of every scale and
// min word are written by the same invocation and no two invocations share a word. Arithmetic is
// the CPU reference's, operation for operation (cache/include/vidkv/reference.hpp).
#include "fp16.glsl"
#include "grouped_layout.glsl"

layout(std430, binding = 0) readonly buffer Input { uint data[]; } src;
layout(std430, binding = 1) writeonly buffer Codes { uint data[]; } codes;
layout(std430, binding = 2) writeonly buffer Scales { uint data[]; } scales;
layout(std430, binding = 3) writeonly buffer Mins { uint data[]; } mins;

// The element as a half; fp32 input is rounded to half first.
uint load_half(uint e) {
  if (DATA_F32 == 1u) return f32_to_f16(uintBitsToFloat(src.data[e]));
  return half_in_word(src.data[e >> 1], e & 1u);
}

// round-to-nearest-even of a non-negative float holding a small integer + fraction
uint round_even_small(float v) {
  float fl = floor(v);
  uint q = uint(fl);
  float frac = v - fl;
  if (frac > 0.5 || (frac == 0.5 && (q & 1u) == 1u)) q += 1u;
  return q;
}

// Quantizes flat group f; returns its scale (low 16 bits) and min (high 16 bits) as halves.
uvec2 quantize_group(uint f) {
  uint gpr = groups_per_row();
  uint row = f / gpr;
  uint g = f - row * gpr;
  uint word0 = row * words_per_row() + g * (GROUP_SIZE / FIELDS_PER_WORD);

  // pass 1: min, max and sum |x|. -0 orders below +0 (as in the reference), so the chosen min and
  // max do not depend on the order of the tokens.
  uint first = element_index(row, g, 0u), step = element_step();
  uint mn_bits = load_half(first);
  uint mx_bits = mn_bits;
  float mn = f16_to_f32(mn_bits);
  float mx = mn;
  precise float abs_sum = 0.0;
  for (uint i = 0u; i < GROUP_SIZE; ++i) {
    uint h = load_half(first + i * step);
    float x = f16_to_f32(h);
    if (x < mn || (x == mn && h == 0x8000u)) {
      mn = x;
      mn_bits = h;
    }
    if (x > mx || (x == mx && h == 0x0000u)) {
      mx = x;
      mx_bits = h;
    }
    abs_sum += abs(x);
  }

  if (MODE == MODE_1BIT || MODE == MODE_TERNARY) {
    uint mean_h = f16_divide_round(abs_sum, float(GROUP_SIZE));
    uint threshold_bits = f32_to_f16(0.5 * f16_to_f32(mean_h));
    precise float nz_sum = 0.0;
    uint nz_count = 0u;
    for (uint w = 0u; w < GROUP_SIZE / FIELDS_PER_WORD; ++w) {
      uint word = 0u;
      for (uint k = 0u; k < FIELDS_PER_WORD; ++k) {
        uint e = first + (w * FIELDS_PER_WORD + k) * step;
        uint h = load_half(e);
        uint code;
        if (MODE == MODE_1BIT && DATA_F32 == 1u) {
          // the half's sign without rounding to a half: x >= 0, or x rounds to -0 (|x| <= 2^-25,
          // the tie at 2^-25 going to the even 0)
          uint b = src.data[e];
          code = ((b & 0x80000000u) == 0u || (b & 0x7fffffffu) <= 0x33000000u) ? 1u : 0u;
        } else if (MODE == MODE_1BIT) {
          // x >= 0, with -0 counted as non-negative
          code = ((h & 0x8000u) == 0u || (h & 0x7fffu) == 0u) ? 1u : 0u;
        } else {
          // x > t and x < -t (t = threshold, a non-negative half) in integers: a half's magnitude
          // bits order like its magnitude, -0 has magnitude 0, and a NaN (magnitude above inf's)
          // compares false both ways
          uint mag = h & 0x7fffu;
          bool beyond = mag > threshold_bits && mag <= 0x7c00u;
          code = beyond ? ((h & 0x8000u) == 0u ? 2u : 0u) : 1u;
          if (TERNARY_LSQ == 1u && code != 1u) {
            nz_sum += f16_to_f32(mag);
            nz_count += 1u;
          }
        }
        word |= code << (k * FIELD_BITS);
      }
      codes.data[word0 + w] = word;
    }
    uint scale_h = mean_h;
    if (MODE == MODE_TERNARY && TERNARY_LSQ == 1u && nz_count > 0u) {
      scale_h = f16_divide_round(nz_sum, float(nz_count));
    }
    uint min_h = MODE == MODE_1BIT ? 0u : 0xbc00u;  // 0 and -1, as the original stores them
    return uvec2(scale_h, min_h);
  }

  // b-bit asymmetric
  uint mn_h = mn_bits;
  uint range_h = f32_to_f16(mx - mn);
  precise float scale_f = f16_to_f32(range_h) * LEVEL_RCP;
  uint scale_h = f32_to_f16(scale_f);
  float s = f16_to_f32(scale_h);
  // 2 bits without a division per element: code = round_even(clamp(half(d / s), 0, 3)) grows with
  // d, and code >= k exactly when half(d / s) >= B_k, the half 0.5 / 1.5 / 2.5 itself for k = 2
  // and the half above it for k = 1, 3 (round_even sends 0.5 to 0, 1.5 to 2, 2.5 to 2); that is
  // when d / s lies above the rounding midpoint below B_k, or on it with B_k's mantissa even (the
  // half rounding's ties). As in f16_divide_round, midpoint * s is exact in fp32, so the three
  // comparisons decide what the division decides (a half d never lies exactly on one: a midpoint
  // has 12 significant bits ending in 1, so m * s has 12 or more, d at most 11; the tie rules are
  // kept for the statement's sake). An infinite d (x - min above 65504) is code 3 whatever s; with
  // an infinite s every finite d is code 0, as the comparisons give (the quantizer's range check
  // refuses both before).
  precise float t1 = f16_midpoint_up(0x3800u) * s;  // B_1 = 0x3801 (odd): strictly above
  precise float t2 = f16_midpoint_up(0x3dffu) * s;  // B_2 = 0x3e00 = 1.5 (even): on it counts
  precise float t3 = f16_midpoint_up(0x4100u) * s;  // B_3 = 0x4101 (odd): strictly above
  for (uint w = 0u; w < GROUP_SIZE / FIELDS_PER_WORD; ++w) {
    uint word = 0u;
    for (uint k = 0u; k < FIELDS_PER_WORD; ++k) {
      uint code = 0u;
      if (s > 0.0) {
        float x = f16_to_f32(load_half(first + (w * FIELDS_PER_WORD + k) * step));
        float d = f16_to_f32(f32_to_f16(x - mn));
        if (MAX_CODE == 3u) {
          code = isinf(d) ? 3u : uint(d > t1) + uint(d >= t2) + uint(d > t3);
        } else {
          float qh = f16_to_f32(f16_divide_round(d, s));
          code = round_even_small(clamp(qh, 0.0, float(MAX_CODE)));
        }
      }
      word |= code << (k * FIELD_BITS);
    }
    codes.data[word0 + w] = word;
  }
  return uvec2(scale_h, mn_h);
}

void process(uint invocation) {
  uint p = invocation;
  uint f0 = 2u * p;
  if (f0 >= params.groups_total) return;
  uvec2 a = quantize_group(f0);
  uvec2 b = uvec2(0u);
  if (f0 + 1u < params.groups_total) b = quantize_group(f0 + 1u);
  scales.data[p] = a.x | (b.x << 16);
  mins.data[p] = a.y | (b.y << 16);
}

// Grid-stride over every item: the host caps the workgroup count at the 65535 every device
// allows, and long contexts have more items than that many workgroups cover.
void main() {
  uint total = (params.groups_total + 1u) / 2u;
  for (uint i = gl_GlobalInvocationID.x; i < total; i += gl_NumWorkGroups.x * gl_WorkGroupSize.x) process(i);
}
