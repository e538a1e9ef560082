#version 450
#extension GL_GOOGLE_include_directive : require
// Range (half(max - min), -0 ordered below +0) of every key channel over the tokens of one head
// (scope head) or of all heads (scope layer). One invocation per (unit, channel).
#include "fp16.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint SCOPE_LAYER = 0u;
layout(constant_id = 2) const uint DATA_F32 = 0u;

layout(std430, binding = 0) readonly buffer Input { uint data[]; } src;
layout(std430, binding = 1) writeonly buffer Ranges { uint data[]; } ranges;  // one half per word

layout(push_constant) uniform Params {
  uint heads, tokens, dim, head_stride, token_stride;
} params;

#include "tensor_io.glsl"

void main() {
  uint units = SCOPE_LAYER == 1u ? 1u : params.heads;
  uint id = gl_GlobalInvocationID.x;
  if (id >= units * params.dim) return;
  uint unit = id / params.dim;
  uint c = id - unit * params.dim;
  uint h_begin = SCOPE_LAYER == 1u ? 0u : unit;
  uint h_end = SCOPE_LAYER == 1u ? params.heads : unit + 1u;
  uint first = load_half_from(h_begin * params.head_stride + c);
  float mn = f16_to_f32(first), mx = mn;
  uint mn_bits = first, mx_bits = first;
  for (uint h = h_begin; h < h_end; ++h) {
    for (uint t = 0u; t < params.tokens; ++t) {
      uint b = load_half_from(h * params.head_stride + t * params.token_stride + c);
      float x = f16_to_f32(b);
      if (x < mn || (x == mn && b == 0x8000u)) { mn = x; mn_bits = b; }
      if (x > mx || (x == mx && b == 0x0000u)) { mx = x; mx_bits = b; }
    }
  }
  ranges.data[id] = f32_to_f16(f16_to_f32(mx_bits) - f16_to_f32(mn_bits));
}
