// The score phase of attention_vidkv.comp (its header says how): a chunk's key words and scales
// staged in shared memory, the query folded with the scales into per-(group, head) coefficients,
// and one token scored per invocation. Included once, by attention_vidkv.comp, after its constants,
// bindings and shared arrays (stage, TRASH, big, part_sum, qk, scores), its staging helpers
// (half_at, half_bits, to, scale_index) and the query transform.

const uint AC = 0u;                          // anomalous code words [w][j] (w: 16 tokens)
const uint NC = AC + 4u * K_ANOM;            // stream words [gl][s]
const uint AS = NC + 2u * STREAMS;           // anomalous (scale, min) half pairs [j][2]
const uint NS = AS + 2u * K_ANOM;            // stream scales [s][2] (float bits)

// Copies the key words and scales of groups g0 .. g0 + cg - 1 to the staging area. Every load
// is issued before the first store (indices clamped into the chunk; what lies past a partial
// chunk is loaded but stored to TRASH via `to`), all in one basic block: ACO schedules within a
// block, so a load before each conditional store would wait each time; this way they are all in
// flight.
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

// One index's coefficient (at big row `row`, component e) and its term of C, from its q and its
// staged (scale, min) half pair (anomalous channel) or scale (stream).
void fold_anomalous(float q, uint scale_min, uint row, uint e, inout float c) {
  vec2 sm = unpackHalf2x16(scale_min);
  big[row][e] = q * sm.x;
  c += q * sm.y;
}
void fold_stream(float q, float scale, uint row, uint e, inout float c) {
  float ws = q * scale;
  big[row][e] = 2.0 * ws;
  c -= ws;
}

// A and B of the pass's indices i0 .. i0 + CP - 1 (anomalous channels, then streams) for every
// (group, head) into big, the pass's part of C in CPARTS parts into part_sum. Invocation
// (gl, r, part) takes the indices i = i0 + part (mod CPARTS), 4 at a time with their reads issued
// first (one shared-memory round trip per 4 indices, not per index).
void fold_coefficients(uint cg, uint i0) {
  uint lid = gl_LocalInvocationID.x;
  uint part = lid % CPARTS, r = (lid / CPARTS) % 8u, gl = lid / (8u * CPARTS);
  if (r < RATIO && gl < cg) {
    float c = 0.0;
    uint row = gl * COEF_STRIDE + r / 4u, e = r & 3u;
    uint end = min(i0 + CP, K_ANOM), j = i0 + part;
    for (; j + 3u * CPARTS < end; j += 4u * CPARTS) {
      float q[4];
      uint sm[4];
      [[unroll]] for (uint u = 0u; u < 4u; ++u) {
        q[u] = qk[r * KS + j + u * CPARTS];
        sm[u] = stage[AS + 2u * (j + u * CPARTS) + gl];
      }
      [[unroll]] for (uint u = 0u; u < 4u; ++u) fold_anomalous(q[u], sm[u], row + (j + u * CPARTS - i0) * RV, e, c);
    }
    for (; j < end; j += CPARTS) fold_anomalous(qk[r * KS + j], stage[AS + 2u * j + gl], row + (j - i0) * RV, e, c);
    end = min(i0 + CP, KS);
    uint i = max(i0, K_ANOM) + part;
    for (; i + 3u * CPARTS < end; i += 4u * CPARTS) {
      float q[4], sn[4];
      [[unroll]] for (uint u = 0u; u < 4u; ++u) {
        q[u] = qk[r * KS + i + u * CPARTS];
        sn[u] = uintBitsToFloat(stage[NS + 2u * (i + u * CPARTS - K_ANOM) + gl]);
      }
      [[unroll]] for (uint u = 0u; u < 4u; ++u) fold_stream(q[u], sn[u], row + (i + u * CPARTS - i0) * RV, e, c);
    }
    for (; i < end; i += CPARTS) {
      fold_stream(qk[r * KS + i], uintBitsToFloat(stage[NS + 2u * (i - K_ANOM) + gl]), row + (i - i0) * RV, e, c);
    }
    part_sum[(gl * CPARTS + part) * RV + r / 4u][r & 3u] = c;
  }
}

// Adds the terms of key indices from .. end - 1 of the chunk's token t to acc: index i's code is
// the `width`-bit field at `shift` of staged word words + i, its coefficients big[base + i * RV ..].
// SU indices per iteration, their loads written first: ACO then issues them together (one
// shared-memory round trip per SU indices). Codes by bitfieldExtract: one instruction
// (v_bfe_u32) where a shift and a mask take two.
const uint SU = 8u;  // key indices per step of the score loops
void score_indices(uint words, uint from, uint end, uint base, int shift, int width, inout vec4 acc[RV]) {
  uint i = from;
  for (; i + SU <= end; i += SU) {
    uint w[SU];
    vec4 c[SU * RV];
    [[unroll]] for (uint u = 0u; u < SU; ++u) w[u] = stage[words + i + u];
    [[unroll]] for (uint u = 0u; u < SU * RV; ++u) c[u] = big[base + i * RV + u];
    [[unroll]] for (uint u = 0u; u < SU; ++u) {
      float code = float(bitfieldExtract(w[u], shift, width));
      [[unroll]] for (uint v = 0u; v < RV; ++v) acc[v] += c[u * RV + v] * code;
    }
  }
  for (; i < end; ++i) {
    float code = float(bitfieldExtract(stage[words + i], shift, width));
    [[unroll]] for (uint v = 0u; v < RV; ++v) acc[v] += big[base + i * RV + v] * code;
  }
}

// Adds the pass's terms (indices i0 .. i0 + CP - 1) of the chunk's token t = invocation to acc:
// 2-bit codes of the anomalous channels, then 1-bit codes of the streams.
void score_pass(uint cg, uint i0, inout vec4 acc[RV]) {
  uint t = gl_LocalInvocationID.x, gl = t / G;
  if (t >= CT || gl >= cg) return;
  // C's parts, all read before the first add (one round trip, not one per read)
  vec4 parts[RV * CPARTS];
  [[unroll]] for (uint v = 0u; v < RV; ++v)
    [[unroll]] for (uint p = 0u; p < CPARTS; ++p) parts[v * CPARTS + p] = part_sum[(gl * CPARTS + p) * RV + v];
  [[unroll]] for (uint v = 0u; v < RV; ++v)
    [[unroll]] for (uint p = 0u; p < CPARTS; ++p) acc[v] += parts[v * CPARTS + p];
  uint ac = AC + (t / 16u) * K_ANOM, nc = NC + gl * STREAMS - K_ANOM;  // nc + i: stream i - K_ANOM
  uint base = gl * COEF_STRIDE - i0 * RV;  // big row of index i: base + i * RV
  score_indices(ac, i0, min(i0 + CP, K_ANOM), base, int(2u * (t & 15u)), 2, acc);
  score_indices(nc, max(i0, K_ANOM), min(i0 + CP, KS), base, int(t & 31u), 1, acc);
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
