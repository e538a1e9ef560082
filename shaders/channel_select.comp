#version 450
#extension GL_GOOGLE_include_directive : require
// Chooses the k anomalous channels of each unit (head, or the whole layer): the k largest ranges,
// ties to the lower channel index. One workgroup per unit, one invocation per channel (dim <= 256).
// Writes role[unit][c] = (anomalous ? 0x80000000 : 0) | position in its increasing list, and the
// channel table [unit][dim] that attention reads: the k anomalous channels, then the normal ones,
// each list increasing.
#include "fp16.glsl"

layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer Ranges { uint data[]; } ranges;
layout(std430, binding = 1) writeonly buffer Roles { uint data[]; } roles;
layout(std430, binding = 2) writeonly buffer Table { uint data[]; } table;  // [unit][dim]

layout(push_constant) uniform Params {
  uint dim, k;
} params;

shared float range_of[256];
shared uint is_anomalous[256];

void main() {
  uint unit = gl_WorkGroupID.x;
  uint c = gl_LocalInvocationID.x;
  if (c < params.dim) range_of[c] = f16_to_f32(ranges.data[unit * params.dim + c]);
  barrier();
  if (c < params.dim) {
    float r = range_of[c];
    uint rank = 0u;
    for (uint o = 0u; o < params.dim; ++o) {
      float ro = range_of[o];
      if (ro > r || (ro == r && o < c)) rank += 1u;
    }
    is_anomalous[c] = rank < params.k ? 1u : 0u;
  }
  barrier();
  if (c < params.dim) {
    uint before = 0u;  // anomalous channels below c
    for (uint o = 0u; o < c; ++o) before += is_anomalous[o];
    if (is_anomalous[c] == 1u) {
      roles.data[unit * params.dim + c] = 0x80000000u | before;
      table.data[unit * params.dim + before] = c;
    } else {
      uint position = c - before;
      roles.data[unit * params.dim + c] = position;
      table.data[unit * params.dim + params.k + position] = c;
    }
  }
}
