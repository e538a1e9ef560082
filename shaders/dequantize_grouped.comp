#version 450
#extension GL_GOOGLE_include_directive : require
// Unpack + dequantize of the grouped layout back to an unpacked tensor (fp16 or fp32). One
// invocation decodes two neighbouring channels of one (head, token), so an fp16 output word is
// written whole by one invocation. Decoding is the paper's (DESIGN section 3), rounded as the
// reference rounds: b-bit half(half(q * s) + mn); 1-bit +-s; 1.58-bit {-s, 0, +s}.
#include "fp16.glsl"
#include "grouped_layout.glsl"
#include "trits.glsl"

// 1.58-bit codes read from trits packed 5 per byte instead of 2-bit fields (binding 0 then holds
// the packed bytes; axis channel only).
layout(constant_id = 7) const uint CODES_BASE3 = 0u;

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
  uint group = row * groups_per_row() + pos / GROUP_SIZE;
  uint code;
  if (MODE == MODE_TERNARY && CODES_BASE3 == 1u) {
    uint g = pos / GROUP_SIZE;
    uint trit = c * GROUP_SIZE + (pos - g * GROUP_SIZE);
    uint byte_index = (h * groups_per_row() + g) * trit_block_bytes(params.dim, GROUP_SIZE) + div5(trit);
    uint byte_value = (codes.data[byte_index >> 2] >> ((byte_index & 3u) * 8u)) & 255u;
    code = trit_digit(byte_value, trit - 5u * div5(trit));
  } else {
    uint word = codes.data[row * words_per_row() + pos / FIELDS_PER_WORD];
    code = (word >> ((pos % FIELDS_PER_WORD) * FIELD_BITS)) & FIELD_MASK;
  }
  uint s = half_at(group, false);
  if (MODE == MODE_1BIT) return code == 1u ? s : (s ^ 0x8000u);
  if (MODE == MODE_TERNARY) return code == 2u ? s : (code == 0u ? (s ^ 0x8000u) : 0u);
  precise float qs = float(code) * f16_to_f32(s);
  precise float v = f16_to_f32(f32_to_f16(qs)) + f16_to_f32(half_at(group, true));
  return f32_to_f16(v);
}

void process(uint invocation) {
  uint pairs_per_token = (params.dim + 1u) / 2u;  // an odd dim ends with a lone channel (fp32 only)
  uint item = invocation;
  if (item >= params.heads * params.tokens * pairs_per_token) return;
  uint c = 2u * (item % pairs_per_token);
  uint ht = item / pairs_per_token;
  uint t = ht % params.tokens;
  uint h = ht / params.tokens;
  bool has_hi = c + 1u < params.dim;
  uint lo = decode(h, t, c);
  uint hi = has_hi ? decode(h, t, c + 1u) : 0u;
  uint e = h * params.head_stride + t * params.token_stride + c;
  if (DATA_F32 == 1u) {
    dst.data[e] = floatBitsToUint(f16_to_f32(lo));
    if (has_hi) dst.data[e + 1u] = floatBitsToUint(f16_to_f32(hi));
  } else {
    dst.data[e >> 1] = lo | (hi << 16);
  }
}

// Grid-stride over every item: the host caps the workgroup count at the 65535 every device
// allows, and long contexts have more items than that many workgroups cover.
void main() {
  uint total = params.heads * params.tokens * ((params.dim + 1u) / 2u);
  for (uint i = gl_GlobalInvocationID.x; i < total; i += gl_NumWorkGroups.x * gl_WorkGroupSize.x) process(i);
}
