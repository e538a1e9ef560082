#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
// Decode attention over fp16 K and V (the baseline, and the fp16 residual of a VidKV layer); the
// portable path (any subgroup size: GPUs), with the structure of attention_vidkv.comp.
// attention_fp16_sg8.comp computes the same for subgroups of exactly 8 (CPU drivers).
// K, V halves at h * head_stride + t * token_stride + c; q fp32 [q_heads][DIM]. Writes the
// partial (m, l, out) of split gl_WorkGroupID.x of KV head gl_WorkGroupID.y (see attention.glsl).
// Scores: 8 invocations per 32 tokens, each reading its tokens' key rows 8 halves at a time.
// Values: one invocation per channel pair, so one 32-bit load serves two channels.
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
// Channel pairs per invocation in the value phase: each token's probabilities, fetched once per
// invocation, serve 8 channels; sets of 8 invocations beyond PAIRS / PPL skip the work.
const uint PPL = 4u;

void main() {
  uint lid = gl_LocalInvocationID.x;
  uint split = gl_WorkGroupID.x;
  uint h = gl_WorkGroupID.y;
  uint q_heads = params.kv_heads * RATIO;
  uint start = split * SPLIT;
  uint n = min(SPLIT, params.tokens - start);

  for (uint i = lid; i < RATIO * DIM; i += WG) qs[i] = query.data[h * RATIO * DIM + i] * params.scale;
  barrier();

  uint sg = lid / 8u;
  uint sl = lid % 8u;
  for (uint t0 = sg * 32u; t0 < n; t0 += WG * 4u) {
    float acc[4u * RATIO];
    [[unroll]] for (uint i = 0u; i < 4u * RATIO; ++i) acc[i] = 0.0;
    uint base[4];
    [[unroll]] for (uint m = 0u; m < 4u; ++m) {
      uint t = min(t0 + sl + 8u * m, n - 1u);  // past the end: a copy of the last token, not stored
      base[m] = (h * params.head_stride + (start + t) * params.token_stride) / 8u;
    }
    for (uint w = 0u; w < DIM / 8u; ++w) {
      vec2 k[4][4];
      [[unroll]] for (uint m = 0u; m < 4u; ++m) {
        uvec4 kw = keys.data[base[m] + w];
        k[m][0] = unpackHalf2x16(kw.x);
        k[m][1] = unpackHalf2x16(kw.y);
        k[m][2] = unpackHalf2x16(kw.z);
        k[m][3] = unpackHalf2x16(kw.w);
      }
      [[unroll]] for (uint c = 0u; c < 8u; ++c) {
        float qr[RATIO];
        [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
          qr[r] = qs[r * DIM + w * 8u + c];
        }
        [[unroll]] for (uint m = 0u; m < 4u; ++m) {
          float kv = (c & 1u) == 0u ? k[m][c / 2u].x : k[m][c / 2u].y;
          [[unroll]] for (uint r = 0u; r < RATIO; ++r) acc[m * RATIO + r] += qr[r] * kv;
        }
      }
    }
    [[unroll]] for (uint m = 0u; m < 4u; ++m) {
      uint t = t0 + sl + 8u * m;
      if (t < n) {
        [[unroll]] for (uint r = 0u; r < RATIO; ++r) scores[r * SPLIT + t] = acc[m * RATIO + r];
      }
    }
  }
  barrier();
  split_softmax(n);

  vec2 out_acc[RATIO * PPL];
  [[unroll]] for (uint i = 0u; i < RATIO * PPL; ++i) out_acc[i] = vec2(0.0);
  uint busy = lid < PAIRS / PPL ? n : 0u;
  for (uint t0 = 0u; t0 < busy; t0 += 8u) {
    [[unroll]] for (uint k = 0u; k < 8u; ++k) {
      uint t = t0 + k;
      if (t < n) {
        float p[RATIO];
        [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
          p[r] = scores[r * SPLIT + t];
        }
        uint base = (h * params.head_stride + (start + t) * params.token_stride) / 2u;
        [[unroll]] for (uint i = 0u; i < PPL; ++i) {
          uint pair = lid * PPL + i;
          vec2 v = unpackHalf2x16(vals.data[base + pair]);
          [[unroll]] for (uint r = 0u; r < RATIO; ++r) out_acc[r * PPL + i] += p[r] * v;
        }
      }
    }
  }

  uint slot = params.slot_base + split;
  [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
    uint o = (slot * q_heads + h * RATIO + r) * (DIM + 2u);
    if (lid == 0u) {
      partials.data[o] = stat_m[r];
      partials.data[o + 1u] = stat_l[r];
    }
    [[unroll]] for (uint i = 0u; i < PPL; ++i) {
      uint pair = lid * PPL + i;
      if (lid < PAIRS / PPL) {
        partials.data[o + 2u + 2u * pair] = out_acc[r * PPL + i].x;
        partials.data[o + 3u + 2u * pair] = out_acc[r * PPL + i].y;
      }
    }
  }
}
