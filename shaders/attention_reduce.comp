#version 450
#extension GL_EXT_control_flow_attributes : require
// Combines the partials of all splits (quantized segments and fp16 residual alike) of one query
// head into its output: M = max_i m_i, w_i = exp(m_i - M), L = sum_i l_i w_i,
// out = sum_i o_i w_i / L. Subtracting the overall maximum keeps every exponent <= 0, so nothing
// overflows however large the scores are; a split's weights were computed against its own
// maximum, so they rescale exactly. One workgroup per query head: the weights of WG slots at a
// time are computed once (one per invocation) and shared, then every invocation accumulates its
// channels over them.
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint DIM = 128u;

const uint WG = gl_WorkGroupSize.x;
const uint CPI = (DIM + WG - 1u) / WG;  // channels per invocation (strided)

layout(std430, binding = 0) readonly buffer Partials { float data[]; } partials;
layout(std430, binding = 1) writeonly buffer Output { float data[]; } dst;

layout(push_constant) uniform Params {
  uint q_heads;
  uint slots;
} params;

shared float weight[WG];
shared float reduce_buf[WG];

void main() {
  uint qh = gl_WorkGroupID.x;
  uint lid = gl_LocalInvocationID.x;
  uint stride = params.q_heads * (DIM + 2u);
  uint base = qh * (DIM + 2u);

  float m = -3.0e38;
  for (uint i = lid; i < params.slots; i += WG) m = max(m, partials.data[base + i * stride]);
  reduce_buf[lid] = m;
  barrier();
  for (uint half_size = WG / 2u; half_size > 0u; half_size /= 2u) {
    if (lid < half_size) reduce_buf[lid] = max(reduce_buf[lid], reduce_buf[lid + half_size]);
    barrier();
  }
  float top = reduce_buf[0];
  barrier();

  float l = 0.0;
  float acc[CPI];
  [[unroll]] for (uint j = 0u; j < CPI; ++j) acc[j] = 0.0;
  for (uint first = 0u; first < params.slots; first += WG) {
    uint i = first + lid;
    float w = 0.0;
    if (i < params.slots) {
      w = exp(partials.data[base + i * stride] - top);
      l += partials.data[base + i * stride + 1u] * w;
    }
    weight[lid] = w;
    barrier();
    uint count = min(WG, params.slots - first);
    for (uint k = 0u; k < count; ++k) {
      float wk = weight[k];
      uint o = base + (first + k) * stride + 2u;
      [[unroll]] for (uint j = 0u; j < CPI; ++j) {
        uint c = lid + j * WG;
        if (c < DIM) acc[j] += partials.data[o + c] * wk;
      }
    }
    barrier();
  }
  reduce_buf[lid] = l;
  barrier();
  for (uint half_size = WG / 2u; half_size > 0u; half_size /= 2u) {
    if (lid < half_size) reduce_buf[lid] += reduce_buf[lid + half_size];
    barrier();
  }
  float inv = 1.0 / reduce_buf[0];
  [[unroll]] for (uint j = 0u; j < CPI; ++j) {
    uint c = lid + j * WG;
    if (c < DIM) dst.data[qh * DIM + c] = acc[j] * inv;
  }
}
