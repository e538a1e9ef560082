#version 450
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
// attention_reduce.comp for the subgroup-of-8 path (CPU drivers such as lavapipe): the same
// combination of split partials (M = max_i m_i, w_i = exp(m_i - M), L = sum_i l_i w_i,
// out = sum_i o_i w_i / L), laid out for how llvmpipe runs a workgroup (attention_sg8.glsl).
//
// There a workgroup of 64 invocations with barriers costs ~3 us of task switching whatever its
// work, and a decode batch has ~900 rows of ~3 slots each: the portable shader's (row, 32-channel
// block) workgroups spent ~10 ms on 32 sequences. Here one workgroup is one 8-lane subgroup and
// owns a whole output row (all DIM channels): no shared memory, no barrier. Slots go 8 at a time:
// lane l reads slot i + l's m and l and computes its weight, shuffles hand the weights out, and
// lane l accumulates channels 32j + 4l .. + 3 of every slot.
// Rows and slots as in attention_reduce.comp: workgroup x is the row (batch: sequence * q_heads +
// query head), z the causal query.
layout(local_size_x = 8) in;
layout(constant_id = 1) const uint DIM = 128u;

const uint CHUNKS = (DIM + 31u) / 32u;  // vec4 accumulators per lane (DIM a multiple of 16)

layout(std430, binding = 0) readonly buffer Partials { float data[]; } partials;
layout(std430, binding = 1) writeonly buffer Output { float data[]; } dst;
layout(std430, binding = 2) readonly buffer Ranges { uint data[]; } ranges;  // [sequences][2]; batch only

layout(push_constant) uniform Params {
  uint q_heads;
  uint slots;    // one layer: its slot count (ranges unread)
  uint batched;  // 1: a batch, slots from ranges
} params;

void main() {
  uint row = gl_WorkGroupID.x;
  uint qh = row % params.q_heads;
  uint lane = gl_SubgroupInvocationID;
  uint stride = params.q_heads * (DIM + 2u);
  uint first_slot = gl_WorkGroupID.z * params.slots, slots = params.slots;
  if (params.batched != 0u) {
    uint sequence = row / params.q_heads;
    first_slot = ranges.data[2u * sequence];
    slots = ranges.data[2u * sequence + 1u];
  }
  uint base = first_slot * stride + qh * (DIM + 2u);

  float top = -3.0e38;
  for (uint i = lane; i < slots; i += 8u) top = max(top, partials.data[base + i * stride]);
  top = max(top, subgroupShuffleXor(top, 1u));
  top = max(top, subgroupShuffleXor(top, 2u));
  top = max(top, subgroupShuffleXor(top, 4u));

  float l = 0.0;
  vec4 acc[CHUNKS];
  [[unroll]] for (uint j = 0u; j < CHUNKS; ++j) acc[j] = vec4(0.0);
  for (uint first = 0u; first < slots; first += 8u) {
    // Lane l's slot; past the end it rereads the last one with weight 0.
    uint own = base + min(first + lane, slots - 1u) * stride;
    float w = first + lane < slots ? exp(partials.data[own] - top) : 0.0;
    l += partials.data[own + 1u] * w;
    uint count = min(slots - first, 8u);
    for (uint u = 0u; u < count; ++u) {
      float wu = subgroupShuffle(w, u);
      uint o = base + (first + u) * stride + 2u;
      [[unroll]] for (uint j = 0u; j < CHUNKS; ++j) {
        uint c = 32u * j + 4u * lane;
        if (c < DIM) {
          acc[j] += vec4(partials.data[o + c], partials.data[o + c + 1u], partials.data[o + c + 2u],
                         partials.data[o + c + 3u]) * wu;
        }
      }
    }
  }
  l += subgroupShuffleXor(l, 1u);
  l += subgroupShuffleXor(l, 2u);
  l += subgroupShuffleXor(l, 4u);

  uint out_row = (gl_WorkGroupID.z * gl_NumWorkGroups.x + row) * DIM;
  [[unroll]] for (uint j = 0u; j < CHUNKS; ++j) {
    uint c = 32u * j + 4u * lane;
    if (c < DIM) {
      vec4 r = acc[j] / l;
      [[unroll]] for (uint e = 0u; e < 4u; ++e) dst.data[out_row + c + e] = r[e];
    }
  }
}
