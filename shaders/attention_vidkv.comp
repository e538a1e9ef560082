#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_ballot : require
// Decode attention straight from one packed VidKV segment (never decoded to fp16 in memory).
// Keys (QuantizedKeys' device layout, group size 32): K_ANOM anomalous channels at 2 bits,
// codes [h][j][T/16], scales/mins [h][j][T/32]; S 1-bit coefficient streams of the N normal
// channels' DFT, codes [h][s][T/32], scales [h][s][T/32]. Scores never inverse-transform a key:
// attention_query.comp transforms the query once per step into [q_c at the anomalous channels,
// stream weights w_s] (q . Re(IDFT(X)) = (1/N) sum_f (Re X_f Re Q_f + Im X_f Im Q_f), Q =
// DFT(q_normal)); a token's score is then sum_j q_j (code * s + mn) + sum_s w_s (+-s_sg).
// The scale is applied to a code once and shared by all RATIO query heads (one multiply-add per
// element more than folding q_c * s per group, but no fold pass and no per-group shared tables,
// which cost lavapipe more than they save).
// Values, VALUE_MODE 0: 1.58-bit trits 5 per byte (per (head, group) block, trit c * 32 + t),
// out_c = sum_t p_t (code_tc * s_cg); 1: 2-bit per channel, codes [h][c][T/16], out_c =
// sum_t p_t (code_tc * s_cg + mn_cg); 2: 2-bit per token (KIVI), codes [h][t][D/16],
// scales/mins [h][t][D/32]. Each decoded value is shared by the RATIO query heads' accumulators.
#include "attention.glsl"
#include "trits.glsl"

layout(constant_id = 4) const uint K_ANOM = 64u;     // anomalous channels
layout(constant_id = 5) const uint STREAMS = 64u;    // coefficient streams (N half, 2N full)
layout(constant_id = 6) const uint VALUE_MODE = 0u;
// 1 when subgroups are exactly 8 invocations (lavapipe): values every lane needs (query values,
// scales, probabilities, code words) are then loaded 8 at a time, one per lane, and handed out
// with subgroupBroadcast, because lavapipe turns every load whose address it cannot prove uniform
// into 8 scalar loads. 0: plain loads (GPUs, where shared-memory broadcast reads are cheap).
layout(constant_id = 7) const uint BCAST8 = 0u;

const uint G = 32u;
const uint SUBGROUPS = WG / 8u;          // sets of 8 invocations that score tokens together
const uint GPP = 1u;                     // groups of 32 tokens such a set scores per pass
const uint VPL = 8u;                     // 2-bit value channels per invocation
const uint TC = 10u;                     // 1.58-bit value channels per invocation (multiple of 5)
const uint TW = TC / 5u * 8u;            // words holding their trits of one group
const uint KS = K_ANOM + STREAMS;

layout(std430, binding = 0) readonly buffer Prepared { float data[]; } prepared;  // [q_heads][KS]
layout(std430, binding = 1) readonly buffer KaCodes { uint data[]; } ka_codes;
layout(std430, binding = 2) readonly buffer KaScales { uint data[]; } ka_scales;
layout(std430, binding = 3) readonly buffer KaMins { uint data[]; } ka_mins;
layout(std430, binding = 4) readonly buffer KnCodes { uint data[]; } kn_codes;
layout(std430, binding = 5) readonly buffer KnScales { uint data[]; } kn_scales;
layout(std430, binding = 6) readonly buffer VCodes { uint data[]; } v_codes;
layout(std430, binding = 7) readonly buffer VScales { uint data[]; } v_scales;
layout(std430, binding = 8) readonly buffer VMins { uint data[]; } v_mins;
layout(std430, binding = 9) writeonly buffer Partials { float data[]; } partials;

layout(push_constant) uniform Params {
  uint kv_heads;
  uint tokens;     // tokens of the segment (a multiple of 32)
  uint slot_base;
} params;

shared float qk[RATIO * (KS > 0u ? KS : 1u)];  // prepared query of this KV head's query heads

float half_at(uint word, uint index) { return unpackHalf2x16(word >> (16u * (index & 1u))).x; }

void main() {
  uint lid = gl_LocalInvocationID.x;
  uint split = gl_WorkGroupID.x;
  uint h = gl_WorkGroupID.y;
  uint q_heads = params.kv_heads * RATIO;
  uint T = params.tokens;
  uint groups = T / G;
  uint start = split * SPLIT;
  uint n = min(SPLIT, T - start);
  uint ngroups = n / G;

  for (uint i = lid; i < RATIO * KS; i += WG) qk[i] = prepared.data[h * RATIO * KS + i];
  barrier();

  // Scores: 8 invocations per GPP groups of 32 tokens, invocation sl owning tokens sl + 8m of
  // each. With BCAST8 they fetch the code words, scale, min and query values of 8 channels at
  // once (channel j0 + sl each) and broadcast them; otherwise every invocation loads them itself.
  // More tokens per invocation means fewer of those fetches per element (lavapipe's main cost).
  uint sg = BCAST8 == 1u ? gl_SubgroupID : lid / 8u;
  uint sl = BCAST8 == 1u ? gl_SubgroupInvocationID : lid % 8u;
  for (uint gp = sg * GPP; gp < ngroups; gp += SUBGROUPS * GPP) {
    uint gs[GPP];
    [[unroll]] for (uint e = 0u; e < GPP; ++e) gs[e] = start / G + min(gp + e, ngroups - 1u);
    float acc[4u * GPP * RATIO];
    [[unroll]] for (uint i = 0u; i < 4u * GPP * RATIO; ++i) acc[i] = 0.0;
    for (uint j0 = 0u; j0 < K_ANOM; j0 += 8u) {
      uint lo_v[GPP], hi_v[GPP];
      float s_v[GPP], m_v[GPP], q_v[RATIO];
      if (BCAST8 == 1u) {
        uint j = min(j0 + sl, K_ANOM - 1u);
        [[unroll]] for (uint e = 0u; e < GPP; ++e) {
          uint w = (h * K_ANOM + j) * (T / 16u) + 2u * gs[e], sidx = (h * K_ANOM + j) * groups + gs[e];
          lo_v[e] = ka_codes.data[w];
          hi_v[e] = ka_codes.data[w + 1u];
          s_v[e] = half_at(ka_scales.data[sidx >> 1], sidx);
          m_v[e] = half_at(ka_mins.data[sidx >> 1], sidx);
        }
        [[unroll]] for (uint r = 0u; r < RATIO; ++r) q_v[r] = qk[r * KS + j];
      }
      [[unroll]] for (uint k = 0u; k < 8u; ++k) {
        if (j0 + k < K_ANOM) {
          uint j = j0 + k;
          float qr[RATIO];
          [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
            qr[r] = BCAST8 == 1u ? subgroupBroadcast(q_v[r], k) : qk[r * KS + j];
          }
          [[unroll]] for (uint e = 0u; e < GPP; ++e) {
            uint lo, hi;
            float s, mn;
            if (BCAST8 == 1u) {
              lo = subgroupBroadcast(lo_v[e], k);
              hi = subgroupBroadcast(hi_v[e], k);
              s = subgroupBroadcast(s_v[e], k);
              mn = subgroupBroadcast(m_v[e], k);
            } else {
              uint w = (h * K_ANOM + j) * (T / 16u) + 2u * gs[e], sidx = (h * K_ANOM + j) * groups + gs[e];
              lo = ka_codes.data[w];
              hi = ka_codes.data[w + 1u];
              s = half_at(ka_scales.data[sidx >> 1], sidx);
              mn = half_at(ka_mins.data[sidx >> 1], sidx);
            }
            [[unroll]] for (uint m = 0u; m < 4u; ++m) {
              float v = float(((m < 2u ? lo : hi) >> (2u * ((sl + 8u * m) & 15u))) & 3u) * s + mn;
              [[unroll]] for (uint r = 0u; r < RATIO; ++r) acc[(e * 4u + m) * RATIO + r] += qr[r] * v;
            }
          }
        }
      }
    }
    for (uint s0 = 0u; s0 < STREAMS; s0 += 8u) {
      uint w_v[GPP];
      float s_v[GPP], q_v[RATIO];
      if (BCAST8 == 1u) {
        uint j = min(s0 + sl, STREAMS - 1u);
        [[unroll]] for (uint e = 0u; e < GPP; ++e) {
          uint sidx = (h * STREAMS + j) * groups + gs[e];
          w_v[e] = kn_codes.data[sidx];
          s_v[e] = half_at(kn_scales.data[sidx >> 1], sidx);
        }
        [[unroll]] for (uint r = 0u; r < RATIO; ++r) q_v[r] = qk[r * KS + K_ANOM + j];
      }
      [[unroll]] for (uint k = 0u; k < 8u; ++k) {
        if (s0 + k < STREAMS) {
          uint j = s0 + k;
          float qr[RATIO];
          [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
            qr[r] = BCAST8 == 1u ? subgroupBroadcast(q_v[r], k) : qk[r * KS + K_ANOM + j];
          }
          [[unroll]] for (uint e = 0u; e < GPP; ++e) {
            uint sidx = (h * STREAMS + j) * groups + gs[e];
            uint w = BCAST8 == 1u ? subgroupBroadcast(w_v[e], k) : kn_codes.data[sidx];
            float s = BCAST8 == 1u ? subgroupBroadcast(s_v[e], k) : half_at(kn_scales.data[sidx >> 1], sidx);
            uint sbits = floatBitsToUint(s);
            [[unroll]] for (uint m = 0u; m < 4u; ++m) {
              // bit 1 decodes to +s, bit 0 to -s: flip the sign bit of s
              uint bit = (w >> (sl + 8u * m)) & 1u;
              float v = uintBitsToFloat(sbits ^ ((bit ^ 1u) << 31));
              [[unroll]] for (uint r = 0u; r < RATIO; ++r) acc[(e * 4u + m) * RATIO + r] += qr[r] * v;
            }
          }
        }
      }
    }
    [[unroll]] for (uint e = 0u; e < GPP; ++e) {
      if (gp + e < ngroups) {
        [[unroll]] for (uint m = 0u; m < 4u; ++m)
          [[unroll]] for (uint r = 0u; r < RATIO; ++r)
            scores[r * SPLIT + (gp + e) * G + sl + 8u * m] = acc[(e * 4u + m) * RATIO + r];
      }
    }
  }
  barrier();
  split_softmax(n);

  uint slot = params.slot_base + split;
  if (VALUE_MODE == 0u) {
    // 1.58-bit values. Invocation L owns the TC channels TC*L + j: their TC x 32 trits are
    // exactly the 32 TC / 5 bytes from byte 32 TC L / 5 of the (head, group) block, so the byte and
    // digit of every (token, channel) is a constant of the unrolled loops: no per-invocation digit
    // phase. Sets of 8 invocations beyond ceil(DIM / TC) skip the work.
    // Digits are d = code + 1 in {0, 1, 2}: the value is d * s - s.
    uint L = lid;
    uint last_word = v_codes.data.length() - 1u;
    uint sl = BCAST8 == 1u ? gl_SubgroupInvocationID : 0u;
    float acc5[TC * RATIO];
    [[unroll]] for (uint i = 0u; i < TC * RATIO; ++i) acc5[i] = 0.0;
    // (the condition is uniform within a set of 8, so the broadcasts stay defined)
    uint busy = (lid & ~7u) < (DIM + TC - 1u) / TC ? ngroups : 0u;
    for (uint gl = 0u; gl < busy; ++gl) {
      uint g = start / G + gl;
      uint b0 = (h * groups + g) * trit_block_bytes(DIM, G) + 32u * TC / 5u * min(L, (DIM - 1u) / TC);
      uint sh = 8u * (b0 & 3u);  // blocks of D = 64 or 256 need not start on a word
      uint w[TW + 1u], a[TW];
      [[unroll]] for (uint i = 0u; i <= TW; ++i) w[i] = v_codes.data[min((b0 >> 2) + i, last_word)];
      [[unroll]] for (uint i = 0u; i < TW; ++i) a[i] = sh == 0u ? w[i] : (w[i] >> sh) | (w[i + 1u] << (32u - sh));
      // The scale goes onto each decoded trit (one multiply-add) rather than into a per-group
      // partial sum: TC x RATIO accumulators already fill the registers.
      float sc[TC];
      [[unroll]] for (uint j = 0u; j < TC; ++j) {
        uint sidx = (h * DIM + min(TC * L + j, DIM - 1u)) * groups + g;
        sc[j] = half_at(v_scales.data[sidx >> 1], sidx);
      }
      [[unroll]] for (uint t0 = 0u; t0 < G; t0 += 8u) {
        float pv[RATIO];
        if (BCAST8 == 1u) {
          [[unroll]] for (uint r = 0u; r < RATIO; ++r) pv[r] = scores[r * SPLIT + gl * G + t0 + sl];
        }
        [[unroll]] for (uint k = 0u; k < 8u; ++k) {
          uint t = t0 + k;
          float p[RATIO];
          [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
            p[r] = BCAST8 == 1u ? subgroupBroadcast(pv[r], k) : scores[r * SPLIT + gl * G + t];
          }
          [[unroll]] for (uint j = 0u; j < TC; ++j) {
            uint u = j * G + t;  // trit index within the invocation's 32 bytes
            uint byte_value = (a[u / 20u] >> (8u * ((u / 5u) & 3u))) & 255u;
            float d = float((((byte_value * POW3[u % 5u]) & 255u) * 3u) >> 8);
            float v = d * sc[j] - sc[j];  // code = d - 1
            [[unroll]] for (uint r = 0u; r < RATIO; ++r) acc5[j * RATIO + r] += p[r] * v;
          }
        }
      }
    }
    [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
      uint o = (slot * q_heads + h * RATIO + r) * (DIM + 2u);
      if (lid == 0u) {
        partials.data[o] = stat_m[r];
        partials.data[o + 1u] = stat_l[r];
      }
      [[unroll]] for (uint j = 0u; j < TC; ++j) {
        uint c = TC * L + j;
        if (c < DIM) partials.data[o + 2u + c] = acc5[j * RATIO + r];
      }
    }
    return;
  }

  // 2-bit per-token values (KIVI): plain loop, one invocation per channel.
  float acc[RATIO * CPL];
  [[unroll]] for (uint i = 0u; i < RATIO * CPL; ++i) acc[i] = 0.0;
  [[unroll]] for (uint i = 0u; i < CPL; ++i) {
    uint c = lid + i * WG;
    if (VALUE_MODE == 2u) {
      for (uint t = 0u; t < n; ++t) {
        uint row = h * T + start + t;
        uint code = (v_codes.data[row * (DIM / 16u) + c / 16u] >> (2u * (c & 15u))) & 3u;
        uint sidx = row * (DIM / G) + c / G;
        float v = float(code) * half_at(v_scales.data[sidx >> 1], sidx) + half_at(v_mins.data[sidx >> 1], sidx);
        [[unroll]] for (uint r = 0u; r < RATIO; ++r) acc[r * CPL + i] += scores[r * SPLIT + t] * v;
      }
    }
  }
  if (VALUE_MODE == 1u) {
    // 2-bit values: invocation L owns the VPL channels L * VPL + i; their code words of a group
    // (2 per channel) stay in registers and each token's probabilities are fetched once for all
    // of them. Sets of 8 invocations beyond DIM / VPL skip the work (fewer fetches in all).
    uint sl = BCAST8 == 1u ? gl_SubgroupInvocationID : 0u;
    float accv[VPL * RATIO];
    [[unroll]] for (uint i = 0u; i < VPL * RATIO; ++i) accv[i] = 0.0;
    uint busy = lid < DIM / VPL ? ngroups : 0u;
    for (uint gl = 0u; gl < busy; ++gl) {
      uint g = start / G + gl;
      uint w0[VPL], w1[VPL];
      float sc[VPL], mn[VPL];
      [[unroll]] for (uint i = 0u; i < VPL; ++i) {
        uint row = h * DIM + lid * VPL + i;
        w0[i] = v_codes.data[row * (T / 16u) + g * 2u];
        w1[i] = v_codes.data[row * (T / 16u) + g * 2u + 1u];
        uint sidx = row * groups + g;
        sc[i] = half_at(v_scales.data[sidx >> 1], sidx);
        mn[i] = half_at(v_mins.data[sidx >> 1], sidx);
      }
      [[unroll]] for (uint t0 = 0u; t0 < G; t0 += 8u) {
        float pv[RATIO];
        if (BCAST8 == 1u) {
          [[unroll]] for (uint r = 0u; r < RATIO; ++r) pv[r] = scores[r * SPLIT + gl * G + t0 + sl];
        }
        [[unroll]] for (uint k = 0u; k < 8u; ++k) {
          uint t = t0 + k;
          float p[RATIO];
          [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
            p[r] = BCAST8 == 1u ? subgroupBroadcast(pv[r], k) : scores[r * SPLIT + gl * G + t];
          }
          [[unroll]] for (uint i = 0u; i < VPL; ++i) {
            float v = float(((t < 16u ? w0[i] : w1[i]) >> (2u * (t & 15u))) & 3u) * sc[i] + mn[i];
            [[unroll]] for (uint r = 0u; r < RATIO; ++r) accv[i * RATIO + r] += p[r] * v;
          }
        }
      }
    }
    [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
      uint o = (slot * q_heads + h * RATIO + r) * (DIM + 2u);
      if (lid == 0u) {
        partials.data[o] = stat_m[r];
        partials.data[o + 1u] = stat_l[r];
      }
      [[unroll]] for (uint i = 0u; i < VPL; ++i) {
        if (lid < DIM / VPL) partials.data[o + 2u + lid * VPL + i] = accv[i * RATIO + r];
      }
    }
    return;
  }

  [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
    uint o = (slot * q_heads + h * RATIO + r) * (DIM + 2u);
    if (lid == 0u) {
      partials.data[o] = stat_m[r];
      partials.data[o + 1u] = stat_l[r];
    }
    [[unroll]] for (uint i = 0u; i < CPL; ++i) {
      uint c = lid + i * WG;
      if (c < DIM) partials.data[o + 2u + c] = acc[r * CPL + i];
    }
  }
}
