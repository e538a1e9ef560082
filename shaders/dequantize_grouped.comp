#version 450
#extension GL_GOOGLE_include_directive : require
// Unpack + dequantize of the grouped layout back to an unpacked tensor (fp16 or fp32). One
// invocation decodes two neighbouring channels of one (head, token), so an fp16 output word is
// written whole by one invocation. Decoding is the paper's (DESIGN section 3), rounded as the
// reference rounds: b-bit half(half(q * s) + mn); 1-bit +-s; 1.58-bit {-s, 0, +s}.
#include "fp16.glsl"
#include "grouped_layout.glsl"

layout(std430, binding = 0) readonly buffer Codes { uint data[]; } codes;
layout(std430, binding = 1) readonly buffer Scales { uint data[]; } scales;
layout(std430, binding = 2) readonly buffer Mins { uint data[]; } mins;
layout(std430, binding = 3) writeonly buffer Output { uint data[]; } dst;

uint half_at(uint index, bool from_mins) {
  uint word = from_mins ? mins.data[index >> 1] : scales.data[index >> 1];
  return half_in_word(word, index & 1u);
}

uint decode(uint h, uint t, uint c) {
  uint row = AXIS == 0u ? h * params.dim + c : h * params.tokens + t;
  uint pos = AXIS == 0u ? t : c;  // position along the row
  uint word = codes.data[row * words_per_row() + pos / FIELDS_PER_WORD];
  uint code = (word >> ((pos % FIELDS_PER_WORD) * FIELD_BITS)) & FIELD_MASK;
  uint group = row * groups_per_row() + pos / GROUP_SIZE;
  uint s = half_at(group, false);
  if (MODE == MODE_1BIT) return code == 1u ? s : (s ^ 0x8000u);
  if (MODE == MODE_TERNARY) return code == 2u ? s : (code == 0u ? (s ^ 0x8000u) : 0u);
  precise float qs = float(code) * f16_to_f32(s);
  precise float v = f16_to_f32(f32_to_f16(qs)) + f16_to_f32(half_at(group, true));
  return f32_to_f16(v);
}

void main() {
  uint pairs_per_token = params.dim / 2u;
  uint item = gl_GlobalInvocationID.x;
  if (item >= params.heads * params.tokens * pairs_per_token) return;
  uint c = 2u * (item % pairs_per_token);
  uint ht = item / pairs_per_token;
  uint t = ht % params.tokens;
  uint h = ht / params.tokens;
  uint lo = decode(h, t, c);
  uint hi = decode(h, t, c + 1u);
  uint e = h * params.head_stride + t * params.token_stride + c;
  if (DATA_F32 == 1u) {
    dst.data[e] = floatBitsToUint(f16_to_f32(lo));
    dst.data[e + 1u] = floatBitsToUint(f16_to_f32(hi));
  } else {
    dst.data[e >> 1] = lo | (hi << 16);
  }
}
