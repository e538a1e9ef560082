#version 450
#extension GL_GOOGLE_include_directive : require
// STP, step 1: text_sum[h] = sum over j of t_j[h], j increasing, in fp32, starting from 0.0
// (cache/include/vidkv/stp.hpp). One invocation per hidden channel keeps the order of the sum the
// reference's, so the result is the same bit for bit.
#include "fp16.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint TEXT_F32 = 1u;  // text embeddings fp32, or fp16 two per word

layout(std430, binding = 0) readonly buffer Text { uint data[]; } text;
layout(std430, binding = 1) writeonly buffer TextSum { float data[]; } text_sum;

layout(push_constant) uniform Params {
  uint text_tokens;  // M
  uint hidden;
} params;

float load_text(uint e) {
  if (TEXT_F32 == 1u) return uintBitsToFloat(text.data[e]);
  return f16_to_f32(half_in_word(text.data[e >> 1], e & 1u));
}

void main() {
  uint h = gl_GlobalInvocationID.x;
  if (h >= params.hidden) return;
  precise float sum = 0.0;
  for (uint j = 0u; j < params.text_tokens; ++j) sum += load_text(j * params.hidden + h);
  text_sum.data[h] = sum;
}
