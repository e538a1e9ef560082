#version 450
#extension GL_GOOGLE_include_directive : require
// Decode attention straight from one packed VidKV segment (never decoded to fp16 in memory).
// Keys (QuantizedKeys' device layout, group size 32): K_ANOM anomalous channels at 2 bits,
// codes [h][j][T/16], scales/mins [h][j][T/32]; S 1-bit coefficient streams of the N normal
// channels' DFT, codes [h][s][T/32], scales [h][s][T/32]. Scores never decode a key:
//   anomalous: q_c * (code * s + mn) = (q_c * s) * code + q_c * mn, the products folded once per
//     (group, query head) into shared memory, the mn part summed into one bias per group;
//   normal: q . Re(IDFT(X)) = (1/N) sum_f (Re X_f Re Q_f + Im X_f Im Q_f) with Q = DFT(q_normal),
//     computed once per workgroup; stream s then weighs w_s * s_sg * (2b - 1).
// Values, VALUE_MODE 0: 1.58-bit trits 5 per byte (per (head, group) block, trit c * 32 + t),
// out_c = sum_g s_cg sum_t p_t code_tc; 1: 2-bit per channel, codes [h][c][T/16], adds
// mn_cg * sum_t p_t; 2: 2-bit per token (KIVI), codes [h][t][D/16], scales/mins [h][t][D/32].
#include "attention.glsl"
#include "trits.glsl"

layout(constant_id = 4) const uint K_ANOM = 64u;     // anomalous channels
layout(constant_id = 5) const uint STREAMS = 64u;    // coefficient streams (N half, 2N full)
layout(constant_id = 6) const uint NORMAL = 64u;     // normal channels N = DIM - K_ANOM
layout(constant_id = 7) const uint FFT_FULL = 0u;
layout(constant_id = 8) const uint VALUE_MODE = 0u;
layout(constant_id = 9) const uint SCOPE_LAYER = 0u; // one channel list for all heads

const uint G = 32u;
const uint GPT = WG / G;                 // groups per tile of WG tokens
const uint KS = K_ANOM + STREAMS;
const uint KA1 = K_ANOM > 0u ? K_ANOM : 1u;  // arrays are never empty
const uint S1 = STREAMS > 0u ? STREAMS : 1u;
const uint N1 = NORMAL > 0u ? NORMAL : 1u;

layout(std430, binding = 0) readonly buffer Query { float data[]; } query;
layout(std430, binding = 1) readonly buffer Channels { uint data[]; } channels;
layout(std430, binding = 2) readonly buffer KaCodes { uint data[]; } ka_codes;
layout(std430, binding = 3) readonly buffer KaScales { uint data[]; } ka_scales;
layout(std430, binding = 4) readonly buffer KaMins { uint data[]; } ka_mins;
layout(std430, binding = 5) readonly buffer KnCodes { uint data[]; } kn_codes;
layout(std430, binding = 6) readonly buffer KnScales { uint data[]; } kn_scales;
layout(std430, binding = 7) readonly buffer VCodes { uint data[]; } v_codes;
layout(std430, binding = 8) readonly buffer VScales { uint data[]; } v_scales;
layout(std430, binding = 9) readonly buffer VMins { uint data[]; } v_mins;
layout(std430, binding = 10) writeonly buffer Partials { float data[]; } partials;

layout(push_constant) uniform Params {
  uint kv_heads;
  uint tokens;     // tokens of the segment (a multiple of 32)
  uint slot_base;
  float scale;
} params;

shared float qa[RATIO * KA1];            // scaled query at the anomalous channels
shared float qn[RATIO * N1];             // scaled query at the normal channels
shared float ws[RATIO * S1];             // stream weights before the group scale
shared float fw[GPT * RATIO * (KS > 0u ? KS : 1u)];  // folded weights of the tile's groups
shared float bias[GPT * RATIO];
shared float psum[RATIO * (SPLIT / G)];  // sum of p over each group (2-bit values' mins)

float half_at(uint word, uint index) { return unpackHalf2x16(word >> (16u * (index & 1u))).x; }

// Weight of stream s for query head r: (c_f / N) (Re or Im of Q_f), Q_f = sum_n q_n e^(-2 pi i f n / N).
float stream_weight(uint r, uint s) {
  uint f = FFT_FULL == 1u ? s / 2u : (s + 1u) / 2u;
  bool imag = FFT_FULL == 1u ? (s & 1u) == 1u : (s > 0u && (s & 1u) == 0u);
  float c = (FFT_FULL == 1u || f == 0u || 2u * f == NORMAL) ? 1.0 : 2.0;
  float sum = 0.0;
  for (uint n = 0u; n < NORMAL; ++n) {
    // reduce f * n mod N first so the angle stays in [0, 2 pi)
    float angle = 6.283185307179586 * float((f * n) % NORMAL) / float(NORMAL);
    sum += qn[r * N1 + n] * (imag ? -sin(angle) : cos(angle));
  }
  return c * sum / float(NORMAL);
}

void main() {
  uint lid = gl_LocalInvocationID.x;
  uint split = gl_WorkGroupID.x;
  uint h = gl_WorkGroupID.y;
  uint q_heads = params.kv_heads * RATIO;
  uint T = params.tokens;
  uint groups = T / G;
  uint start = split * SPLIT;
  uint n = min(SPLIT, T - start);
  uint unit = SCOPE_LAYER == 1u ? 0u : h;

  for (uint i = lid; i < RATIO * DIM; i += WG) {
    uint r = i / DIM, j = i % DIM;
    float q = query.data[(h * RATIO + r) * DIM + channels.data[unit * DIM + j]] * params.scale;
    if (j < K_ANOM) qa[r * KA1 + j] = q; else qn[r * N1 + j - K_ANOM] = q;
  }
  barrier();
  for (uint i = lid; i < RATIO * STREAMS; i += WG) ws[i] = stream_weight(i / STREAMS, i % STREAMS);
  barrier();

  for (uint tile = 0u; tile < n; tile += WG) {
    uint g0 = (start + tile) / G;
    for (uint e = lid; e < GPT * RATIO * KS; e += WG) {
      uint gt = e / (RATIO * KS), r = (e / KS) % RATIO, i = e % KS;
      uint g = min(g0 + gt, groups - 1u);  // a tile past the end folds a copy it never reads
      if (i < K_ANOM) {
        uint idx = (h * K_ANOM + i) * groups + g;
        fw[e] = qa[r * KA1 + i] * half_at(ka_scales.data[idx >> 1], idx);
      } else {
        uint idx = (h * STREAMS + i - K_ANOM) * groups + g;
        fw[e] = ws[r * S1 + i - K_ANOM] * half_at(kn_scales.data[idx >> 1], idx);
      }
    }
    for (uint e = lid; e < GPT * RATIO; e += WG) {
      uint g = min(g0 + e / RATIO, groups - 1u), r = e % RATIO;
      float b = 0.0;
      for (uint j = 0u; j < K_ANOM; ++j) {
        uint idx = (h * K_ANOM + j) * groups + g;
        b += qa[r * KA1 + j] * half_at(ka_mins.data[idx >> 1], idx);
      }
      bias[e] = b;
    }
    barrier();
    uint t = tile + lid;
    if (t < n) {
      uint tok = start + t;
      uint gt = lid / G;
      float acc[RATIO];
      for (uint r = 0u; r < RATIO; ++r) acc[r] = bias[gt * RATIO + r];
      uint fbase = gt * RATIO * KS;
      uint shift2 = 2u * (tok & 15u);
      for (uint j = 0u; j < K_ANOM; ++j) {
        float code = float((ka_codes.data[(h * K_ANOM + j) * (T / 16u) + tok / 16u] >> shift2) & 3u);
        for (uint r = 0u; r < RATIO; ++r) acc[r] += fw[fbase + r * KS + j] * code;
      }
      for (uint s = 0u; s < STREAMS; ++s) {
        uint bit = (kn_codes.data[(h * STREAMS + s) * (T / 32u) + tok / 32u] >> (tok & 31u)) & 1u;
        float sign = float(int(bit) * 2 - 1);
        for (uint r = 0u; r < RATIO; ++r) acc[r] += fw[fbase + r * KS + K_ANOM + s] * sign;
      }
      for (uint r = 0u; r < RATIO; ++r) scores[r * SPLIT + t] = acc[r];
    }
    barrier();
  }
  split_softmax(n);

  uint ngroups = n / G;
  if (VALUE_MODE == 1u) {
    for (uint e = lid; e < RATIO * ngroups; e += WG) {
      uint r = e / ngroups, gl = e % ngroups;
      float s = 0.0;
      for (uint t = 0u; t < G; ++t) s += scores[r * SPLIT + gl * G + t];
      psum[r * (SPLIT / G) + gl] = s;
    }
    barrier();
  }

  float acc[RATIO * CPL];
  for (uint i = 0u; i < RATIO * CPL; ++i) acc[i] = 0.0;
  for (uint i = 0u; i < CPL; ++i) {
    uint c = lid + i * WG;
    if (c >= DIM) continue;
    if (VALUE_MODE == 2u) {
      for (uint t = 0u; t < n; ++t) {
        uint row = h * T + start + t;
        uint code = (v_codes.data[row * (DIM / 16u) + c / 16u] >> (2u * (c & 15u))) & 3u;
        uint sidx = row * (DIM / G) + c / G;
        float v = float(code) * half_at(v_scales.data[sidx >> 1], sidx) + half_at(v_mins.data[sidx >> 1], sidx);
        for (uint r = 0u; r < RATIO; ++r) acc[r * CPL + i] += scores[r * SPLIT + t] * v;
      }
      continue;
    }
    for (uint gl = 0u; gl < ngroups; ++gl) {
      uint g = start / G + gl;
      float inner[RATIO];
      for (uint r = 0u; r < RATIO; ++r) inner[r] = 0.0;
      if (VALUE_MODE == 0u) {
        uint bbase = (h * groups + g) * trit_block_bytes(DIM, G);
        uint trit = c * G;
        uint b = div5(trit);
        uint pos = trit - 5u * b;
        uint x = (v_codes.data[(bbase + b) >> 2] >> (8u * ((bbase + b) & 3u))) & 255u;
        for (uint p = 0u; p < pos; ++p) x = (x * 3u) & 255u;
        for (uint t = 0u; t < G; ++t) {
          // digit i of a byte is the top byte of (x * 3) where x carries the lower digits
          uint x3 = x * 3u;
          float code = float(int(x3 >> 8) - 1);
          x = x3 & 255u;
          if (++pos == 5u && t + 1u < G) {
            pos = 0u;
            ++b;
            x = (v_codes.data[(bbase + b) >> 2] >> (8u * ((bbase + b) & 3u))) & 255u;
          }
          for (uint r = 0u; r < RATIO; ++r) inner[r] += scores[r * SPLIT + gl * G + t] * code;
        }
        uint sidx = (h * DIM + c) * groups + g;
        float s = half_at(v_scales.data[sidx >> 1], sidx);
        for (uint r = 0u; r < RATIO; ++r) acc[r * CPL + i] += s * inner[r];
      } else {
        uint wbase = (h * DIM + c) * (T / 16u) + g * 2u;
        for (uint half_word = 0u; half_word < 2u; ++half_word) {
          uint word = v_codes.data[wbase + half_word];
          for (uint t = 0u; t < 16u; ++t) {
            float code = float((word >> (2u * t)) & 3u);
            for (uint r = 0u; r < RATIO; ++r) inner[r] += scores[r * SPLIT + gl * G + half_word * 16u + t] * code;
          }
        }
        uint sidx = (h * DIM + c) * groups + g;
        float s = half_at(v_scales.data[sidx >> 1], sidx), mn = half_at(v_mins.data[sidx >> 1], sidx);
        for (uint r = 0u; r < RATIO; ++r) acc[r * CPL + i] += s * inner[r] + mn * psum[r * (SPLIT / G) + gl];
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
    for (uint i = 0u; i < CPL; ++i) {
      uint c = lid + i * WG;
      if (c < DIM) partials.data[o + 2u + c] = acc[r * CPL + i];
    }
  }
}
