#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
// Built twice (shaders/CMakeLists.txt): "attention_fp16" with shared-memory reductions only, and
// "attention_fp16.subgroup" with ATTENTION_SUBGROUP_ARITHMETIC, which declares subgroup arithmetic
// (see attention.glsl); both name their pipelines attention_fp16.
#ifdef ATTENTION_SUBGROUP_ARITHMETIC
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
// Decode attention over fp16 K and V (the baseline, and the fp16 residual of a VidKV layer); the
// portable path (any subgroup size: GPUs). attention_fp16_sg8.comp computes the same for
// subgroups of exactly 8 (CPU drivers).
// K, V halves at h * head_stride + t * token_stride + c; q fp32 [q_heads][DIM]. Writes the
// partial (m, l, out) of split gl_WorkGroupID.x of the KV head (and chunk of its query heads) of
// gl_WorkGroupID.y (see attention.glsl, attention_heads.glsl).
//
// Written for GPUs, where this shader is bandwidth-bound (512 bytes per token and KV head) if every
// invocation keeps several 16-byte loads in flight and spends few instructions per loaded byte:
// - Scores: each invocation owns TPL tokens and walks their key rows 8 halves (one 16-byte load)
//   at a time, the next 8 already loading while the current ones are used. The query is read
//   straight from its buffer at addresses the same for the whole workgroup (scalar loads on AMD, a
//   broadcast elsewhere), so each multiply-add costs one instruction and no shared-memory read.
// - Values: the invocations of a row group own 8 channels each (one 16-byte load per token), so
//   the group reads a value row as one contiguous block; ROWS groups take every ROWS-th token, 4
//   loads in flight, and are summed through shared memory at the end.
#define ATTENTION_SUBGROUP_REDUCE_ID 4
#define ATTENTION_Q_PER_KV_ID 5
#include "attention.glsl"

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
  float scale;        // softmax scale
  int limit;          // causal: query z sees this dispatch's tokens t < limit + z (INT_MAX: all)
  uint query_slots;   // causal: slots per query (query z's slots start at z * query_slots)
} params;

const uint WORDS = DIM / 8u;  // 16-byte words per key or value row
// Tokens per invocation in the score phase: up to 4 at once, fewer when the split is short.
const uint TPL = SPLIT % (4u * WG) == 0u ? 4u : (SPLIT % (2u * WG) == 0u ? 2u : 1u);
const uint ROWS = WG / WORDS;  // row groups in the value phase
const uint VIF = 4u;           // value rows in flight per invocation
const uint PU = 2u;            // value rows whose weights are read together (4 would spill)

// Per-group value sums, added up group by group (RATIO x DIM floats, as attention_fp16 was sized).
shared float out_sum[RATIO * DIM];

void main() {
  uint lid = gl_LocalInvocationID.x;
  uint split = gl_WorkGroupID.x;
  uint h = group_kv_head();
  uint q_heads = params.kv_heads * Q_PER_KV;
  uint start = split * SPLIT;
  uint n = min(SPLIT, params.tokens - start);
  uint z = gl_WorkGroupID.z;  // causal: the query (0 otherwise)
  int visible = params.limit + int(z) - int(start);  // tokens of the split this query sees
  uint qbase = (z * params.kv_heads + h) * Q_PER_KV * DIM;
  uint row0 = (h * params.head_stride + start * params.token_stride) / 8u;  // 16-byte words
  uint row_words = params.token_stride / 8u;

  for (uint t0 = 0u; t0 < n; t0 += WG * TPL) {
    float acc[TPL * RATIO];
    [[unroll]] for (uint i = 0u; i < TPL * RATIO; ++i) acc[i] = 0.0;
    uint base[TPL];
    [[unroll]] for (uint m = 0u; m < TPL; ++m) {
      uint t = min(t0 + lid + WG * m, n - 1u);  // past the end: a copy of the last token, not stored
      base[m] = row0 + t * row_words;
    }
    // Two register sets: while one word of every row is used, the next one is loading into the
    // other set (the last step reloads the final word, unused).
    uvec4 kw[2][TPL];
    [[unroll]] for (uint m = 0u; m < TPL; ++m) kw[0][m] = keys.data[base[m]];
    for (uint w0 = 0u; w0 < WORDS; w0 += 2u) {
      [[unroll]] for (uint hf = 0u; hf < 2u; ++hf) {
        uint w = w0 + hf;
        [[unroll]] for (uint m = 0u; m < TPL; ++m) kw[1u - hf][m] = keys.data[base[m] + min(w + 1u, WORDS - 1u)];
        [[unroll]] for (uint c = 0u; c < 8u; ++c) {
          float k[TPL];
          [[unroll]] for (uint m = 0u; m < TPL; ++m) {
            vec2 pair = unpackHalf2x16(kw[hf][m][c / 2u]);
            k[m] = (c & 1u) == 0u ? pair.x : pair.y;
          }
          [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
            float q = query.data[qbase + head_read(r) * DIM + w * 8u + c];
            [[unroll]] for (uint m = 0u; m < TPL; ++m) acc[m * RATIO + r] += q * k[m];
          }
        }
      }
    }
    [[unroll]] for (uint m = 0u; m < TPL; ++m) {
      uint t = t0 + lid + WG * m;
      if (t < n) {
        [[unroll]] for (uint r = 0u; r < RATIO; ++r) scores[r * SPLIT + t] = int(t) < visible ? acc[m * RATIO + r] * params.scale : -3.0e38;
      }
    }
  }
  barrier();
  split_softmax(n);

  // Value phase: invocation (row group g, word j) owns channels 8j..8j+7 of tokens g, g + ROWS, ...
  uint g = lid / WORDS;
  uint j = lid % WORDS;
  float o[RATIO * 8u];
  [[unroll]] for (uint i = 0u; i < RATIO * 8u; ++i) o[i] = 0.0;
  if (g < ROWS) {
    // Blocks of VIF rows (tokens t0 + u * ROWS) in two register sets, as in the score phase: one
    // block's VIF loads are in flight while the other's rows are used. A token past the end reads
    // the last one's row with weight 0 (no branch, so the loads stay in flight together).
    uvec4 vw[2][VIF];
    [[unroll]] for (uint u = 0u; u < VIF; ++u) vw[0][u] = vals.data[row0 + min(g + u * ROWS, n - 1u) * row_words + j];
    for (uint b0 = g; b0 < n; b0 += 2u * ROWS * VIF) {
      [[unroll]] for (uint hf = 0u; hf < 2u; ++hf) {
        uint t0 = b0 + hf * ROWS * VIF;
        [[unroll]] for (uint u = 0u; u < VIF; ++u) {
          uint t = min(t0 + (u + VIF) * ROWS, n - 1u);
          vw[1u - hf][u] = vals.data[row0 + t * row_words + j];
        }
        // PU rows' weights read before the first is used: one shared-memory round trip per PU
        // rows, not one per few reads (on GPUs each is a wait in the wave's serial chain)
        [[unroll]] for (uint u0 = 0u; u0 < VIF; u0 += PU) {
          // (raw reads into pb: a multiply right after each read would wait for it there)
          float pb[PU * RATIO], live[PU];
          [[unroll]] for (uint du = 0u; du < PU; ++du) {
            uint t = t0 + (u0 + du) * ROWS;
            live[du] = t < n ? 1.0 : 0.0;
            t = min(t, n - 1u);
            [[unroll]] for (uint r = 0u; r < RATIO; ++r) pb[du * RATIO + r] = scores[r * SPLIT + t];
          }
          [[unroll]] for (uint du = 0u; du < PU; ++du) {
            uint u = u0 + du;
            vec2 v[4];
            [[unroll]] for (uint e = 0u; e < 4u; ++e) v[e] = unpackHalf2x16(vw[hf][u][e]);
            [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
              float p = pb[du * RATIO + r] * live[du];
              [[unroll]] for (uint e = 0u; e < 4u; ++e) {
                o[r * 8u + 2u * e] += p * v[e].x;
                o[r * 8u + 2u * e + 1u] += p * v[e].y;
              }
            }
          }
        }
      }
    }
  }
  // Sum the row groups: the last one stores, the others add in turn, group 0 writes the partial.
  // (the running sums read before the first store: one round trip per row group)
  for (uint k = ROWS - 1u; k > 0u; --k) {
    if (g == k) {
      float prev[RATIO * 8u];
      [[unroll]] for (uint r = 0u; r < RATIO; ++r)
        [[unroll]] for (uint i = 0u; i < 8u; ++i) prev[r * 8u + i] = k == ROWS - 1u ? 0.0 : out_sum[r * DIM + 8u * j + i];
      [[unroll]] for (uint r = 0u; r < RATIO; ++r)
        [[unroll]] for (uint i = 0u; i < 8u; ++i) out_sum[r * DIM + 8u * j + i] = prev[r * 8u + i] + o[r * 8u + i];
    }
    barrier();
  }
  uint slot = z * params.query_slots + params.slot_base + split;
  if (g == 0u) {
    [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
      if (!head_stored(r)) continue;
      uint base = (slot * q_heads + h * Q_PER_KV + head_in_kv(r)) * (DIM + 2u);
      if (j == 0u) {
        partials.data[base] = stat_m[r];
        partials.data[base + 1u] = stat_l[r];
      }
      [[unroll]] for (uint i = 0u; i < 8u; ++i) {
        uint a = r * DIM + 8u * j + i;
        partials.data[base + 2u + 8u * j + i] = o[r * 8u + i] + (ROWS > 1u ? out_sum[a] : 0.0);
      }
    }
  }
}
