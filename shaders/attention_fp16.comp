#version 450
#extension GL_GOOGLE_include_directive : require
// Decode attention over fp16 K and V (the baseline, and the fp16 residual of a VidKV layer):
// K, V halves at h * head_stride + t * token_stride + c; q fp32 [q_heads][DIM]. Writes the
// partial (m, l, out) of split gl_WorkGroupID.x of KV head gl_WorkGroupID.y (see attention.glsl).
// Scores: one invocation per token, reading its key row 8 halves at a time against the query in
// shared memory. Values: one invocation per channel pair, so one 32-bit load serves two channels.
#include "attention.glsl"

layout(std430, binding = 0) readonly buffer Query { float data[]; } query;
layout(std430, binding = 1) readonly buffer Keys { uvec4 data[]; } keys;
layout(std430, binding = 2) readonly buffer Values { uint data[]; } vals;
layout(std430, binding = 3) writeonly buffer Partials { float data[]; } partials;

layout(push_constant) uniform Params {
  uint kv_heads;
  uint tokens;        // tokens of this dispatch
  uint head_stride;   // elements (halves); multiples of 8
  uint token_stride;
  uint slot_base;     // partial slot of split 0
  float scale;        // softmax scale, folded into the query
} params;

shared float qs[RATIO * DIM];

const uint PAIRS = DIM / 2u;
const uint PPL = (PAIRS + WG - 1u) / WG;  // channel pairs per invocation

void main() {
  uint lid = gl_LocalInvocationID.x;
  uint split = gl_WorkGroupID.x;
  uint h = gl_WorkGroupID.y;
  uint q_heads = params.kv_heads * RATIO;
  uint start = split * SPLIT;
  uint n = min(SPLIT, params.tokens - start);

  for (uint i = lid; i < RATIO * DIM; i += WG) qs[i] = query.data[h * RATIO * DIM + i] * params.scale;
  barrier();

  for (uint t = lid; t < n; t += WG) {
    uint base = (h * params.head_stride + (start + t) * params.token_stride) / 8u;
    float acc[RATIO];
    for (uint r = 0u; r < RATIO; ++r) acc[r] = 0.0;
    for (uint w = 0u; w < DIM / 8u; ++w) {
      uvec4 k = keys.data[base + w];
      vec2 k0 = unpackHalf2x16(k.x), k1 = unpackHalf2x16(k.y);
      vec2 k2 = unpackHalf2x16(k.z), k3 = unpackHalf2x16(k.w);
      for (uint r = 0u; r < RATIO; ++r) {
        uint q0 = r * DIM + w * 8u;
        acc[r] += qs[q0] * k0.x + qs[q0 + 1u] * k0.y + qs[q0 + 2u] * k1.x + qs[q0 + 3u] * k1.y +
                  qs[q0 + 4u] * k2.x + qs[q0 + 5u] * k2.y + qs[q0 + 6u] * k3.x + qs[q0 + 7u] * k3.y;
      }
    }
    for (uint r = 0u; r < RATIO; ++r) scores[r * SPLIT + t] = acc[r];
  }
  barrier();
  split_softmax(n);

  vec2 out_acc[RATIO * PPL];
  for (uint i = 0u; i < RATIO * PPL; ++i) out_acc[i] = vec2(0.0);
  for (uint t = 0u; t < n; ++t) {
    uint base = (h * params.head_stride + (start + t) * params.token_stride) / 2u;
    for (uint i = 0u; i < PPL; ++i) {
      uint pair = lid + i * WG;
      if (pair < PAIRS) {
        vec2 v = unpackHalf2x16(vals.data[base + pair]);
        for (uint r = 0u; r < RATIO; ++r) out_acc[r * PPL + i] += scores[r * SPLIT + t] * v;
      }
    }
  }

  uint slot = params.slot_base + split;
  for (uint r = 0u; r < RATIO; ++r) {
    uint o = (slot * q_heads + h * RATIO + r) * (DIM + 2u);
    if (lid == 0u) {
      partials.data[o] = stat_m[r];
      partials.data[o + 1u] = stat_l[r];
    }
    for (uint i = 0u; i < PPL; ++i) {
      uint pair = lid + i * WG;
      if (pair < PAIRS) {
        partials.data[o + 2u + 2u * pair] = out_acc[r * PPL + i].x;
        partials.data[o + 3u + 2u * pair] = out_acc[r * PPL + i].y;
      }
    }
  }
}
