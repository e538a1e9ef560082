#version 450
#extension GL_EXT_control_flow_attributes : require
// Combines the partials of all splits (quantized segments and fp16 residual alike) of one query
// head into its output: M = max_i m_i, w_i = exp(m_i - M), L = sum_i l_i w_i,
// out = sum_i o_i w_i / L. Subtracting the overall maximum keeps every exponent <= 0, so nothing
// overflows however large the scores are; a split's weights were computed against its own
// maximum, so they rescale exactly.
// Spread over many workgroups: workgroup (query head, block) owns BLOCK channels. Its invocations
// are LANES slot lanes of BLOCK / 4 invocations; each invocation takes every LANES-th slot with 4
// slots' loads in flight and accumulates 4 channels; the slot lanes are summed through shared
// memory at the end. Every workgroup of a query head finds M itself (one value per slot).
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint DIM = 128u;

const uint WG = gl_WorkGroupSize.x;
const uint BLOCK = 32u;              // channels per workgroup (DIM is a multiple)
const uint QUADS = BLOCK / 4u;       // invocations per slot lane
const uint LANES = WG / QUADS;       // slot lanes
const uint UNROLL = 4u;              // slots in flight per invocation

layout(std430, binding = 0) readonly buffer Partials { float data[]; } partials;
layout(std430, binding = 1) writeonly buffer Output { float data[]; } dst;

layout(push_constant) uniform Params {
  uint q_heads;
  uint slots;
} params;

shared float top_buf[WG];
shared vec4 sum_buf[WG];
shared float l_buf[LANES];

void main() {
  uint qh = gl_WorkGroupID.x;
  uint c0 = gl_WorkGroupID.y * BLOCK;
  uint lid = gl_LocalInvocationID.x;
  uint stride = params.q_heads * (DIM + 2u);
  // causal: workgroup z reduces query z's slots (z * slots ..) into its output row
  uint base = (gl_WorkGroupID.z * params.slots * params.q_heads + qh) * (DIM + 2u);

  float m = -3.0e38;
  for (uint i = lid; i < params.slots; i += WG) m = max(m, partials.data[base + i * stride]);
  top_buf[lid] = m;
  barrier();
  for (uint cur = WG; cur > 1u;) {  // tree over WG values, every step on cur / 2 invocations
    uint half_count = (cur + 1u) / 2u;
    if (lid < cur - half_count) top_buf[lid] = max(top_buf[lid], top_buf[lid + half_count]);
    cur = half_count;
    barrier();
  }
  float top = top_buf[0];

  uint lane = lid / QUADS;
  uint c = c0 + 4u * (lid % QUADS);
  float l = 0.0;
  vec4 acc = vec4(0.0);
  for (uint first = lane; first < params.slots; first += LANES * UNROLL) {
    // Slots past the end reread the last slot with weight 0 (no branch: the loads stay in flight).
    float mi[UNROLL], li[UNROLL];
    vec4 oi[UNROLL];
    [[unroll]] for (uint u = 0u; u < UNROLL; ++u) {
      uint o = base + min(first + u * LANES, params.slots - 1u) * stride;
      mi[u] = partials.data[o];
      li[u] = partials.data[o + 1u];
      oi[u] = vec4(partials.data[o + 2u + c], partials.data[o + 3u + c], partials.data[o + 4u + c],
                   partials.data[o + 5u + c]);
    }
    [[unroll]] for (uint u = 0u; u < UNROLL; ++u) {
      float w = first + u * LANES < params.slots ? exp(mi[u] - top) : 0.0;
      l += li[u] * w;
      acc += oi[u] * w;
    }
  }
  sum_buf[lid] = acc;
  if (lid % QUADS == 0u) l_buf[lane] = l;
  barrier();
  if (lid < QUADS) {
    float total_l = 0.0;
    vec4 total = vec4(0.0);
    for (uint k = 0u; k < LANES; ++k) {
      total += sum_buf[k * QUADS + lid];
      total_l += l_buf[k];
    }
    vec4 r = total / total_l;
    [[unroll]] for (uint e = 0u; e < 4u; ++e) dst.data[(gl_WorkGroupID.z * params.q_heads + qh) * DIM + c + e] = r[e];
  }
}
