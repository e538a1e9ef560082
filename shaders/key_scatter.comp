#version 450
#extension GL_GOOGLE_include_directive : require
// Assembles decoded keys: anomalous channels from the decoded 2-bit tensor [tokens][heads][k],
// normal channels from the inverse FFT's rows [heads * tokens][row stride] (times 1/N when the
// transform is unnormalized), each rounded to half. One invocation per run of RUN channel pairs, so
// an fp16 output word is written whole by one invocation.
#include "fp16.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint SCOPE_LAYER = 0u;
layout(constant_id = 2) const uint DATA_F32 = 0u;  // output type

layout(std430, binding = 0) readonly buffer Roles { uint data[]; } roles;
layout(std430, binding = 1) readonly buffer Anomalous { float data[]; } anomalous_in;
layout(std430, binding = 2) readonly buffer Normal { float data[]; } normal_in;
layout(std430, binding = 3) writeonly buffer Output { uint data[]; } dst;

layout(push_constant) uniform Params {
  uint heads, tokens, dim, head_stride, token_stride, k, normal_row_stride;
  float normal_scale;
} params;

uint decoded(uint h, uint t, uint c) {
  uint role = roles.data[(SCOPE_LAYER == 1u ? 0u : h) * params.dim + c];
  uint position = role & 0x7fffffffu;
  if ((role & 0x80000000u) != 0u) {
    return f32_to_f16(anomalous_in.data[(t * params.heads + h) * params.k + position]);
  }
  precise float x = normal_in.data[(h * params.tokens + t) * params.normal_row_stride + position] *
                    params.normal_scale;
  return f32_to_f16(x);
}

// Channel pairs per invocation, consecutive in (head, token, pair) order. The first pair's position
// needs a division by dim / 2 and one by tokens; the rest follow by carrying, so the divisions (a
// per-lane loop of scalar divides on CPU drivers) are paid once per run instead of per pair.
const uint RUN = 4u;

void write_pair(uint h, uint t, uint c) {
  uint lo = decoded(h, t, c);
  uint hi = decoded(h, t, c + 1u);
  uint e = h * params.head_stride + t * params.token_stride + c;
  if (DATA_F32 == 1u) {
    dst.data[e] = floatBitsToUint(f16_to_f32(lo));
    dst.data[e + 1u] = floatBitsToUint(f16_to_f32(hi));
  } else {
    dst.data[e >> 1] = lo | (hi << 16);
  }
}

void process_run(uint run, uint total, uint pairs) {
  uint first = run * RUN;
  uint count = min(RUN, total - first);
  uint p = first % pairs;
  uint ht = first / pairs;
  uint t = ht % params.tokens;
  uint h = ht / params.tokens;
  for (uint i = 0u; i < count; ++i) {
    write_pair(h, t, 2u * p);
    if (++p == pairs) {
      p = 0u;
      if (++t == params.tokens) {
        t = 0u;
        ++h;
      }
    }
  }
}

// Grid-stride over the runs: the host caps the workgroup count at the 65535 every device allows,
// and long contexts have more runs than that many workgroups cover.
void main() {
  uint pairs = params.dim / 2u;
  uint total = params.heads * params.tokens * pairs;
  uint runs = (total + RUN - 1u) / RUN;
  for (uint r = gl_GlobalInvocationID.x; r < runs; r += gl_NumWorkGroups.x * gl_WorkGroupSize.x) process_run(r, total, pairs);
}
