#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_KHR_shader_subgroup_basic : require
// Decode attention over fp16 K and V for subgroups of exactly 8: the baseline beside
// attention_vidkv_sg8.comp, with the same structure (attention_sg8.glsl) and the same treatment
// (shuffled query pages, running softmax, channel-owning lanes), so that the two differ only in
// how a cached element is fetched and decoded. K, V halves at h * head_stride + t * token_stride
// + c; q fp32 [q_heads][DIM]. Any token count (the residual of a VidKV layer too).
#define ATTENTION_Q_PER_KV_ID 4
#include "attention_sg8.glsl"

layout(std430, binding = 0) readonly buffer Query { float data[]; } query;
layout(std430, binding = 1) readonly buffer Keys { uvec4 data[]; } keys;
layout(std430, binding = 2) readonly buffer Values { uvec4 data[]; } vals;
layout(std430, binding = 3) writeonly buffer Partials { float data[]; } partials;

layout(push_constant) uniform Params {
  uint kv_heads;
  uint tokens;        // tokens of this dispatch
  uint head_stride;   // elements (halves); multiples of 8
  uint token_stride;
  uint slot_base;     // partial slot of split 0
  float scale;        // softmax scale, folded into the query
  int limit;          // causal: query z sees this dispatch's tokens t < limit + z (INT_MAX: all)
  uint query_slots;   // causal: slots per query (query z's slots start at z * query_slots)
} params;

const uint PAGES = (DIM + 63u) / 64u;           // query pages of 64 channels (8 chunks of 8)
const uint VPASS = (DIM + 63u) / 64u;           // value passes: lane l owns channels 64b + 8l .. +7

float qp[PAGES * RATIO * 8u];  // lane l of qp[(p * RATIO + r) * 8 + k]: scale * q_r[64p + 8l + k]
float outv[VPASS * 8u * RATIO];

void main() {
  uint lane = lane_id();
  uint split = gl_WorkGroupID.x;
  uint h = group_kv_head();
  uint q_heads = params.kv_heads * Q_PER_KV;
  uint z = gl_WorkGroupID.z;  // causal: the query (0 otherwise)
  uint start = split * SPLIT;
  uint n = min(SPLIT, params.tokens - start);
  int visible = params.limit + int(z) - int(start);  // tokens of the split this query sees

  [[unroll]] for (uint p = 0u; p < PAGES; ++p)
    [[unroll]] for (uint r = 0u; r < RATIO; ++r)
      [[unroll]] for (uint k = 0u; k < 8u; ++k) {
        uint c = 64u * p + 8u * lane + k;
        float q = query.data[((z * params.kv_heads + h) * Q_PER_KV + head_read(r)) * DIM + min(c, DIM - 1u)] * params.scale;
        qp[(p * RATIO + r) * 8u + k] = c < DIM ? q : 0.0;
      }
  softmax_begin();
  [[unroll]] for (uint i = 0u; i < VPASS * 8u * RATIO; ++i) outv[i] = 0.0;

  for (uint t0 = 0u; t0 < n; t0 += G) {
    // Scores: lane l reads the key rows of tokens t0 + l + 8m, 8 halves (one uvec4) per chunk.
    uint rows[4];
    [[unroll]] for (uint m = 0u; m < 4u; ++m) {
      uint t = min(t0 + lane + 8u * m, n - 1u);  // past the end: a copy of the last token, weight 0
      rows[m] = (h * params.head_stride + (start + t) * params.token_stride) / 8u;
    }
    [[unroll]] for (uint i = 0u; i < 4u * RATIO; ++i) grp_score[i] = 0.0;
    [[unroll]] for (uint p = 0u; p < PAGES; ++p) {
      uint chunks = min(8u, (DIM - 64u * p) / 8u);
      for (uint c = 0u; c < chunks; ++c) {
        uvec4 kw[4];
        [[unroll]] for (uint m = 0u; m < 4u; ++m) kw[m] = keys.data[rows[m] + 8u * p + c];
        [[unroll]] for (uint k = 0u; k < 8u; ++k) {
          float qr[RATIO];
          [[unroll]] for (uint r = 0u; r < RATIO; ++r) qr[r] = subgroupShuffle(qp[(p * RATIO + r) * 8u + k], c);
          [[unroll]] for (uint m = 0u; m < 4u; ++m) {
            vec2 pair = unpackHalf2x16(kw[m][k / 2u]);
            float kv = (k & 1u) == 0u ? pair.x : pair.y;
            [[unroll]] for (uint r = 0u; r < RATIO; ++r) grp_score[m * RATIO + r] = fma(qr[r], kv, grp_score[m * RATIO + r]);
          }
        }
      }
    }
    [[unroll]] for (uint m = 0u; m < 4u; ++m)
      if (t0 + lane + 8u * m >= n || int(t0 + lane + 8u * m) >= visible) [[unroll]] for (uint r = 0u; r < RATIO; ++r) grp_score[m * RATIO + r] = -3.0e38;
    softmax_group();
    // Values: lane l of pass b reads one uvec4 (channels 64b + 8l .. +7) of each token's row.
    [[unroll]] for (uint b = 0u; b < VPASS; ++b) {
      uvec4 vw[G];
      [[unroll]] for (uint t = 0u; t < G; ++t) {
        uint row = (h * params.head_stride + (start + min(t0 + t, n - 1u)) * params.token_stride) / 8u;
        vw[t] = vals.data[row + 8u * b + lane];
      }
      [[unroll]] for (uint k = 0u; k < 8u; ++k) {
        float vsum[RATIO];
        [[unroll]] for (uint r = 0u; r < RATIO; ++r) vsum[r] = 0.0;
        [[unroll]] for (uint t = 0u; t < G; ++t) {
          vec2 pair = unpackHalf2x16(vw[t][k / 2u]);
          float v = (k & 1u) == 0u ? pair.x : pair.y;
          [[unroll]] for (uint r = 0u; r < RATIO; ++r) vsum[r] = fma(pb[t * RATIO + r], v, vsum[r]);
        }
        [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
          uint o = (b * 8u + k) * RATIO + r;
          outv[o] = fma(outv[o], grp_alpha[r], vsum[r]);
        }
      }
    }
  }

  uint slot = z * params.query_slots + params.slot_base + split;
  [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
    if (!head_stored(r)) continue;
    uint o = (slot * q_heads + h * Q_PER_KV + head_in_kv(r)) * (DIM + 2u);
    if (lane == 0u) {
      partials.data[o] = run_m[r];
      partials.data[o + 1u] = run_l[r];
    }
    [[unroll]] for (uint b = 0u; b < VPASS; ++b)
      [[unroll]] for (uint k = 0u; k < 8u; ++k) {
        uint c = 64u * b + 8u * lane + k;
        if (c < DIM) partials.data[o + 2u + c] = outv[(b * 8u + k) * RATIO + r];
      }
  }
}
