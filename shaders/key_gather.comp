#version 450
#extension GL_GOOGLE_include_directive : require
// Splits keys by channel role: anomalous channels into a dense [tokens][heads][k] fp32 tensor (for
// the 2-bit grouped quantizer), normal channels into rows [heads * tokens][dim - k] of fp32 (the
// FFT's input, one row per token, channels in increasing order). One invocation per element.
#include "fp16.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint SCOPE_LAYER = 0u;
layout(constant_id = 2) const uint DATA_F32 = 0u;

layout(std430, binding = 0) readonly buffer Input { uint data[]; } src;
layout(std430, binding = 1) readonly buffer Roles { uint data[]; } roles;
layout(std430, binding = 2) writeonly buffer Anomalous { float data[]; } anomalous_out;
layout(std430, binding = 3) writeonly buffer Normal { float data[]; } normal_out;

layout(push_constant) uniform Params {
  uint heads, tokens, dim, head_stride, token_stride, k, normal_row_stride;
} params;

#include "tensor_io.glsl"
#include "index_runs.glsl"

const uint RUN = 8u;  // elements per invocation, consecutive in (head, token, channel) order

void store(uint h, uint t, uint c) {
  float x = f16_to_f32(load_half_from(h * params.head_stride + t * params.token_stride + c));
  uint role = roles.data[(SCOPE_LAYER == 1u ? 0u : h) * params.dim + c];
  uint position = role & 0x7fffffffu;
  if ((role & 0x80000000u) != 0u) {
    anomalous_out.data[(t * params.heads + h) * params.k + position] = x;
  } else {
    normal_out.data[(h * params.tokens + t) * params.normal_row_stride + position] = x;
  }
}

void process_run(uint run, uint total) {
  uint first = run * RUN;
  uint count = min(RUN, total - first);
  uvec3 at = run_first(first, params.dim, params.tokens);  // (h, t, c)
  for (uint i = 0u; i < count; ++i) {
    store(at.x, at.y, at.z);
    run_next(at, params.dim, params.tokens);
  }
}

// Grid-stride over the runs: the host caps the workgroup count at the 65535 every device allows,
// and long contexts have more runs than that many workgroups cover.
void main() {
  uint total = params.heads * params.tokens * params.dim;
  uint runs = (total + RUN - 1u) / RUN;
  for (uint r = gl_GlobalInvocationID.x; r < runs; r += gl_NumWorkGroups.x * gl_WorkGroupSize.x) process_run(r, total);
}
