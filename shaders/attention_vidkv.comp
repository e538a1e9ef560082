#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
// Decode attention straight from one packed VidKV segment (never decoded to fp16 in memory); the
// portable path (any subgroup size: GPUs). attention_vidkv_sg8.comp computes the same for
// subgroups of exactly 8 (CPU drivers).
// Keys (QuantizedKeys' device layout, group size 32): K_ANOM anomalous channels at 2 bits,
// codes [h][j][T/16], scales/mins [h][j][T/32]; STREAMS 1-bit coefficient streams of the N normal
// channels' DFT, codes [h][s][T/32], scales [h][s][T/32]. Scores never inverse-transform a key:
// attention_query.comp transforms the query once per step into [q_c at the anomalous channels,
// stream weights w_s] (q . Re(IDFT(X)) = (1/N) sum_f (Re X_f Re Q_f + Im X_f Im Q_f), Q =
// DFT(q_normal)); a token's score is then sum_j q_j (code * s + mn) + sum_s w_s (+-s_sg).
// Values, VALUE_MODE 0: 1.58-bit trits 5 per byte (per (head, group) block, trit c * 32 + t),
// out_c = sum_t p_t (code_tc * s_cg); 1: 2-bit per channel, codes [h][c][T/16], out_c =
// sum_t p_t (code_tc * s_cg + mn_cg); 2: 2-bit per token (KIVI), codes [h][t][D/16],
// scales/mins [h][t][D/32]; 3: semantic token protection (STP): the trits of the T - n other
// tokens (bindings 6-7), the 2-bit codes of the n protected tokens (bindings 10-12, per channel
// over the protected tokens), and token_map[t] = index of token t in its part, bit 31 set for
// protected tokens. Each decoded value is shared by the RATIO query heads' accumulators.
#include "attention.glsl"
#include "trits.glsl"

layout(constant_id = 4) const uint K_ANOM = 64u;     // anomalous channels
layout(constant_id = 5) const uint STREAMS = 64u;    // coefficient streams (N half, 2N full)
layout(constant_id = 6) const uint VALUE_MODE = 0u;

const uint G = 32u;
const uint SETS = WG / 8u;               // sets of 8 invocations that score a group together
const uint VPL = 8u;                     // 2-bit value channels per invocation
const uint TC = 10u;                     // 1.58-bit value channels per invocation (multiple of 5)
const uint TW = TC / 5u * 8u;            // words holding their trits of one group
const uint KS = K_ANOM + STREAMS;
const bool TRIT_OWNERS = VALUE_MODE == 0u || VALUE_MODE == 3u;
const uint OWNED = TRIT_OWNERS ? TC : (VALUE_MODE == 1u ? VPL : CPL);  // channels per invocation
const uint PART_SLOTS = SPLIT + 3u * G;  // STP: both parts' groups that a split touches

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
layout(std430, binding = 10) readonly buffer HCodes { uint data[]; } h_codes;
layout(std430, binding = 11) readonly buffer HScales { uint data[]; } h_scales;
layout(std430, binding = 12) readonly buffer HMins { uint data[]; } h_mins;
layout(std430, binding = 13) readonly buffer TokenMap { uint data[]; } token_map;

layout(push_constant) uniform Params {
  uint kv_heads;
  uint tokens;            // tokens of the segment (a multiple of 32)
  uint slot_base;
  uint protected_tokens;  // VALUE_MODE 3: n (a multiple of 32)
} params;

shared float qk[RATIO * (KS > 0u ? KS : 1u)];  // prepared query of this KV head's query heads
// STP: p of the split's tokens by part slot, [r][slot]: the other tokens' part groups the split
// touches from slot 0, then the protected tokens' from the next multiple of 32.
shared float part_p[VALUE_MODE == 3u ? RATIO * PART_SLOTS : 1u];

float accum[OWNED * RATIO];  // accum[i * RATIO + r]: head r, i-th owned channel

float half_at(uint word, uint index) { return unpackHalf2x16(word >> (16u * (index & 1u))).x; }

// p of token i of the split, or of STP part slot i.
float p_at(bool part_slots, uint r, uint i) {
  return part_slots ? part_p[r * PART_SLOTS + i] : scores[r * SPLIT + i];
}

// Scores of the split's groups into scores[r * SPLIT + t]: 8 invocations per group, invocation sl
// owning tokens sl + 8m of it.
void score_split(uint h, uint start, uint ngroups) {
  uint lid = gl_LocalInvocationID.x;
  uint groups = params.tokens / G;
  uint sl = lid % 8u;
  for (uint gl = lid / 8u; gl < ngroups; gl += SETS) {
    uint g = start / G + gl;
    float acc[4u * RATIO];
    [[unroll]] for (uint i = 0u; i < 4u * RATIO; ++i) acc[i] = 0.0;
    for (uint j = 0u; j < K_ANOM; ++j) {
      uint w = (h * K_ANOM + j) * (2u * groups) + 2u * g, sidx = (h * K_ANOM + j) * groups + g;
      uint lo = ka_codes.data[w], hi = ka_codes.data[w + 1u];
      float s = half_at(ka_scales.data[sidx >> 1], sidx), mn = half_at(ka_mins.data[sidx >> 1], sidx);
      [[unroll]] for (uint m = 0u; m < 4u; ++m) {
        float v = float(((m < 2u ? lo : hi) >> (2u * ((sl + 8u * m) & 15u))) & 3u) * s + mn;
        [[unroll]] for (uint r = 0u; r < RATIO; ++r) acc[m * RATIO + r] += qk[r * KS + j] * v;
      }
    }
    for (uint j = 0u; j < STREAMS; ++j) {
      uint sidx = (h * STREAMS + j) * groups + g;
      uint w = kn_codes.data[sidx];
      uint sbits = floatBitsToUint(half_at(kn_scales.data[sidx >> 1], sidx));
      [[unroll]] for (uint m = 0u; m < 4u; ++m) {
        // bit 1 decodes to +s, bit 0 to -s: flip the sign bit of s
        float v = uintBitsToFloat(sbits ^ ((((w >> (sl + 8u * m)) & 1u) ^ 1u) << 31));
        [[unroll]] for (uint r = 0u; r < RATIO; ++r) acc[m * RATIO + r] += qk[r * KS + K_ANOM + j] * v;
      }
    }
    [[unroll]] for (uint m = 0u; m < 4u; ++m)
      [[unroll]] for (uint r = 0u; r < RATIO; ++r) scores[r * SPLIT + gl * G + sl + 8u * m] = acc[m * RATIO + r];
  }
}

// 1.58-bit values of `count` groups from g_first (of `groups`) of the trit tensor, weights from
// p_at(part_slots, r, first_slot + gl * 32 + t). Invocation L owns the TC channels TC * L + j: their TC x 32 trits
// are exactly the 32 TC / 5 bytes from byte 32 TC L / 5 of the (head, group) block, so the byte
// and digit of every (token, channel) is a constant of the unrolled loops. Digits d = code + 1:
// the value is d * s - s.
void trit_values(bool part_slots, uint first_slot, uint h, uint g_first, uint count, uint groups) {
  uint L = gl_LocalInvocationID.x;
  uint last_word = v_codes.data.length() - 1u;
  uint busy = L < (DIM + TC - 1u) / TC ? count : 0u;
  for (uint gl = 0u; gl < busy; ++gl) {
    uint g = g_first + gl;
    uint b0 = (h * groups + g) * trit_block_bytes(DIM, G) + 32u * TC / 5u * L;
    uint sh = 8u * (b0 & 3u);  // blocks of D = 64 or 256 need not start on a word
    uint w[TW + 1u], a[TW];
    [[unroll]] for (uint i = 0u; i <= TW; ++i) w[i] = v_codes.data[min((b0 >> 2) + i, last_word)];
    [[unroll]] for (uint i = 0u; i < TW; ++i) a[i] = sh == 0u ? w[i] : (w[i] >> sh) | (w[i + 1u] << (32u - sh));
    float sc[TC];
    [[unroll]] for (uint j = 0u; j < TC; ++j) {
      uint sidx = (h * DIM + min(TC * L + j, DIM - 1u)) * groups + g;
      sc[j] = half_at(v_scales.data[sidx >> 1], sidx);
    }
    for (uint t = 0u; t < G; ++t) {
      float p[RATIO];
      [[unroll]] for (uint r = 0u; r < RATIO; ++r) p[r] = p_at(part_slots, r, first_slot + gl * G + t);
      [[unroll]] for (uint j = 0u; j < TC; ++j) {
        uint u = j * G + t;  // trit index within the invocation's bytes
        uint byte_value = (a[u / 20u] >> (8u * ((u / 5u) & 3u))) & 255u;
        float v = float(trit_digit(byte_value, u % 5u)) * sc[j] - sc[j];
        [[unroll]] for (uint r = 0u; r < RATIO; ++r) accum[j * RATIO + r] += p[r] * v;
      }
    }
  }
}

// 2-bit per-channel values of `count` groups from g_first (of `groups`): the protected part of
// an STP segment (h_*, channels owned as in trit_values) or a 2-bit segment (v_*, invocation L
// owning channels L * VPL + i). Each channel's code words of a group stay in registers.
void b2_channel_values(bool protected_part, uint first_slot, uint h, uint g_first, uint count, uint groups) {
  uint L = gl_LocalInvocationID.x;
  uint owners = protected_part ? (DIM + TC - 1u) / TC : DIM / VPL;
  uint busy = L < owners ? count : 0u;
  for (uint gl = 0u; gl < busy; ++gl) {
    uint g = g_first + gl;
    uint w0[OWNED], w1[OWNED];
    float sc[OWNED], mn[OWNED];
    [[unroll]] for (uint i = 0u; i < OWNED; ++i) {
      uint c = min(L * OWNED + i, DIM - 1u);
      uint row = h * DIM + c, sidx = row * groups + g;
      if (protected_part) {
        w0[i] = h_codes.data[2u * sidx];
        w1[i] = h_codes.data[2u * sidx + 1u];
        sc[i] = half_at(h_scales.data[sidx >> 1], sidx);
        mn[i] = half_at(h_mins.data[sidx >> 1], sidx);
      } else {
        w0[i] = v_codes.data[2u * sidx];
        w1[i] = v_codes.data[2u * sidx + 1u];
        sc[i] = half_at(v_scales.data[sidx >> 1], sidx);
        mn[i] = half_at(v_mins.data[sidx >> 1], sidx);
      }
    }
    for (uint t = 0u; t < G; ++t) {
      float p[RATIO];
      [[unroll]] for (uint r = 0u; r < RATIO; ++r) p[r] = p_at(protected_part, r, first_slot + gl * G + t);
      [[unroll]] for (uint i = 0u; i < OWNED; ++i) {
        float v = float(((t < 16u ? w0[i] : w1[i]) >> (2u * (t & 15u))) & 3u) * sc[i] + mn[i];
        [[unroll]] for (uint r = 0u; r < RATIO; ++r) accum[i * RATIO + r] += p[r] * v;
      }
    }
  }
}

// 2-bit per-token values (KIVI): one invocation per channel (strided), a plain loop over tokens.
void b2_token_values(uint h, uint start, uint n) {
  uint T = params.tokens;
  [[unroll]] for (uint i = 0u; i < CPL; ++i) {
    uint c = min(gl_LocalInvocationID.x + i * WG, DIM - 1u);
    for (uint t = 0u; t < n; ++t) {
      uint row = h * T + start + t;
      uint code = (v_codes.data[row * (DIM / 16u) + c / 16u] >> (2u * (c & 15u))) & 3u;
      uint sidx = row * (DIM / G) + c / G;
      float v = float(code) * half_at(v_scales.data[sidx >> 1], sidx) + half_at(v_mins.data[sidx >> 1], sidx);
      [[unroll]] for (uint r = 0u; r < RATIO; ++r) accum[i * RATIO + r] += scores[r * SPLIT + t] * v;
    }
  }
}

// STP: after the split's softmax, moves each token's p to its part slot. The split's tokens of
// each part have contiguous part indices (both parts keep sequence order), from which the part
// groups the split touches follow; a part group at the split's edge is decoded by both
// neighbouring splits, each with only its own tokens' weights (the other slots stay 0).
void stp_values(uint h, uint start, uint n) {
  uint lid = gl_LocalInvocationID.x;
  uint T = params.tokens, np = min(params.protected_tokens, T);
  uint first = token_map.data[start], last = token_map.data[start + n - 1u];
  uint low_begin = (first >> 31) == 1u ? start - (first & 0x7fffffffu) : first;
  uint low_end = (last >> 31) == 1u ? start + n - 1u - (last & 0x7fffffffu) : last + 1u;
  low_begin = min(low_begin, T - np);
  low_end = clamp(low_end, low_begin, T - np);
  uint high_begin = start - low_begin, high_end = min(start + n - low_end, np);
  high_begin = min(high_begin, high_end);
  uint low_base = low_begin / G * G, high_base = high_begin / G * G;
  uint high_slot0 = (low_end - low_base + G - 1u) / G * G;
  for (uint i = lid; i < RATIO * PART_SLOTS; i += WG) part_p[i] = 0.0;
  barrier();
  for (uint t = lid; t < n; t += WG) {
    uint e = token_map.data[start + t];
    uint slot = (e >> 31) == 1u ? high_slot0 + (e & 0x7fffffffu) - high_base : e - low_base;
    slot = min(slot, PART_SLOTS - 1u);  // (a wrong map must not write out of bounds)
    [[unroll]] for (uint r = 0u; r < RATIO; ++r) part_p[r * PART_SLOTS + slot] = scores[r * SPLIT + t];
  }
  barrier();
  if (low_end > low_begin) trit_values(true, 0u, h, low_base / G, (low_end - low_base + G - 1u) / G, (T - np) / G);
  if (high_end > high_begin) {
    b2_channel_values(true, high_slot0, h, high_base / G, (high_end - high_base + G - 1u) / G, np / G);
  }
}

void main() {
  uint lid = gl_LocalInvocationID.x;
  uint split = gl_WorkGroupID.x;
  uint h = gl_WorkGroupID.y;
  uint q_heads = params.kv_heads * RATIO;
  uint T = params.tokens;
  uint start = split * SPLIT;
  uint n = min(SPLIT, T - start);

  for (uint i = lid; i < RATIO * KS; i += WG) qk[i] = prepared.data[h * RATIO * KS + i];
  barrier();
  score_split(h, start, n / G);
  barrier();
  split_softmax(n);

  [[unroll]] for (uint i = 0u; i < OWNED * RATIO; ++i) accum[i] = 0.0;
  if (VALUE_MODE == 0u) {
    trit_values(false, 0u, h, start / G, n / G, T / G);
  } else if (VALUE_MODE == 1u) {
    b2_channel_values(false, 0u, h, start / G, n / G, T / G);
  } else if (VALUE_MODE == 2u) {
    b2_token_values(h, start, n);
  } else {
    stp_values(h, start, n);
  }

  uint slot = params.slot_base + split;
  [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
    uint o = (slot * q_heads + h * RATIO + r) * (DIM + 2u);
    if (lid == 0u) {
      partials.data[o] = stat_m[r];
      partials.data[o + 1u] = stat_l[r];
    }
    [[unroll]] for (uint i = 0u; i < OWNED; ++i) {
      uint c = VALUE_MODE == 2u ? lid + i * WG : lid * OWNED + i;
      bool owner = VALUE_MODE == 2u || lid < (TRIT_OWNERS ? (DIM + TC - 1u) / TC : DIM / VPL);
      if (owner && c < DIM) partials.data[o + 2u + c] = accum[i * RATIO + r];
    }
  }
}
