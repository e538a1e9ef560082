#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_KHR_shader_subgroup_basic : require
// Decode attention straight from one packed VidKV segment, for subgroups of exactly 8 (see
// attention_sg8.glsl for the structure and why). Same inputs, outputs and arithmetic as
// attention_vidkv.comp, which GPUs run:
// Keys (group size KG): K_ANOM anomalous channels at 2 bits, codes [h][j][T/16], scales/mins
// [h][j][T/KG]; STREAMS 1-bit coefficient streams of the normal channels' DFT, codes [h][s][T/32],
// scales [h][s][T/KG]. The prepared query (attention_query.comp) holds per query head the weights
// of the anomalous channels, then one weight per stream; a token's score is
// sum_j q_j (code * s + mn) + sum_s w_s (+-s_sg).
// Values (group size VG), VALUE_MODE 0: trits 5 per byte (per (head, group) block, trit c * VG + t),
// out_c = sum_g s_cg (sum_t p_t d_tc - sum_t p_t) with digits d = code + 1; 1: 2 bits per channel,
// codes [h][c][T/16]; 2: 2 bits per token (KIVI), codes [h][t][DIM/16], scales/mins [h][t][DIM/VG];
// 3: semantic token protection: the trits of the T - n other tokens in bindings 6-7, the 2-bit
// codes of the n protected tokens in bindings 10-12, and token_map[t] = index of token t in its
// part (bit 31: protected).
#define ATTENTION_Q_PER_KV_ID 7
#include "attention_sg8.glsl"
#include "trits.glsl"

layout(constant_id = 4) const uint K_ANOM = 64u;     // anomalous channels
layout(constant_id = 5) const uint STREAMS = 64u;    // coefficient streams (N half, 2N full)
layout(constant_id = 6) const uint VALUE_MODE = 0u;
// Group sizes (32, 64 or 128) of the keys' and the values' scales: the shader walks groups of G =
// 32 tokens (blocks) whatever they are; only the addressing changes (block g's scales are those of
// group g / (KG / G) or g / (VG / G)). KG = VG = 32 compiles to the code of before.
layout(constant_id = 8) const uint KG = 32u;
layout(constant_id = 9) const uint VG = 32u;
const uint KBPG = KG / G, VBPG = VG / G;  // blocks per key / value group

const uint KS = K_ANOM + STREAMS;
const uint KPAGES = (K_ANOM + 63u) / 64u;   // query pages of 64 channels (8 chunks of 8)
const uint SPAGES = (STREAMS + 63u) / 64u;
const uint BLOCKS = (DIM + 4u) / 5u;        // runs of 5 channels: 32 bytes of trits per group
const uint TPASS = (BLOCKS + 7u) / 8u;      // passes of 8 lanes x 5 channels
// 2-bit values: passes of 8 lanes x 4 channels; at head dims that are not a multiple of 32 (80,
// 112) the last pass has channels past DIM, which read channel DIM - 1 and are not stored.
const uint VPASS = (DIM + 31u) / 32u;
const bool VWHOLE = DIM % 32u == 0u;
const bool TRIT_CHANNELS = VALUE_MODE == 0u || VALUE_MODE == 3u;
const uint OUTS = TRIT_CHANNELS ? TPASS * 5u : VPASS * 4u;  // output channels per lane

layout(std430, binding = 0) readonly buffer Prepared { float data[]; } prepared;  // [q_heads][KS]
layout(std430, binding = 1) readonly buffer KaCodes { uvec2 data[]; } ka_codes;
layout(std430, binding = 2) readonly buffer KaScales { uint data[]; } ka_scales;
layout(std430, binding = 3) readonly buffer KaMins { uint data[]; } ka_mins;
layout(std430, binding = 4) readonly buffer KnCodes { uint data[]; } kn_codes;
layout(std430, binding = 5) readonly buffer KnScales { uint data[]; } kn_scales;
layout(std430, binding = 6) readonly buffer VCodes { uint data[]; } v_codes;
layout(std430, binding = 7) readonly buffer VScales { uint data[]; } v_scales;
layout(std430, binding = 8) readonly buffer VMins { uint data[]; } v_mins;
layout(std430, binding = 9) writeonly buffer Partials { float data[]; } partials;
layout(std430, binding = 10) readonly buffer HCodes { uvec2 data[]; } h_codes;
layout(std430, binding = 11) readonly buffer HScales { uint data[]; } h_scales;
layout(std430, binding = 12) readonly buffer HMins { uint data[]; } h_mins;
layout(std430, binding = 13) readonly buffer TokenMap { uint data[]; } token_map;

layout(push_constant) uniform Params {
  uint kv_heads;
  uint tokens;       // tokens of the segment (a multiple of 32)
  uint slot_base;
  uint protected_tokens;  // VALUE_MODE 3: n (a multiple of 32)
  layout(offset = 20) uint visible;  // tokens attended: later ones get no weight (a truncated cache)
  int limit;              // causal: query z sees the segment's tokens t < limit + z (INT_MAX: all)
  uint query_slots;       // causal: slots per query (query z's slots start at z * query_slots)
} params;

// STP: scores of the split by part slot, [r][slot]: the other tokens' part groups the split
// touches from slot 0, then the protected tokens' from the next multiple of 32 (at most SPLIT + 96
// slots in all).
const uint PART_SLOTS = SPLIT + 3u * G;
shared float part_scores[VALUE_MODE == 3u ? RATIO * PART_SLOTS : 1u];

float half_at(uint word, uint index) { return unpackHalf2x16(word >> (16u * (index & 1u))).x; }

// Query pages: lane l of qa[(p * RATIO + r) * 8 + k] holds head r's weight of anomalous channel
// 64p + 8l + k (0 past K_ANOM); qs likewise for the streams. Chunk c's weight of channel 8c + k
// is then subgroupShuffle(page, c): one permute, where a query array in registers indexed by
// channel would need the channel loop unrolled (minutes of LLVM time).
float qa[KPAGES * RATIO * 8u + 1u];
float qs[SPAGES * RATIO * 8u + 1u];
float outv[OUTS * RATIO];  // outv[i * RATIO + r]: head r, i-th channel of the lane

void load_query(uint h) {
  [[unroll]] for (uint p = 0u; p < KPAGES; ++p)
    [[unroll]] for (uint r = 0u; r < RATIO; ++r)
      [[unroll]] for (uint k = 0u; k < 8u; ++k) {
        uint j = 64u * p + 8u * lane_id() + k;
        float q = prepared.data[((gl_WorkGroupID.z * params.kv_heads + h) * Q_PER_KV + head_read(r)) * KS + min(j, K_ANOM - 1u)];
        qa[(p * RATIO + r) * 8u + k] = j < K_ANOM ? q : 0.0;
      }
  [[unroll]] for (uint p = 0u; p < SPAGES; ++p)
    [[unroll]] for (uint r = 0u; r < RATIO; ++r)
      [[unroll]] for (uint k = 0u; k < 8u; ++k) {
        uint j = 64u * p + 8u * lane_id() + k;
        float q = prepared.data[((gl_WorkGroupID.z * params.kv_heads + h) * Q_PER_KV + head_read(r)) * KS + K_ANOM + min(j, STREAMS - 1u)];
        qs[(p * RATIO + r) * 8u + k] = j < STREAMS ? q : 0.0;
      }
}

// Scores of group g (of `groups`) of the segment: grp_score[m * RATIO + r] for token 32g + lane + 8m.
// Decoding is a shuffle from an 8-entry table per code word: 2-bit codes look up lane (code & 3)
// of {code * s + mn}, bits lane (bit & 1) of {-s, +s}; shuffles read only the low 3 bits of the
// index, so the shifted word needs no mask.
void score_group(uint h, uint g, uint groups) {
  uint lane = lane_id();
  float code_of_lane = float(lane & 3u);
  float sign_of_lane = (lane & 1u) == 1u ? 1.0 : -1.0;
  [[unroll]] for (uint i = 0u; i < 4u * RATIO; ++i) grp_score[i] = 0.0;
  [[unroll]] for (uint p = 0u; p < KPAGES; ++p) {
    uint chunks = min(8u, (K_ANOM - 64u * p + 7u) / 8u);
    for (uint c = 0u; c < chunks; ++c) {
      uint sidx = (h * K_ANOM + min(64u * p + 8u * c + lane, K_ANOM - 1u)) * groups + g;
      uint kidx = (h * K_ANOM + min(64u * p + 8u * c + lane, K_ANOM - 1u)) * (groups / KBPG) + g / KBPG;
      uvec2 cw = ka_codes.data[sidx];
      float s = half_at(ka_scales.data[kidx >> 1], kidx);
      float mn = half_at(ka_mins.data[kidx >> 1], kidx);
      [[unroll]] for (uint k = 0u; k < 8u; ++k) {
        if (64u * p + k < K_ANOM) {
          uint lo = subgroupShuffle(cw.x, k), hi = subgroupShuffle(cw.y, k);
          float table = fma(code_of_lane, subgroupShuffle(s, k), subgroupShuffle(mn, k));
          float qr[RATIO];
          [[unroll]] for (uint r = 0u; r < RATIO; ++r) qr[r] = subgroupShuffle(qa[(p * RATIO + r) * 8u + k], c);
          [[unroll]] for (uint m = 0u; m < 4u; ++m) {
            float v = subgroupShuffle(table, (m < 2u ? lo : hi) >> (2u * lane + 16u * (m & 1u)));
            [[unroll]] for (uint r = 0u; r < RATIO; ++r) grp_score[m * RATIO + r] = fma(qr[r], v, grp_score[m * RATIO + r]);
          }
        }
      }
    }
  }
  [[unroll]] for (uint p = 0u; p < SPAGES; ++p) {
    uint chunks = min(8u, (STREAMS - 64u * p + 7u) / 8u);
    for (uint c = 0u; c < chunks; ++c) {
      uint sidx = (h * STREAMS + min(64u * p + 8u * c + lane, STREAMS - 1u)) * groups + g;
      uint kidx = (h * STREAMS + min(64u * p + 8u * c + lane, STREAMS - 1u)) * (groups / KBPG) + g / KBPG;
      uint w = kn_codes.data[sidx];
      float s = half_at(kn_scales.data[kidx >> 1], kidx);
      [[unroll]] for (uint k = 0u; k < 8u; ++k) {
        if (64u * p + k < STREAMS) {
          uint wk = subgroupShuffle(w, k);
          float table = sign_of_lane * subgroupShuffle(s, k);
          float qr[RATIO];
          [[unroll]] for (uint r = 0u; r < RATIO; ++r) qr[r] = subgroupShuffle(qs[(p * RATIO + r) * 8u + k], c);
          [[unroll]] for (uint m = 0u; m < 4u; ++m) {
            float v = subgroupShuffle(table, wk >> (lane + 8u * m));
            [[unroll]] for (uint r = 0u; r < RATIO; ++r) grp_score[m * RATIO + r] = fma(qr[r], v, grp_score[m * RATIO + r]);
          }
        }
      }
    }
  }
  // tokens past the visible ones (a truncated cache) and, causal, past this query's position
  // score -3e38 (weight 0)
  [[unroll]] for (uint m = 0u; m < 4u; ++m) {
    uint t = 32u * g + 8u * m + lane;
    if (t >= params.visible || int(t) >= params.limit + int(gl_WorkGroupID.z)) {
      [[unroll]] for (uint r = 0u; r < RATIO; ++r) grp_score[m * RATIO + r] = -3.0e38;
    }
  }
}

// VG > 32 (trit_values): block g's trits of channel c are u = c VG + off .. u + 31 (off: the
// block's first token within its group) of its group's (head, group) block, which no longer start
// on a byte. Per channel, the 8 bytes from byte u / 5 are decoded into 2-bit digit fields, shifted
// down by the phase u mod 5, so that token t's digit is at a constant place again (bits 2t, 2t + 1).
void trit_values_wide(uint h, uint g, uint groups) {
  uint lane = lane_id();
  uint base = (h * (groups / VBPG) + g / VBPG) * trit_block_bytes(DIM, VG), off = (g % VBPG) * G;
  uint last_word = v_codes.data.length() - 1u;
  [[unroll]] for (uint b = 0u; b < TPASS; ++b) {
    uint run = min(8u * b + lane, BLOCKS - 1u);
    [[unroll]] for (uint i = 0u; i < 5u; ++i) {
      uint c = min(5u * run + i, DIM - 1u);
      uint u = c * VG + off, first = base + u / 5u, ps = 2u * (u % 5u), sh = 8u * (first & 3u);
      uint wv[3];
      [[unroll]] for (uint k = 0u; k < 3u; ++k) wv[k] = v_codes.data[min((first >> 2) + k, last_word)];
      uint lo = sh == 0u ? wv[0] : (wv[0] >> sh) | (wv[1] << (32u - sh));
      uint hi = sh == 0u ? wv[1] : (wv[1] >> sh) | (wv[2] << (32u - sh));
      uint dw[3] = uint[3](0u, 0u, 0u);  // digit 5k + j of byte k at bits 2 (5k + j) of 80
      [[unroll]] for (uint k = 0u; k < 8u; ++k) {
        uint byte_value = ((k < 4u ? lo : hi) >> (8u * (k & 3u))) & 255u;
        [[unroll]] for (uint j = 0u; j < 5u; ++j) {
          uint pos = 5u * k + j;
          dw[pos / 16u] |= trit_digit(byte_value, j) << (2u * (pos % 16u));
        }
      }
      uint d0 = ps == 0u ? dw[0] : (dw[0] >> ps) | (dw[1] << (32u - ps));
      uint d1 = ps == 0u ? dw[1] : (dw[1] >> ps) | (dw[2] << (32u - ps));
      uint sidx = (h * DIM + c) * (groups / VBPG) + g / VBPG;
      float s = half_at(v_scales.data[sidx >> 1], sidx);
      float dsum[RATIO];
      [[unroll]] for (uint r = 0u; r < RATIO; ++r) dsum[r] = 0.0;
      [[unroll]] for (uint t = 0u; t < G; ++t) {
        float d = float(((t < 16u ? d0 : d1) >> (2u * (t & 15u))) & 3u);
        [[unroll]] for (uint r = 0u; r < RATIO; ++r) dsum[r] = fma(pb[t * RATIO + r], d, dsum[r]);
      }
      [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
        uint o = (b * 5u + i) * RATIO + r;
        outv[o] = fma(s, dsum[r] - grp_psum[r], outv[o] * grp_alpha[r]);
      }
    }
  }
}

// Trits of group g (of `groups`) of the trit tensor, weighted by the last folded group's p.
// Lane L of pass b owns the 5 channels of run 8b + L: their 5 x 32 trits are exactly the 32
// bytes from byte 32 (8b + L) of the (head, group) block, so the byte and digit of every (token,
// channel) is a constant of the unrolled loops. The scale goes on once per (channel, group):
// out = alpha out + s (sum_t p_t d_t - sum_t p_t).
void trit_values(uint h, uint g, uint groups) {
  if (VG > G) {
    trit_values_wide(h, g, groups);
    return;
  }
  uint lane = lane_id();
  uint base = (h * groups + g) * trit_block_bytes(DIM, G);
  uint last_word = v_codes.data.length() - 1u;
  uint sh = 8u * (base & 3u);  // blocks of D = 64 or 256 need not start on a word
  [[unroll]] for (uint b = 0u; b < TPASS; ++b) {
    uint run = min(8u * b + lane, BLOCKS - 1u);
    uint w0 = (base + 32u * run) >> 2;
    uint wv[9], a[8];
    [[unroll]] for (uint i = 0u; i < 9u; ++i) wv[i] = v_codes.data[min(w0 + i, last_word)];
    [[unroll]] for (uint i = 0u; i < 8u; ++i) a[i] = sh == 0u ? wv[i] : (wv[i] >> sh) | (wv[i + 1u] << (32u - sh));
    [[unroll]] for (uint i = 0u; i < 5u; ++i) {
      uint sidx = (h * DIM + min(5u * run + i, DIM - 1u)) * groups + g;
      float s = half_at(v_scales.data[sidx >> 1], sidx);
      float dsum[RATIO];
      [[unroll]] for (uint r = 0u; r < RATIO; ++r) dsum[r] = 0.0;
      [[unroll]] for (uint t = 0u; t < G; ++t) {
        uint u = i * G + t;
        float d = float(trit_digit((a[u / 20u] >> (8u * ((u / 5u) & 3u))) & 255u, u % 5u));
        [[unroll]] for (uint r = 0u; r < RATIO; ++r) dsum[r] = fma(pb[t * RATIO + r], d, dsum[r]);
      }
      [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
        uint o = (b * 5u + i) * RATIO + r;
        outv[o] = fma(s, dsum[r] - grp_psum[r], outv[o] * grp_alpha[r]);
      }
    }
  }
}

// 2-bit per-channel codes of group g: out = alpha out + s sum_t p_t code_t + mn sum_t p_t.
// Lane channels as trit_values (runs of 5) when trit_channels, else channel 32b + 8i + lane of
// pass b; the protected part of an STP segment (h_*) or the values of a 2-bit segment (v_*).
void b2_channel_values(bool protected_part, bool trit_channels, uint h, uint g, uint groups) {
  uint lane = lane_id();
  uint passes = trit_channels ? TPASS : VPASS, per_pass = trit_channels ? 5u : 4u;
  [[unroll]] for (uint b = 0u; b < passes; ++b) {
    [[unroll]] for (uint i = 0u; i < per_pass; ++i) {
      uint c = trit_channels ? min(5u * min(8u * b + lane, BLOCKS - 1u) + i, DIM - 1u)
                             : (VWHOLE ? 32u * b + 8u * i + lane : min(32u * b + 8u * i + lane, DIM - 1u));
      uint sidx = (h * DIM + c) * groups + g;  // codes by block, scales by value group
      uint vidx = (h * DIM + c) * (groups / VBPG) + g / VBPG;
      uvec2 cw;
      float s, mn;
      if (protected_part) {
        cw = h_codes.data[sidx];
        s = half_at(h_scales.data[vidx >> 1], vidx);
        mn = half_at(h_mins.data[vidx >> 1], vidx);
      } else {
        cw = uvec2(v_codes.data[2u * sidx], v_codes.data[2u * sidx + 1u]);
        s = half_at(v_scales.data[vidx >> 1], vidx);
        mn = half_at(v_mins.data[vidx >> 1], vidx);
      }
      float csum[RATIO];
      [[unroll]] for (uint r = 0u; r < RATIO; ++r) csum[r] = 0.0;
      [[unroll]] for (uint t = 0u; t < G; ++t) {
        float code = float(((t < 16u ? cw.x : cw.y) >> (2u * (t & 15u))) & 3u);
        [[unroll]] for (uint r = 0u; r < RATIO; ++r) csum[r] = fma(pb[t * RATIO + r], code, csum[r]);
      }
      [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
        uint o = (b * per_pass + i) * RATIO + r;
        outv[o] = fma(s, csum[r], fma(mn, grp_psum[r], outv[o] * grp_alpha[r]));
      }
    }
  }
}

// 2-bit per-token values (KIVI) of group g: scale and min per (token, 32 channels), so each token
// is decoded on its own. Lane l fetches token 8m + l's words, scale and min of pass b's 32
// channels (channel 32b + 8i + lane: word 2b + i / 2, scale b).
void b2_token_values(uint h, uint g, uint T) {
  uint lane = lane_id();
  [[unroll]] for (uint i = 0u; i < OUTS * RATIO; ++i) outv[i] *= grp_alpha[i % RATIO];
  [[unroll]] for (uint b = 0u; b < VPASS; ++b) {
    uint w0[4], w1[4];
    float sc[4], mn[4];
    [[unroll]] for (uint m = 0u; m < 4u; ++m) {
      uint row = h * T + g * G + 8u * m + lane;
      w0[m] = v_codes.data[row * (DIM / 16u) + 2u * b];
      w1[m] = v_codes.data[row * (DIM / 16u) + 2u * b + 1u];
      uint sidx = row * (DIM / VG) + b / VBPG;  // pass b: channels 32b .. 32b + 31
      sc[m] = half_at(v_scales.data[sidx >> 1], sidx);
      mn[m] = half_at(v_mins.data[sidx >> 1], sidx);
    }
    [[unroll]] for (uint t = 0u; t < G; ++t) {
      uint m = t / 8u, k = t % 8u;
      uint lo = subgroupShuffle(w0[m], k), hi = subgroupShuffle(w1[m], k);
      float s = subgroupShuffle(sc[m], k), z = subgroupShuffle(mn[m], k);
      [[unroll]] for (uint i = 0u; i < 4u; ++i) {
        float v = fma(float((((i & 2u) == 0u ? lo : hi) >> (2u * (8u * (i & 1u) + lane))) & 3u), s, z);
        [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
          uint o = (b * 4u + i) * RATIO + r;
          outv[o] = fma(pb[t * RATIO + r], v, outv[o]);
        }
      }
    }
  }
}

// STP: scores of part group [pg, pg + 32) from part_scores; -3e38 for tokens of other splits.
void load_part_scores(uint pg, uint begin, uint end, uint base, uint slot0) {
  [[unroll]] for (uint m = 0u; m < 4u; ++m) {
    uint index = pg + 8u * m + lane_id();
    bool mine = index >= begin && index < end;
    [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
      float s = part_scores[r * PART_SLOTS + min(slot0 + index - base, PART_SLOTS - 1u)];
      grp_score[m * RATIO + r] = mine ? s : -3.0e38;
    }
  }
}

// STP split: scores of all of the split's groups go to part_scores by part index, then the
// other tokens' trit groups and the protected tokens' 2-bit groups that the split touches are
// walked with the split's maximum. Those parts' indices of the split's tokens are contiguous
// ranges (both parts keep sequence order), so a part group at the split's edge is decoded by both
// neighbouring splits, each with only its own tokens' weights.
void stp_split(uint h, uint start, uint ngroups) {
  uint lane = lane_id();
  uint T = params.tokens, n = min(params.protected_tokens, T);
  uint low_groups = (T - n) / G, high_groups = n / G;
  // first and last token of the split: their entries give where the parts' ranges start and end
  uint first = token_map.data[start], last = token_map.data[start + ngroups * G - 1u];
  uint low_begin = (first >> 31) == 1u ? start - (first & 0x7fffffffu) : first;
  uint low_end = (last >> 31) == 1u ? start + ngroups * G - 1u - (last & 0x7fffffffu) : last + 1u;
  low_begin = min(low_begin, T - n);
  low_end = clamp(low_end, low_begin, T - n);
  uint high_begin = start - low_begin, high_end = start + ngroups * G - low_end;
  high_end = min(high_end, n);
  high_begin = min(high_begin, high_end);
  uint low_base = low_begin / G * G, high_base = high_begin / G * G;
  uint high_slot0 = (low_end - low_base + G - 1u) / G * G;  // first slot of the protected part

  float vmax[RATIO];
  [[unroll]] for (uint r = 0u; r < RATIO; ++r) vmax[r] = -3.0e38;
  for (uint gl = 0u; gl < ngroups; ++gl) {
    score_group(h, start / G + gl, T / G);
    [[unroll]] for (uint m = 0u; m < 4u; ++m) {
      uint e = token_map.data[start + gl * G + 8u * m + lane];
      uint slot = (e >> 31) == 1u ? high_slot0 + (e & 0x7fffffffu) - high_base : e - low_base;
      slot = min(slot, PART_SLOTS - 1u);  // (a wrong map must not write out of bounds)
      [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
        part_scores[r * PART_SLOTS + slot] = grp_score[m * RATIO + r];
        vmax[r] = max(vmax[r], grp_score[m * RATIO + r]);
      }
    }
  }
  memoryBarrierShared();
  barrier();
  [[unroll]] for (uint r = 0u; r < RATIO; ++r) run_m[r] = lane_max(vmax[r]);
  // walk the parts' groups with the maximum fixed (softmax_group then finds alpha = 1); two loops,
  // not one over both parts, so that LLVM allocates registers for each body on its own
  for (uint pg = low_base; pg < low_end; pg += G) {
    load_part_scores(pg, low_begin, low_end, low_base, 0u);
    softmax_group();
    trit_values(h, pg / G, low_groups);
  }
  for (uint pg = high_base; pg < high_end; pg += G) {
    load_part_scores(pg, high_begin, high_end, high_base, high_slot0);
    softmax_group();
    b2_channel_values(true, true, h, pg / G, high_groups);
  }
}

void main() {
  uint lane = lane_id();
  uint split = gl_WorkGroupID.x;
  uint h = group_kv_head();
  uint q_heads = params.kv_heads * Q_PER_KV;
  uint T = params.tokens;
  uint start = split * SPLIT;
  uint ngroups = min(SPLIT, min(T, (params.visible + G - 1u) / G * G) - start) / G;

  load_query(h);
  softmax_begin();
  [[unroll]] for (uint i = 0u; i < OUTS * RATIO; ++i) outv[i] = 0.0;
  if (VALUE_MODE == 3u) {
    stp_split(h, start, ngroups);
  } else {
    for (uint gl = 0u; gl < ngroups; ++gl) {
      uint g = start / G + gl;
      score_group(h, g, T / G);
      softmax_group();
      if (VALUE_MODE == 0u) {
        trit_values(h, g, T / G);
      } else if (VALUE_MODE == 1u) {
        b2_channel_values(false, false, h, g, T / G);
      } else {
        b2_token_values(h, g, T);
      }
    }
  }

  uint slot = gl_WorkGroupID.z * params.query_slots + params.slot_base + split;
  [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
    if (!head_stored(r)) continue;
    uint o = (slot * q_heads + h * Q_PER_KV + head_in_kv(r)) * (DIM + 2u);
    if (lane == 0u) {
      partials.data[o] = run_m[r];
      partials.data[o + 1u] = run_l[r];
    }
    [[unroll]] for (uint i = 0u; i < OUTS; ++i) {
      uint c = TRIT_CHANNELS ? 5u * (8u * (i / 5u) + lane) + i % 5u : 32u * (i / 4u) + 8u * (i % 4u) + lane;
      if (c < DIM) partials.data[o + 2u + c] = outv[i * RATIO + r];
    }
  }
}
