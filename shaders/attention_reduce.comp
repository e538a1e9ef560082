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
// A batch (GpuAttention::record_batch: many sequences' layers in one step) reduces every
// (sequence, query head) in one dispatch: workgroup x is sequence * q_heads + query head, and the
// sequence's slots are its own range of the partials (ranges: first slot, slot count).
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint DIM = 128u;

const uint WG = gl_WorkGroupSize.x;
const uint BLOCK = 32u;              // channels per workgroup
// DIM a multiple of 16 but not of 32 (80, 112): the last workgroup's upper quads read the row's
// last 4 channels and store nothing.
const bool WHOLE = DIM % BLOCK == 0u;
const uint QUADS = BLOCK / 4u;       // invocations per slot lane
const uint LANES = WG / QUADS;       // slot lanes
const uint UNROLL = 4u;              // slots in flight per invocation

layout(std430, binding = 0) readonly buffer Partials { float data[]; } partials;
layout(std430, binding = 1) writeonly buffer Output { float data[]; } dst;
layout(std430, binding = 2) readonly buffer Ranges { uint data[]; } ranges;  // [sequences][2]; batch only

layout(push_constant) uniform Params {
  uint q_heads;
  uint slots;    // one layer: its slot count (ranges unread)
  uint batched;  // 1: a batch, slots from ranges
} params;

shared float top_buf[WG];
shared vec4 sum_buf[WG];
shared float l_buf[LANES];

void main() {
  uint row = gl_WorkGroupID.x;  // (sequence, query head): the output row
  uint qh = row % params.q_heads;
  uint c0 = gl_WorkGroupID.y * BLOCK;
  uint lid = gl_LocalInvocationID.x;
  uint stride = params.q_heads * (DIM + 2u);
  // causal: workgroup z reduces query z's slots (z * slots ..) into its output row; a batch (z = 0)
  // reads its sequence's range
  uint first_slot = gl_WorkGroupID.z * params.slots, slots = params.slots;
  if (params.batched != 0u) {
    uint sequence = row / params.q_heads;
    first_slot = ranges.data[2u * sequence];
    slots = ranges.data[2u * sequence + 1u];
  }
  uint base = first_slot * stride + qh * (DIM + 2u);

  float m = -3.0e38;
  for (uint i = lid; i < slots; i += WG) m = max(m, partials.data[base + i * stride]);
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
  uint cr = WHOLE ? c : min(c, DIM - 4u);  // the channels read
  float l = 0.0;
  vec4 acc = vec4(0.0);
  for (uint first = lane; first < slots; first += LANES * UNROLL) {
    // Slots past the end reread the last slot with weight 0 (no branch: the loads stay in flight).
    float mi[UNROLL], li[UNROLL];
    vec4 oi[UNROLL];
    [[unroll]] for (uint u = 0u; u < UNROLL; ++u) {
      uint o = base + min(first + u * LANES, slots - 1u) * stride;
      mi[u] = partials.data[o];
      li[u] = partials.data[o + 1u];
      oi[u] = vec4(partials.data[o + 2u + cr], partials.data[o + 3u + cr], partials.data[o + 4u + cr],
                   partials.data[o + 5u + cr]);
    }
    [[unroll]] for (uint u = 0u; u < UNROLL; ++u) {
      float w = first + u * LANES < slots ? exp(mi[u] - top) : 0.0;
      l += li[u] * w;
      acc += oi[u] * w;
    }
  }
  sum_buf[lid] = acc;
  if (lid % QUADS == 0u) l_buf[lane] = l;
  barrier();
  if (lid < QUADS && (WHOLE || c < DIM)) {
    float total_l = 0.0;
    vec4 total = vec4(0.0);
    for (uint k = 0u; k < LANES; ++k) {
      total += sum_buf[k * QUADS + lid];
      total_l += l_buf[k];
    }
    vec4 r = total / total_l;
    [[unroll]] for (uint e = 0u; e < 4u; ++e) dst.data[(gl_WorkGroupID.z * gl_NumWorkGroups.x + row) * DIM + c + e] = r[e];
  }
}
