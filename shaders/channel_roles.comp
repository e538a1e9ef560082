#version 450
// Per-channel roles from a channel table [unit][dim] (the k anomalous channels, then the normal
// ones): role[unit][c] = (anomalous ? 0x80000000 : 0) | position in its list. Used when a block
// appended later reuses the channels chosen at prefill. One invocation per table entry.
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Table { uint data[]; } table;
layout(std430, binding = 1) writeonly buffer Roles { uint data[]; } roles;

layout(push_constant) uniform Params {
  uint units, dim, k;
} params;

void main() {
  uint id = gl_GlobalInvocationID.x;
  if (id >= params.units * params.dim) return;
  uint unit = id / params.dim;
  uint i = id - unit * params.dim;
  uint c = table.data[id];
  roles.data[unit * params.dim + c] = i < params.k ? (0x80000000u | i) : (i - params.k);
}
