#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
// Decode attention straight from one packed VidKV segment (never decoded to fp16 in memory); the
// portable path (any subgroup size: GPUs). attention_vidkv_sg8.comp computes the same for
// subgroups of exactly 8 (CPU drivers), from attention_query.comp's transformed query; this shader
// transforms the query itself (attention_vidkv_query.glsl), so a step is one dispatch per segment.
// Keys (QuantizedKeys' device layout, group size KG): K_ANOM anomalous channels at 2 bits,
// codes [h][j][T/16], scales/mins [h][j][T/KG]; STREAMS 1-bit coefficient streams of the N normal
// channels' DFT, codes [h][s][T/32], scales [h][s][T/KG].
// Values (group size VG), VALUE_MODE 0: 1.58-bit trits 5 per byte (per (head, group) block, trit
// c * VG + t), scales [h][c][T/VG]; 1: 2-bit per channel, codes [h][c][T/16], scales/mins
// [h][c][T/VG]; 2: 2-bit per token (KIVI), codes [h][t][D/16], scales/mins [h][t][D/VG]; 3:
// semantic token protection (STP): the trits of the
// T - n other tokens (bindings 6-7), the 2-bit codes of the n protected tokens (bindings 10-12, per
// channel over the protected tokens), and token_map[t] = index of token t in its part, bit 31 set
// for protected tokens.
//
// The split is walked in chunks of 64 tokens (two 32-token blocks, "groups" below; with VG > 32 a
// value chunk never straddles two value groups), every invocation busy in every phase:
// - keys: the chunk's code words and scales are copied to shared memory (every load of the copy
//   issued before the first wait); then, per (group, head), the scales and mins fold into the
//   query: score_t = sum_j A_j code_tj + sum_s B_s bit_ts + C with A_j = q_j s_jg, B_s = 2 w_s s_sg,
//   C = sum_j q_j mn_jg - sum_s w_s s_sg; then invocation t scores token t for all RATIO heads.
// - values (after the split's softmax): the chunk's code block and scales are copied to shared
//   memory beside the chunk's p (token-major, heads padded to a multiple of 4); invocation L owns channels L + i * WG and sums p * code over a group,
//   then applies the group's scale and min once: out_c += s_cg * sum_t p_t code_tc + mn_cg * sum_t p_t.
//   Trits take no multiply per token: the chunk's p go into subset-sum tables (per group, 4-token
//   nibble and head: the sum of p over each of the 16 subsets of the nibble's tokens), and a
//   channel's 32 trits become two 32-bit masks (tokens at +1, tokens at -1; a 256-entry byte table
//   gives each byte's 5 digits as such bits), so a nibble costs two table reads per head vector:
//   sum_t p_t trit_tc = sum_nibbles T[plus bits] - T[minus bits] (exact fp32 sums of up to 4 p).
#define ATTENTION_Q_PER_KV_ID 9
#include "attention.glsl"
#include "trits.glsl"

layout(constant_id = 4) const uint K_ANOM = 64u;     // anomalous channels
layout(constant_id = 5) const uint STREAMS = 64u;    // coefficient streams (N half, 2N full)
layout(constant_id = 6) const uint VALUE_MODE = 0u;
layout(constant_id = 7) const uint FFT_FULL = 0u;
layout(constant_id = 8) const uint SCOPE_LAYER = 0u;  // one channel list for all heads
// Group sizes (32, 64 or 128) of the keys' and the values' scales. The kernel walks blocks of
// G = 32 tokens whatever they are: only the addressing changes (a block's group is block / (KG /
// G) or block / (VG / G)); KG = VG = 32 compiles to the code of before.
layout(constant_id = 10) const uint KG = 32u;
layout(constant_id = 11) const uint VG = 32u;

const uint G = 32u;
const uint CG = 2u;                       // groups per chunk
const uint CT = CG * G;                   // tokens per chunk (one per invocation at WG 64)
const uint KS = K_ANOM + STREAMS;
const uint NORMAL = DIM - K_ANOM;
const uint RP = (RATIO + 3u) / 4u * 4u;   // heads padded to whole vec4s
const uint RV = RP / 4u;                  // vec4s per (token or coefficient)
// Value channels per invocation: channel L + i * WG of invocation L. Where DIM is not a multiple of
// WG (head_dim 80, 96, 112) the last round's channels past DIM read channel DIM - 1 and are not
// stored (owned_channel, channel_stored).
const uint OWN = (DIM + WG - 1u) / WG;
const bool WHOLE_ROUNDS = DIM % WG == 0u;
uint owned_channel(uint L, uint i) { return WHOLE_ROUNDS ? L + i * WG : min(L + i * WG, DIM - 1u); }
bool channel_stored(uint L, uint i) { return WHOLE_ROUNDS || L + i * WG < DIM; }
const uint CPARTS = WG / (CG * 8u);       // invocations per (group, head) summing C and sum p
const uint PROWS = G;                     // p rows per group
const uint BB = (DIM * G + 4u) / 5u;      // bytes of one (head, group) trit block
const uint PART_SLOTS = SPLIT + 3u * G;   // STP: both parts' groups that a split touches
const uint KBPG = KG / G, VBPG = VG / G;  // blocks of 32 tokens per key / value group
const uint VBB = (DIM * VG + 4u) / 5u;    // bytes of one (head, value group) trit block
// Words of the trit stage: two 32-token groups' blocks, or (VG > 32, where a chunk never leaves its
// group) the span of its group block from the chunk's first trit to channel DIM - 1's last.
const uint TS = VG == G ? (CG * BB + 3u) / 4u + 3u : (3u + ((DIM - 1u) * VG + CT) / 5u + 1u) / 4u + 3u;
const uint KSG = DIM >= VG ? DIM / VG : 1u;  // KIVI: scales per token row (D < VG: no KIVI, no empty arrays)

// Words of the staging area, the largest of its uses.
const uint ST_QUERY = RATIO * NORMAL + 2u * NORMAL;
const uint ST_KEYS = 6u * K_ANOM + 4u * STREAMS;
const uint ST_TRITS = TS + DIM * CG;
const uint ST_B2 = 3u * DIM * CG;
const uint ST_KIVI = CT * DIM / 16u + CT * KSG;
const uint ST_V = VALUE_MODE == 0u ? ST_TRITS : (VALUE_MODE == 1u ? ST_B2 : (VALUE_MODE == 2u ? ST_KIVI
                  : (ST_TRITS > ST_B2 ? ST_TRITS : ST_B2)));
const uint ST_QK = ST_QUERY > ST_KEYS ? ST_QUERY : ST_KEYS;
const uint STAGE = ST_QK > ST_V ? ST_QK : ST_V;
// vec4s of the area that holds the folded coefficients (keys), then STP's p by part slot (values).
const uint CP = 64u;                      // key indices (channels, then streams) folded per pass
const uint COEF_STRIDE = CP * RV + 1u;    // +1: the chunk's two groups fall in different banks
const uint BIG_COEF = CG * COEF_STRIDE;
const uint BIG_STP = VALUE_MODE == 3u ? (RATIO * PART_SLOTS + 3u) / 4u : 1u;
const bool HAS_TRITS = VALUE_MODE == 0u || VALUE_MODE == 3u;
const uint NIB = G / 4u;                  // 4-token nibbles per group (trit subset-sum tables)
// The value phase's arrays, one at a time (each channel_values chunk opens with a barrier): the p
// rows (2 bits, KIVI) or the trits' subset-sum tables. They live in big, past STP's part slots, or
// over the key coefficients, which are dead once the scores are taken.
const uint VAL_PW = VALUE_MODE == 0u ? 0u : CG * PROWS * RV;
const uint VAL_TAB = HAS_TRITS ? CG * NIB * 16u * RV : 0u;
const uint VAL = VAL_PW > VAL_TAB ? VAL_PW : VAL_TAB;
const uint VAL0 = VALUE_MODE == 3u ? BIG_STP : 0u;
const uint BIG_V = VAL0 + VAL;
const uint BIG = BIG_COEF > BIG_V ? BIG_COEF : BIG_V;

layout(std430, binding = 0) readonly buffer Query { float data[]; } query;  // [q_heads][DIM]
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
layout(std430, binding = 14) readonly buffer Channels { uint data[]; } channels;  // [units][DIM]

layout(push_constant) uniform Params {
  uint kv_heads;
  uint tokens;            // tokens of the segment (a multiple of 32)
  uint slot_base;
  uint protected_tokens;  // VALUE_MODE 3: n (a multiple of 32)
  float scale;            // softmax scale, folded into the query
  uint visible;           // tokens attended: later ones get no weight (a truncated cache)
  int limit;              // causal: query z sees the segment's tokens t < limit + z (INT_MAX: all)
  uint query_slots;       // causal: slots per query (query z's slots start at z * query_slots)
} params;

shared float qk[RATIO * KS + 1u];  // transformed query of this KV head's query heads, + a trash slot
shared uint stage[STAGE + 1u];  // + a word that takes the stores of out-of-range indices
const uint TRASH = STAGE;
shared vec4 big[BIG];
shared vec4 part_sum[CG * RV * CPARTS];       // keys: C; values: sum p; [group][part][head]
// In big from VAL0: the chunk's p, [group][row][head] (pw), or for trits the sum of p over each
// subset of a nibble's 4 tokens, [group][nibble][subset][head] (ptab).
#define pw(i) big[VAL0 + (i)]
#define ptab(i) big[VAL0 + (i)]
// Per byte value its digits at 2 (bits 0-4) and at 0 (bits 8-12), digit d as bit d.
shared uint trit_bits[HAS_TRITS ? 256u : 1u];

#include "attention_vidkv_query.glsl"

float half_at(uint word, uint index) { return unpackHalf2x16(word >> (16u * (index & 1u))).x; }

// Head r's component of p row `row` (RV vec4s per row).
void pw_set(uint row, uint r, float v) { pw(row * RV + r / 4u)[r & 3u] = v; }

// ---------------------------------------------------------------------------------------------
// Scores

const uint AC = 0u;                          // anomalous code words [w][j] (w: 16 tokens)
const uint NC = AC + 4u * K_ANOM;            // stream words [gl][s]
const uint AS = NC + 2u * STREAMS;           // anomalous (scale, min) half pairs [j][2]
const uint NS = AS + 2u * K_ANOM;            // stream scales [s][2] (float bits)

// The half at `index` of a buffer of halves, as its 16 bits.
uint half_bits(uint word, uint index) { return (word >> (16u * (index & 1u))) & 0xffffu; }

// Copies the key words and scales of groups g0 .. g0 + cg - 1 to the staging area. Every load
// is issued before the first store (indices clamped into the chunk; what lies past a partial
// chunk is loaded but stored to TRASH), all in one basic block: ACO schedules within a block, so
// a load before each conditional store would wait each time; this way they are all in flight.
uint to(bool valid, uint index) { return valid ? index : TRASH; }
// Index of the scale of block g0 + gl (of `blocks`) of row `row` in a [rows][blocks / bpg] array
// (bpg blocks per group). One block per group: the expression of before, so that groups of 32
// compile to the same code.
uint scale_index(uint row, uint blocks, uint g0, uint gl, uint bpg) {
  return bpg == 1u ? row * blocks + g0 + gl : row * (blocks / bpg) + (g0 + gl) / bpg;
}
const uint LA = (4u * K_ANOM + WG - 1u) / WG, LS = (2u * STREAMS + WG - 1u) / WG, LM = (2u * K_ANOM + WG - 1u) / WG;
void stage_keys(uint h, uint g0, uint cg, uint groups) {
  uint lid = gl_LocalInvocationID.x;
  uint ca[LA > 0u ? LA : 1u], cn[LS > 0u ? LS : 1u], sn[LS > 0u ? LS : 1u];
  uint sa[LM > 0u ? LM : 1u], ma[LM > 0u ? LM : 1u];
  if (K_ANOM > 0u) {
    [[unroll]] for (uint k = 0u; k < LA; ++k) {
      uint i = lid + k * WG, j = min(i / 4u, K_ANOM - 1u), w = min(i % 4u, 2u * cg - 1u);
      ca[k] = ka_codes.data[(h * K_ANOM + j) * (2u * groups) + 2u * g0 + w];
    }
    [[unroll]] for (uint k = 0u; k < LM; ++k) {
      uint i = lid + k * WG, j = min(i / 2u, K_ANOM - 1u), gl = min(i % 2u, cg - 1u);
      uint sidx = scale_index(h * K_ANOM + j, groups, g0, gl, KBPG);
      sa[k] = ka_scales.data[sidx >> 1];
      ma[k] = ka_mins.data[sidx >> 1];
    }
  }
  if (STREAMS > 0u) {
    [[unroll]] for (uint k = 0u; k < LS; ++k) {
      uint i = lid + k * WG, s = min(i / 2u, STREAMS - 1u), gl = min(i % 2u, cg - 1u);
      uint sidx = (h * STREAMS + s) * groups + g0 + gl;
      uint kidx = scale_index(h * STREAMS + s, groups, g0, gl, KBPG);  // codes by block, scales by group
      cn[k] = kn_codes.data[sidx];
      sn[k] = kn_scales.data[kidx >> 1];
    }
  }
  [[unroll]] for (uint k = 0u; k < LA; ++k) {
    uint i = lid + k * WG, j = i / 4u, w = i % 4u;
    stage[to(i < 4u * K_ANOM && w < 2u * cg, AC + w * K_ANOM + j)] = ca[k];
  }
  [[unroll]] for (uint k = 0u; k < LM; ++k) {
    uint i = lid + k * WG, j = i / 2u, gl = i % 2u;
    uint sidx = scale_index(h * K_ANOM + j, groups, g0, gl, KBPG);
    stage[to(i < 2u * K_ANOM && gl < cg, AS + i)] = half_bits(sa[k], sidx) | (half_bits(ma[k], sidx) << 16);
  }
  [[unroll]] for (uint k = 0u; k < LS; ++k) {
    uint i = lid + k * WG, s = i / 2u, gl = i % 2u;
    uint kidx = scale_index(h * STREAMS + s, groups, g0, gl, KBPG);
    bool valid = i < 2u * STREAMS && gl < cg;
    stage[to(valid, NC + gl * STREAMS + s)] = cn[k];
    stage[to(valid, NS + i)] = floatBitsToUint(half_at(sn[k], kidx));
  }
}

// A and B of the pass's indices i0 .. i0 + CP - 1 (anomalous channels, then streams) for every
// (group, head) into big, the pass's part of C in CPARTS parts into part_sum. Invocation
// (gl, r, part) takes the indices i = i0 + part (mod CPARTS).
void fold_coefficients(uint cg, uint i0) {
  uint lid = gl_LocalInvocationID.x;
  uint part = lid % CPARTS, r = (lid / CPARTS) % 8u, gl = lid / (8u * CPARTS);
  if (r < RATIO && gl < cg) {
    float c = 0.0;
    uint row = gl * COEF_STRIDE + r / 4u, e = r & 3u;
    for (uint j = i0 + part; j < min(i0 + CP, K_ANOM); j += CPARTS) {
      float q = qk[r * KS + j];
      vec2 sm = unpackHalf2x16(stage[AS + 2u * j + gl]);
      big[row + (j - i0) * RV][e] = q * sm.x;
      c += q * sm.y;
    }
    for (uint i = max(i0, K_ANOM) + part; i < min(i0 + CP, KS); i += CPARTS) {
      float ws = qk[r * KS + i] * uintBitsToFloat(stage[NS + 2u * (i - K_ANOM) + gl]);
      big[row + (i - i0) * RV][e] = 2.0 * ws;
      c -= ws;
    }
    part_sum[(gl * CPARTS + part) * RV + r / 4u][r & 3u] = c;
  }
}

// Adds the pass's terms (indices i0 .. i0 + CP - 1) of the chunk's token t = invocation to acc.
void score_pass(uint cg, uint i0, inout vec4 acc[RV]) {
  uint t = gl_LocalInvocationID.x, gl = t / G;
  if (t >= CT || gl >= cg) return;
  [[unroll]] for (uint v = 0u; v < RV; ++v)
    [[unroll]] for (uint p = 0u; p < CPARTS; ++p) acc[v] += part_sum[(gl * CPARTS + p) * RV + v];
  uint shift2 = 2u * (t & 15u), bit = t & 31u;
  uint ac = AC + (t / 16u) * K_ANOM, nc = NC + gl * STREAMS - K_ANOM;  // nc + i: stream i - K_ANOM
  // big row of index i: base + i * RV
  uint base = gl * COEF_STRIDE - i0 * RV;
  uint end = min(i0 + CP, K_ANOM), j = i0;
  // 4 indices per iteration, their loads written first: ACO then issues them together
  for (; j + 4u <= end; j += 4u) {
    uint w[4];
    vec4 a[4 * RV];
    [[unroll]] for (uint u = 0u; u < 4u; ++u) w[u] = stage[ac + j + u];
    [[unroll]] for (uint u = 0u; u < 4u * RV; ++u) a[u] = big[base + j * RV + u];
    [[unroll]] for (uint u = 0u; u < 4u; ++u) {
      float code = float((w[u] >> shift2) & 3u);
      [[unroll]] for (uint v = 0u; v < RV; ++v) acc[v] += a[u * RV + v] * code;
    }
  }
  for (; j < end; ++j) {
    float code = float((stage[ac + j] >> shift2) & 3u);
    [[unroll]] for (uint v = 0u; v < RV; ++v) acc[v] += big[base + j * RV + v] * code;
  }
  end = min(i0 + CP, KS);
  uint i = max(i0, K_ANOM);
  for (; i + 4u <= end; i += 4u) {
    uint w[4];
    vec4 b[4 * RV];
    [[unroll]] for (uint u = 0u; u < 4u; ++u) w[u] = stage[nc + i + u];
    [[unroll]] for (uint u = 0u; u < 4u * RV; ++u) b[u] = big[base + i * RV + u];
    [[unroll]] for (uint u = 0u; u < 4u; ++u) {
      float one = float((w[u] >> bit) & 1u);
      [[unroll]] for (uint v = 0u; v < RV; ++v) acc[v] += b[u * RV + v] * one;
    }
  }
  for (; i < end; ++i) {
    float one = float((stage[nc + i] >> bit) & 1u);
    [[unroll]] for (uint v = 0u; v < RV; ++v) acc[v] += big[base + i * RV + v] * one;
  }
}

// Scores of the split into scores[r * SPLIT + t]: per chunk, the keys staged once, then the
// coefficients folded and applied CP indices at a time (bounded shared memory at any D and RATIO).
void score_split(uint h, uint start, uint n) {
  uint groups = params.tokens / G;
  uint t = gl_LocalInvocationID.x;
  for (uint c0 = 0u; c0 < n; c0 += CT) {
    uint cg = min(CG, (n - c0) / G);
    barrier();  // the previous chunk's readers of stage, big and part_sum are done
    stage_keys(h, (start + c0) / G, cg, groups);
    vec4 acc[RV];
    [[unroll]] for (uint v = 0u; v < RV; ++v) acc[v] = vec4(0.0);
    for (uint i0 = 0u; i0 < KS; i0 += CP) {
      barrier();  // the staged keys are in; the previous pass's readers of big are done
      fold_coefficients(cg, i0);
      barrier();
      score_pass(cg, i0, acc);
    }
    if (t < CT && t / G < cg) {
      bool seen = start + c0 + t < params.visible &&                           // a truncated cache
                  int(start + c0 + t) < params.limit + int(gl_WorkGroupID.z);  // causal mask
      [[unroll]] for (uint r = 0u; r < RATIO; ++r) scores[r * SPLIT + c0 + t] = seen ? acc[r / 4u][r & 3u] : -3.0e38;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Values

// p of the chunk's groups into pw (token-major) and their sums into
// part_sum. Group gl's 32 weights of head r are p_source(r, slot0 + 32 gl + t): scores of the
// split's tokens, or STP part slots (big). Invocation (gl, r, part) writes 8 rows.
// tables (trits): the subset-sum tables in ptab instead of the p rows.
void stage_weights(bool part_slots, uint slot0, uint cg, bool tables) {
  uint lid = gl_LocalInvocationID.x;
  uint part = lid % CPARTS, r = (lid / CPARTS) % 8u, gl = lid / (8u * CPARTS);
  const uint ROWS = G / CPARTS;
  if (r < RP && gl < CG) {
    float sum = 0.0;
    float p[ROWS];
    [[unroll]] for (uint k = 0u; k < ROWS; ++k) {
      uint t = part * ROWS + k, slot = slot0 + gl * G + t;
      p[k] = 0.0;
      if (r < RATIO && gl < cg) {
        if (part_slots) {
          uint i = r * PART_SLOTS + slot;
          p[k] = big[i / 4u][i & 3u];
        } else {
          p[k] = scores[r * SPLIT + slot];
        }
      }
      if (!tables) pw_set(gl * PROWS + t, r, p[k]);
      sum += p[k];
    }
    if (tables) {
      // this invocation's ROWS / 4 nibbles; subset bit b is the nibble's token b
      [[unroll]] for (uint nb = 0u; nb < ROWS / 4u; ++nb) {
        // (constant trip counts only, so that every loop unrolls)
        float subset[16];
        subset[0] = 0.0;
        subset[1] = p[4u * nb];
        [[unroll]] for (uint m = 0u; m < 2u; ++m) subset[2u + m] = subset[m] + p[4u * nb + 1u];
        [[unroll]] for (uint m = 0u; m < 4u; ++m) subset[4u + m] = subset[m] + p[4u * nb + 2u];
        [[unroll]] for (uint m = 0u; m < 8u; ++m) subset[8u + m] = subset[m] + p[4u * nb + 3u];
        uint base = (gl * NIB + part * (ROWS / 4u) + nb) * 16u * RV + r / 4u;
        [[unroll]] for (uint m = 0u; m < 16u; ++m) ptab(base + m * RV)[r & 3u] = subset[m];
      }
      return;
    }
    part_sum[(gl * CPARTS + part) * RV + r / 4u][r & 3u] = sum;
  }
}

vec4 group_sum(uint gl, uint v) {
  vec4 s = vec4(0.0);
  [[unroll]] for (uint p = 0u; p < CPARTS; ++p) s += part_sum[(gl * CPARTS + p) * RV + v];
  return s;
}

// Trits of blocks g0 .. g0 + cg - 1 (of `groups`) of head h: the bytes from trit_base's byte (word
// aligned down, 3 words of slack for the last channel's over-read) and the scales (TS: the first
// scale word).
const uint LT = (TS + WG - 1u) / WG, LC = (DIM * CG + WG - 1u) / WG;
// The stage's first byte: the chunk's first block, or (VG > 32) its group block's byte holding
// the chunk's first trit of channel 0.
uint trit_base(uint h, uint g0, uint groups) {
  if (VG == G) return (h * groups + g0) * BB;
  return (h * (groups / VBPG) + g0 / VBPG) * VBB + (g0 % VBPG) * G / 5u;
}
void stage_trits(uint h, uint g0, uint cg, uint groups) {
  uint lid = gl_LocalInvocationID.x;
  uint b0 = trit_base(h, g0, groups), w0 = b0 / 4u;
  uint last = v_codes.data.length() - 1u;
  uint words[LT], sc[LC];  // loads first (see stage_keys)
  [[unroll]] for (uint k = 0u; k < LT; ++k) words[k] = v_codes.data[min(w0 + min(lid + k * WG, TS - 1u), last)];
  [[unroll]] for (uint k = 0u; k < LC; ++k) {
    uint i = lid + k * WG, c = min(i / CG, DIM - 1u), gl = min(i % CG, cg - 1u);
    uint sidx = scale_index(h * DIM + c, groups, g0, gl, VBPG);
    sc[k] = v_scales.data[sidx >> 1];
  }
  [[unroll]] for (uint k = 0u; k < LT; ++k) {
    uint i = lid + k * WG;
    stage[to(i < TS, i)] = words[k];
  }
  [[unroll]] for (uint k = 0u; k < LC; ++k) {
    uint i = lid + k * WG, c = i / CG, gl = i % CG;
    uint sidx = scale_index(h * DIM + c, groups, g0, gl, VBPG);
    stage[to(i < DIM * CG && gl < cg, TS + i)] = floatBitsToUint(half_at(sc[k], sidx));
  }
}

// 2-bit per-channel codes, scales and mins of groups g0 .. g0 + cg - 1: [c][gl] x 2 words, then
// [c][gl] (scale, min) half pairs. protected_part: the STP protected part (h_*), else v_*.
void stage_b2_channel(bool protected_part, uint h, uint g0, uint cg, uint groups) {
  uint lid = gl_LocalInvocationID.x;
  uint c0[LC], c1[LC], sc[LC], mn[LC];  // loads first (see stage_keys)
  [[unroll]] for (uint k = 0u; k < LC; ++k) {
    uint i = lid + k * WG, c = min(i / CG, DIM - 1u), gl = min(i % CG, cg - 1u);
    uint sidx = (h * DIM + c) * groups + g0 + gl;  // codes by block, scales by value group
    uint vidx = scale_index(h * DIM + c, groups, g0, gl, VBPG);
    if (protected_part) {
      c0[k] = h_codes.data[2u * sidx];
      c1[k] = h_codes.data[2u * sidx + 1u];
      sc[k] = h_scales.data[vidx >> 1];
      mn[k] = h_mins.data[vidx >> 1];
    } else {
      c0[k] = v_codes.data[2u * sidx];
      c1[k] = v_codes.data[2u * sidx + 1u];
      sc[k] = v_scales.data[vidx >> 1];
      mn[k] = v_mins.data[vidx >> 1];
    }
  }
  [[unroll]] for (uint k = 0u; k < LC; ++k) {
    uint i = lid + k * WG, c = i / CG, gl = i % CG;
    uint sidx = scale_index(h * DIM + c, groups, g0, gl, VBPG);
    bool valid = i < DIM * CG && gl < cg;
    stage[to(valid, 2u * i)] = c0[k];
    stage[to(valid, 2u * i + 1u)] = c1[k];
    stage[to(valid, 2u * DIM * CG + i)] = half_bits(sc[k], sidx) | (half_bits(mn[k], sidx) << 16);
  }
}

// KIVI: the chunk's tokens' code rows [t][D/16], then (scale, min) half pairs [t][D/VG].
const uint KIVI_SC = CT * DIM / 16u;
const uint LK = (CT * DIM / 16u + WG - 1u) / WG, LKS = (CT * KSG + WG - 1u) / WG;
void stage_kivi(uint h, uint t0, uint ct) {
  uint lid = gl_LocalInvocationID.x;
  uint row0 = h * params.tokens + t0;
  uint codes[LK], sc[LKS], mn[LKS];  // loads first (see stage_keys)
  [[unroll]] for (uint k = 0u; k < LK; ++k) codes[k] = v_codes.data[row0 * (DIM / 16u) + min(lid + k * WG, ct * (DIM / 16u) - 1u)];
  [[unroll]] for (uint k = 0u; k < LKS; ++k) {
    uint sidx = row0 * KSG + min(lid + k * WG, ct * KSG - 1u);
    sc[k] = v_scales.data[sidx >> 1];
    mn[k] = v_mins.data[sidx >> 1];
  }
  [[unroll]] for (uint k = 0u; k < LK; ++k) {
    uint i = lid + k * WG;
    stage[to(i < ct * (DIM / 16u), i)] = codes[k];
  }
  [[unroll]] for (uint k = 0u; k < LKS; ++k) {
    uint i = lid + k * WG, sidx = row0 * KSG + i;
    stage[to(i < ct * KSG, KIVI_SC + i)] = half_bits(sc[k], sidx) | (half_bits(mn[k], sidx) << 16);
  }
}

vec4 accum[OWN * RV];  // accum[i * RV + v]: heads 4v .. 4v + 3 of owned channel i

// The byte -> digit bits table (once per workgroup; the barriers before its first use publish it).
void init_trit_bits() {
  uint lid = gl_LocalInvocationID.x;
  [[unroll]] for (uint k = 0u; k < (256u + WG - 1u) / WG; ++k) {
    uint b = min(lid + k * WG, 255u), plus = 0u, minus = 0u;
    [[unroll]] for (uint d = 0u; d < 5u; ++d) {
      uint digit = trit_digit(b, d);
      plus |= uint(digit == 2u) << d;
      minus |= uint(digit == 0u) << d;
    }
    trit_bits[b] = plus | (minus << 8);
  }
}

// Adds the staged trit groups to the accumulators: channel c's 32 trits of group gl are digits
// phase .. phase + 31 (phase = 32 c mod 5, up to 4) of the 8 bytes from byte 32 c / 5 of its
// block; their digit bits, 40 per sign, are shifted down by phase into a 32-bit mask per sign (bit t:
// token t), and each nibble of the masks picks its subset sums. VG > 32: block gl's trits of
// channel c are u = c VG + off0 + 32 gl .. + 31 of one group block (off0: the chunk's first
// token within its group), the stage starting at that block's byte off0 / 5.
void trit_chunk(uint b0, uint off0, uint cg) {
  uint L = gl_LocalInvocationID.x;
  uint shift = b0 & 3u;
  for (uint gl = 0u; gl < cg; ++gl) {
    [[unroll]] for (uint i = 0u; i < OWN; ++i) {
      uint c = owned_channel(L, i);
      uint first = VG == G ? gl * BB + shift + 32u * c / 5u
                           : shift + (c * VG + off0 + gl * G) / 5u - off0 / 5u;  // byte within the stage
      uint phase = VG == G ? (32u * c) % 5u : (c * VG + off0 + gl * G) % 5u;
      // the 8 bytes (within 3 words)
      uint w0 = stage[first / 4u], w1 = stage[first / 4u + 1u], w2 = stage[first / 4u + 2u];
      uint sh = 8u * (first & 3u);
      uint lo = sh == 0u ? w0 : (w0 >> sh) | (w1 << (32u - sh));
      uint hi = sh == 0u ? w1 : (w1 >> sh) | (w2 << (32u - sh));
      uint bits[8];
      [[unroll]] for (uint k = 0u; k < 8u; ++k) bits[k] = trit_bits[((k < 4u ? lo : hi) >> (8u * (k & 3u))) & 255u];
      // digit positions 0..31 (bytes 0-6) and 32..39 (bytes 6-7) of each sign
      uint plo = 0u, mlo = 0u;
      [[unroll]] for (uint k = 0u; k < 7u; ++k) {
        plo |= (bits[k] & 31u) << (5u * k);
        mlo |= ((bits[k] >> 8) & 31u) << (5u * k);
      }
      uint phi = ((bits[6] & 31u) >> 2) | ((bits[7] & 31u) << 3);
      uint mhi = (((bits[6] >> 8) & 31u) >> 2) | (((bits[7] >> 8) & 31u) << 3);
      uint plus = phase == 0u ? plo : (plo >> phase) | (phi << (32u - phase));
      uint minus = phase == 0u ? mlo : (mlo >> phase) | (mhi << (32u - phase));
      uint tb = gl * NIB * 16u * RV;
      vec4 sum[RV];
      [[unroll]] for (uint v = 0u; v < RV; ++v) sum[v] = vec4(0.0);
      [[unroll]] for (uint n = 0u; n < NIB; ++n) {
        uint pi = tb + (n * 16u + ((plus >> (4u * n)) & 15u)) * RV;
        uint mi = tb + (n * 16u + ((minus >> (4u * n)) & 15u)) * RV;
        [[unroll]] for (uint v = 0u; v < RV; ++v) sum[v] += ptab(pi + v) - ptab(mi + v);
      }
      float s = uintBitsToFloat(stage[TS + c * CG + gl]);
      [[unroll]] for (uint v = 0u; v < RV; ++v) accum[i * RV + v] += s * sum[v];
    }
  }
}

void b2_channel_chunk(uint cg) {
  uint L = gl_LocalInvocationID.x;
  for (uint gl = 0u; gl < cg; ++gl) {
    [[unroll]] for (uint i = 0u; i < OWN; ++i) {
      uint c = owned_channel(L, i), e = c * CG + gl;
      uint w0 = stage[2u * e], w1 = stage[2u * e + 1u];
      vec4 sum[RV];
      [[unroll]] for (uint v = 0u; v < RV; ++v) sum[v] = vec4(0.0);
      // 4 tokens per iteration, not 32: a fully unrolled loop has every p load hoisted (spills)
      [[dont_unroll]] for (uint t0 = 0u; t0 < G; t0 += 4u) {
        uint w = t0 < 16u ? w0 : w1;
        [[unroll]] for (uint k = 0u; k < 4u; ++k) {
          float code = float((w >> (2u * ((t0 + k) & 15u))) & 3u);
          [[unroll]] for (uint v = 0u; v < RV; ++v) sum[v] += pw((gl * PROWS + t0 + k) * RV + v) * code;
        }
      }
      vec2 sm = unpackHalf2x16(stage[2u * DIM * CG + e]);
      [[unroll]] for (uint v = 0u; v < RV; ++v) accum[i * RV + v] += sm.x * sum[v] + sm.y * group_sum(gl, v);
    }
  }
}

void kivi_chunk(uint cg) {
  uint L = gl_LocalInvocationID.x;
  for (uint gl = 0u; gl < cg; ++gl) {
    [[unroll]] for (uint i = 0u; i < OWN; ++i) {
      uint c = owned_channel(L, i);
      for (uint t = 0u; t < G; ++t) {
        uint tc = gl * G + t;
        float code = float((stage[tc * (DIM / 16u) + c / 16u] >> (2u * (c & 15u))) & 3u);
        vec2 sm = unpackHalf2x16(stage[KIVI_SC + tc * KSG + c / VG]);
        float value = code * sm.x + sm.y;
        [[unroll]] for (uint v = 0u; v < RV; ++v) accum[i * RV + v] += pw((gl * PROWS + t) * RV + v) * value;
      }
    }
  }
}

// Values of `count` groups from g_first of a per-channel tensor (trits, or 2-bit per channel:
// v_* or STP's protected h_*) of `groups` groups, weights from slot first_slot + 32 gl + t.
void channel_values(bool trits, bool protected_part, bool part_slots, uint first_slot, uint h, uint g_first,
                    uint count, uint groups) {
  uint cg = 0u;
  for (uint gc = 0u; gc < count; gc += VG == G ? CG : cg) {
    cg = min(CG, count - gc);
    if (VG > G) cg = min(cg, VBPG - (g_first + gc) % VBPG);  // a chunk stays in one value group
    barrier();  // the previous chunk's readers of stage and pw are done
    if (trits) stage_trits(h, g_first + gc, cg, groups);
    else stage_b2_channel(protected_part, h, g_first + gc, cg, groups);
    stage_weights(part_slots, first_slot + gc * G, cg, trits);
    barrier();
    // (groups of 32: the expression of before, which compiles to the same code)
    uint b0 = VG == G ? (h * groups + g_first + gc) * BB : trit_base(h, g_first + gc, groups);
    if (trits) trit_chunk(b0, (g_first + gc) % VBPG * G, cg);
    else b2_channel_chunk(cg);
  }
}

void kivi_values(uint h, uint start, uint n) {
  for (uint c0 = 0u; c0 < n; c0 += CT) {
    uint ct = min(CT, n - c0);
    barrier();
    stage_kivi(h, start + c0, ct);
    stage_weights(false, c0, ct / G, false);
    barrier();
    kivi_chunk(ct / G);
  }
}

// STP: after the split's softmax, moves each token's p to its part slot (big). The split's tokens
// of each part have contiguous part indices (both parts keep sequence order), from which the part
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
  barrier();  // big held the coefficients
  for (uint i = lid; i < RATIO * PART_SLOTS; i += WG) big[i / 4u][i & 3u] = 0.0;
  barrier();
  for (uint t = lid; t < n; t += WG) {
    uint e = token_map.data[start + t];
    uint slot = (e >> 31) == 1u ? high_slot0 + (e & 0x7fffffffu) - high_base : e - low_base;
    slot = min(slot, PART_SLOTS - 1u);  // (a wrong map must not write out of bounds)
    [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
      uint i = r * PART_SLOTS + slot;
      big[i / 4u][i & 3u] = scores[r * SPLIT + t];
    }
  }
  if (low_end > low_begin) {
    channel_values(true, false, true, 0u, h, low_base / G, (low_end - low_base + G - 1u) / G, (T - np) / G);
  }
  if (high_end > high_begin) {
    channel_values(false, true, true, high_slot0, h, high_base / G, (high_end - high_base + G - 1u) / G, np / G);
  }
}

void main() {
  uint lid = gl_LocalInvocationID.x;
  uint split = gl_WorkGroupID.x;
  uint h = group_kv_head();
  uint q_heads = params.kv_heads * Q_PER_KV;
  uint T = params.tokens;
  uint start = split * SPLIT;
  uint n = min(SPLIT, min(T, (params.visible + G - 1u) / G * G) - start);

  if (HAS_TRITS) init_trit_bits();
  transform_query(h);
  score_split(h, start, n);
  barrier();
  split_softmax(n);

  [[unroll]] for (uint i = 0u; i < OWN * RV; ++i) accum[i] = vec4(0.0);
  if (VALUE_MODE == 0u) {
    channel_values(true, false, false, 0u, h, start / G, n / G, T / G);
  } else if (VALUE_MODE == 1u) {
    channel_values(false, false, false, 0u, h, start / G, n / G, T / G);
  } else if (VALUE_MODE == 2u) {
    kivi_values(h, start, n);
  } else {
    stp_values(h, start, n);
  }

  uint slot = gl_WorkGroupID.z * params.query_slots + params.slot_base + split;
  [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
    if (!head_stored(r)) continue;
    uint o = (slot * q_heads + h * Q_PER_KV + head_in_kv(r)) * (DIM + 2u);
    if (lid == 0u) {
      partials.data[o] = stat_m[r];
      partials.data[o + 1u] = stat_l[r];
    }
    [[unroll]] for (uint i = 0u; i < OWN; ++i) {
      if (channel_stored(lid, i)) partials.data[o + 2u + lid + i * WG] = accum[i * RV + r / 4u][r & 3u];
    }
  }
}
