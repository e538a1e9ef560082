#version 450
// Combines the partials of all splits (quantized segments and fp16 residual alike) of one query
// head into its output: M = max_i m_i, L = sum_i l_i exp(m_i - M), out = sum_i o_i exp(m_i - M) / L.
// Subtracting the overall maximum keeps every exponent <= 0, so nothing overflows however large
// the scores are; a split's weights were computed against its own maximum, so they rescale exactly.
// One workgroup per query head; one invocation per channel (strided).
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint DIM = 128u;

layout(std430, binding = 0) readonly buffer Partials { float data[]; } partials;
layout(std430, binding = 1) writeonly buffer Output { float data[]; } dst;

layout(push_constant) uniform Params {
  uint q_heads;
  uint slots;
} params;

void main() {
  uint qh = gl_WorkGroupID.x;
  uint stride = params.q_heads * (DIM + 2u);
  uint base = qh * (DIM + 2u);
  float m = -3.0e38;
  for (uint i = 0u; i < params.slots; ++i) m = max(m, partials.data[base + i * stride]);
  float l = 0.0;
  for (uint i = 0u; i < params.slots; ++i) {
    uint o = base + i * stride;
    l += partials.data[o + 1u] * exp(partials.data[o] - m);
  }
  float inv = 1.0 / l;
  for (uint c = gl_LocalInvocationID.x; c < DIM; c += gl_WorkGroupSize.x) {
    float acc = 0.0;
    for (uint i = 0u; i < params.slots; ++i) {
      uint o = base + i * stride;
      acc += partials.data[o + 2u + c] * exp(partials.data[o] - m);
    }
    dst.data[qh * DIM + c] = acc * inv;
  }
}
