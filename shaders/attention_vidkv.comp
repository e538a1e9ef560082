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
//   memory beside the chunk's weights; invocation L owns channels L + i * WG and sums p * code over
//   a group, then applies the group's scale and min once:
//   out_c += s_cg * sum_t p_t code_tc + mn_cg * sum_t p_t.
//   Per-channel codes (trits, 2 bits) take no multiply per token: the chunk's p go into subset-sum
//   tables (per group, 4-token nibble and head: the sum of p over each of the 16 subsets of the
//   nibble's tokens), and a channel's 32 codes become two 32-bit masks (bit t: token t), so a
//   nibble costs two table reads per head vector: trits, the tokens at +1 and at -1 (a 256-entry
//   byte table gives each byte's 5 digits as such bits), sum_t p_t trit_tc = sum_nibbles
//   T[plus bits] - T[minus bits]; 2 bits, the codes' low and high bits (an unshuffle of the two
//   code words), sum_t p_t code_tc = sum_nibbles T[low bits] + 2 T[high bits] (exact fp32 sums of up
//   to 4 p per entry). KIVI (per-token scales) multiplies p by each token's decoded value, 4 tokens'
//   reads at a time, from token-major p rows.
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
const bool HAS_TABLES = VALUE_MODE != 2u;  // per-channel value codes (trits, 2 bits): subset-sum tables
const uint NIB = G / 4u;                  // 4-token nibbles per group (subset-sum tables)
// The value phase's arrays, one at a time (each channel_values chunk opens with a barrier): the p
// rows (KIVI) or the subset-sum tables (trits, 2 bits per channel). They live in big, past STP's part slots, or
// over the key coefficients, which are dead once the scores are taken.
const uint VAL_PW = VALUE_MODE == 2u ? CG * PROWS * RV : 0u;
const uint VAL_TAB = HAS_TABLES ? CG * NIB * 16u * RV : 0u;
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

// Every shared array is a whole number of vec4s (sizes rounded up), so that each starts
// 16-byte aligned wherever the compiler places it: GPU compilers then read big's and part_sum's
// vec4s with one 16-byte load (ds_load_b128) and fold their offsets into the instruction.
shared vec4 big[BIG];
shared vec4 part_sum[CG * RV * CPARTS];       // keys: C; values: sum p; [group][part][head]
shared float qk[(RATIO * KS + 4u) / 4u * 4u];  // transformed query of this KV head's query heads, + a trash slot
shared uint stage[(STAGE + 4u) / 4u * 4u];  // + a word that takes the stores of out-of-range indices
const uint TRASH = STAGE;
// In big from VAL0: the chunk's p, [group][row][head] (pw, KIVI), or the sum of p over each subset
// of a nibble's 4 tokens, [group][nibble][subset][head] (ptab, per-channel codes).
#define pw(i) big[VAL0 + (i)]
#define ptab(i) big[VAL0 + (i)]
// Per byte value its digits at 2 (bits 0-4) and at 0 (bits 16-20), digit d as bit d.
shared uint trit_bits[HAS_TRITS ? 256u : 4u];  // (unused: one vec4, like every shared array)

#include "attention_vidkv_query.glsl"

float half_at(uint word, uint index) { return unpackHalf2x16(word >> (16u * (index & 1u))).x; }

// Head r's component of p row `row` (RV vec4s per row).
void pw_set(uint row, uint r, float v) { pw(row * RV + r / 4u)[r & 3u] = v; }

// The half at `index` of a buffer of halves, as its 16 bits.
uint half_bits(uint word, uint index) { return (word >> (16u * (index & 1u))) & 0xffffu; }
// A staging store's index, or TRASH for what lies past a partial chunk: every load of a staging
// copy is issued before its first store, all in one basic block (see stage_keys).
uint to(bool valid, uint index) { return valid ? index : TRASH; }
// Index of the scale of block g0 + gl (of `blocks`) of row `row` in a [rows][blocks / bpg] array
// (bpg blocks per group). One block per group: the expression of before, so that groups of 32
// compile to the same code.
uint scale_index(uint row, uint blocks, uint g0, uint gl, uint bpg) {
  return bpg == 1u ? row * blocks + g0 + gl : row * (blocks / bpg) + (g0 + gl) / bpg;
}

#include "attention_vidkv_scores.glsl"
#include "attention_vidkv_values.glsl"

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
