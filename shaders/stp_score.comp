#version 450
#extension GL_GOOGLE_include_directive : require
// STP, step 2: score_i = (sum over h of v_i[h] * text_sum[h], h increasing, fp32) * inv_m with
// inv_m = 1.0f / M computed on the host (cache/include/vidkv/stp.hpp). `precise` forbids fusing the
// product into the sum (an FMA rounds once instead of twice and would change the bits); one
// invocation per visual token keeps the reference's order of summation.
#include "fp16.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint VISUAL_F32 = 1u;  // visual embeddings fp32, or fp16 two per word

layout(std430, binding = 0) readonly buffer Visual { uint data[]; } visual;
layout(std430, binding = 1) readonly buffer TextSum { float data[]; } text_sum;
layout(std430, binding = 2) writeonly buffer Scores { float data[]; } scores;

layout(push_constant) uniform Params {
  uint visual_tokens;  // N
  uint hidden;
  float inv_m;         // 1.0f / M, rounded by the host exactly as the reference rounds it
} params;

float load_visual(uint e) {
  if (VISUAL_F32 == 1u) return uintBitsToFloat(visual.data[e]);
  return f16_to_f32(half_in_word(visual.data[e >> 1], e & 1u));
}

void main() {
  uint i = gl_GlobalInvocationID.x;
  if (i >= params.visual_tokens) return;
  uint base = i * params.hidden;
  precise float dot_sum = 0.0;
  for (uint h = 0u; h < params.hidden; ++h) {
    precise float product = load_visual(base + h) * text_sum.data[h];
    dot_sum += product;
  }
  precise float score = dot_sum * params.inv_m;
  scores.data[i] = score;
}
