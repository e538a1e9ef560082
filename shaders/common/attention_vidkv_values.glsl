// The value phase of attention_vidkv.comp (its header says how): after the split's softmax, per
// chunk of two 32-token blocks, the weights (p rows, or the trits' subset-sum tables) and the
// value codes staged in shared memory, and each invocation's owned channels summed (trits, 2 bits
// per channel, KIVI, and STP's two parts). Included once, by attention_vidkv.comp, after its
// constants, bindings and shared arrays (stage, big, pw, ptab, part_sum, trit_bits, scores),
// half_at, half_bits, to, scale_index, owned_channel and pw_set.

// p of the chunk's groups into pw (token-major; KIVI) or into subset-sum tables (per-channel
// codes: trits and 2 bits), and their sums into part_sum. Group gl's 32 weights of head r are
// p_source(r, slot0 + 32 gl + t): scores of the split's tokens, or STP part slots (big).
// Invocation (gl, r, part) takes 8 rows.
// The tables: ptab[group][nibble][subset][head], for each 4-token nibble the sum of p over each of the
// 16 subsets of its tokens (subset bit b: the nibble's token b).
void stage_weights(bool part_slots, uint slot0, uint cg) {
  const bool tables = HAS_TABLES;  // KIVI is the only mode with p rows
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
      // this invocation's ROWS / 4 nibbles
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
    }
    // (trits have no mins: they need no sums)
    if (VALUE_MODE != 0u) part_sum[(gl * CPARTS + part) * RV + r / 4u][r & 3u] = sum;
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
    trit_bits[b] = plus | (minus << 16);
  }
}

// NB: nibbles whose table reads are issued together (2 x RV vec4s each, held in registers until
// used); OB (trit_chunk): owned channels whose stage words and digit bits are. Fewer of both at
// head_dim 208-256 (4 owned channels), where more would spill on RDNA3.
const uint NB = OWN < 4u ? 4u : 2u;
const uint OB = OWN >= 4u ? 1u : (OWN < 2u ? OWN : 2u);
// sum[v] (heads 4v .. 4v + 3) = sum over the group's tokens t of p_t (bit t of a) + weight_b p_t
// (bit t of b), from the subset-sum tables of group gl: per 4-token nibble one table entry for a's
// 4 bits and one for b's. signed_b: weight_b = -1 (trits: a the tokens at +1, b those at -1), else
// 2 (2-bit codes: a their low bits, b their high bits). NB nibbles' reads are issued together.
void masked_sums(uint gl, uint a, uint b, bool signed_b, out vec4 sum[RV]) {
  uint tb = gl * NIB * 16u * RV;
  [[unroll]] for (uint v = 0u; v < RV; ++v) sum[v] = vec4(0.0);
  [[unroll]] for (uint n0 = 0u; n0 < NIB; n0 += NB) {
    vec4 ta[NB * RV], tm[NB * RV];
    [[unroll]] for (uint n = 0u; n < NB; ++n) {
      uint ai = tb + ((n0 + n) * 16u + bitfieldExtract(a, int(4u * (n0 + n)), 4)) * RV;
      uint bi = tb + ((n0 + n) * 16u + bitfieldExtract(b, int(4u * (n0 + n)), 4)) * RV;
      [[unroll]] for (uint v = 0u; v < RV; ++v) {
        ta[n * RV + v] = ptab(ai + v);
        tm[n * RV + v] = ptab(bi + v);
      }
    }
    [[unroll]] for (uint n = 0u; n < NB; ++n)
      [[unroll]] for (uint v = 0u; v < RV; ++v) {
        if (signed_b) sum[v] += ta[n * RV + v] - tm[n * RV + v];
        else sum[v] += ta[n * RV + v] + 2.0 * tm[n * RV + v];
      }
  }
}

// Adds the staged trit groups to the accumulators: channel c's 32 trits of group gl are digits
// phase .. phase + 31 (phase = 32 c mod 5, up to 4) of the 8 bytes from byte 32 c / 5 of its
// block; their digit bits, 40 per sign, are shifted down by phase into a 32-bit mask per sign (bit t:
// token t), and each nibble of the masks picks its subset sums. VG > 32: block gl's trits of
// channel c are u = c VG + off0 + 32 gl .. + 31 of one group block (off0: the chunk's first
// token within its group), the stage starting at that block's byte off0 / 5.
// OB: owned channels whose stage words and digit bits are read together (see masked_sums' NB).
void trit_chunk(uint b0, uint off0, uint cg) {
  uint L = gl_LocalInvocationID.x;
  uint shift = b0 & 3u;
  for (uint gl = 0u; gl < cg; ++gl) {
    [[unroll]] for (uint i0 = 0u; i0 < OWN; i0 += OB) {
      // Each read below is issued before the first use of any of its kind (OB owned channels'
      // stage words and scales, then their bytes' digit bits, then NB nibbles' table entries at a
      // time): on GPUs every wait for shared memory is a round trip in a wave's serial chain.
      uint w[3u * OB], phase[OB], sh[OB];
      float s[OB];
      [[unroll]] for (uint j = 0u; j < OB; ++j) {
        uint c = owned_channel(L, min(i0 + j, OWN - 1u));
        uint first = VG == G ? gl * BB + shift + 32u * c / 5u
                             : shift + (c * VG + off0 + gl * G) / 5u - off0 / 5u;  // byte within the stage
        phase[j] = VG == G ? (32u * c) % 5u : (c * VG + off0 + gl * G) % 5u;
        sh[j] = 8u * (first & 3u);
        // the 8 bytes (within 3 words)
        [[unroll]] for (uint k = 0u; k < 3u; ++k) w[3u * j + k] = stage[first / 4u + k];
        s[j] = uintBitsToFloat(stage[TS + c * CG + gl]);
      }
      uint bits[8u * OB];
      [[unroll]] for (uint j = 0u; j < OB; ++j) {
        uint w0 = w[3u * j], w1 = w[3u * j + 1u], w2 = w[3u * j + 2u];
        uint lo = sh[j] == 0u ? w0 : (w0 >> sh[j]) | (w1 << (32u - sh[j]));
        uint hi = sh[j] == 0u ? w1 : (w1 >> sh[j]) | (w2 << (32u - sh[j]));
        [[unroll]] for (uint k = 0u; k < 8u; ++k) bits[8u * j + k] = trit_bits[((k < 4u ? lo : hi) >> (8u * (k & 3u))) & 255u];
      }
      [[unroll]] for (uint j = 0u; j < OB; ++j) {
        uint i = i0 + j;
        if (i >= OWN) break;  // (OWN 3: the second batch has one channel; constant after unrolling)
        // Both signs' digit bits side by side (plus in bits 0-14, minus in 16-30): digits 0-14
        // (bytes 0-2), 15-29 (bytes 3-5), 30-39 (bytes 6-7); then each sign's digits 0..31 and
        // 32..39. One shift-and-or per byte serves both signs.
        uint e = 8u * j;
        uint r0 = bits[e] | (bits[e + 1u] << 5) | (bits[e + 2u] << 10);
        uint r1 = bits[e + 3u] | (bits[e + 4u] << 5) | (bits[e + 5u] << 10);
        uint r2 = bits[e + 6u] | (bits[e + 7u] << 5);
        uint plo = (r0 & 0x7fffu) | ((r1 & 0x7fffu) << 15) | (r2 << 30);
        uint mlo = (r0 >> 16) | ((r1 >> 16) << 15) | ((r2 >> 16) << 30);
        uint phi = bitfieldExtract(r2, 2, 8), mhi = bitfieldExtract(r2, 18, 8);
        uint plus = phase[j] == 0u ? plo : (plo >> phase[j]) | (phi << (32u - phase[j]));
        uint minus = phase[j] == 0u ? mlo : (mlo >> phase[j]) | (mhi << (32u - phase[j]));
        vec4 sum[RV];
        masked_sums(gl, plus, minus, true, sum);
        [[unroll]] for (uint v = 0u; v < RV; ++v) accum[i * RV + v] += s[j] * sum[v];
      }
    }
  }
}

// The 16 even bits of x in its low half, the 16 odd bits in its high half (a perfect unshuffle:
// four delta swaps).
uint unshuffle(uint x) {
  uint t = (x ^ (x >> 1)) & 0x22222222u;
  x ^= t ^ (t << 1);
  t = (x ^ (x >> 2)) & 0x0c0c0c0cu;
  x ^= t ^ (t << 2);
  t = (x ^ (x >> 4)) & 0x00f000f0u;
  x ^= t ^ (t << 4);
  t = (x ^ (x >> 8)) & 0x0000ff00u;
  return x ^ t ^ (t << 8);
}

// Adds the staged 2-bit groups to the accumulators: channel c's 32 codes of group gl (16 per
// word) become two 32-bit masks, their low bits and their high bits (bit t: token t), and
// sum_t p_t code_tc = sum over nibbles of T[low bits] + 2 T[high bits] from the same subset-sum
// tables as the trits; the min adds mn_cg * sum_t p_t. The stage words and scales of every owned
// channel are read before the first use.
void b2_channel_chunk(uint cg) {
  uint L = gl_LocalInvocationID.x;
  for (uint gl = 0u; gl < cg; ++gl) {
    uint w[2u * OWN], smw[OWN];
    [[unroll]] for (uint i = 0u; i < OWN; ++i) {
      uint e = owned_channel(L, i) * CG + gl;
      w[2u * i] = stage[2u * e];
      w[2u * i + 1u] = stage[2u * e + 1u];
      smw[i] = stage[2u * DIM * CG + e];
    }
    vec4 total[RV];
    [[unroll]] for (uint v = 0u; v < RV; ++v) total[v] = group_sum(gl, v);
    [[unroll]] for (uint i = 0u; i < OWN; ++i) {
      uint u0 = unshuffle(w[2u * i]), u1 = unshuffle(w[2u * i + 1u]);
      uint low = (u0 & 0xffffu) | (u1 << 16), high = (u0 >> 16) | (u1 & 0xffff0000u);
      vec4 sum[RV];
      masked_sums(gl, low, high, false, sum);
      vec2 sm = unpackHalf2x16(smw[i]);
      [[unroll]] for (uint v = 0u; v < RV; ++v) accum[i * RV + v] += sm.x * sum[v] + sm.y * total[v];
    }
  }
}

// KIVI: sum_t p_t (code_tc s_tg + mn_tg) over the chunk's cg * 32 tokens, g = c / VG. KU tokens per
// step with every read of the step (each owned channel's code word and (scale, min) pair, the
// tokens' p rows) issued before the first use, and the owned channels unrolled inside the token
// loop, so that the accumulators keep fixed registers.
const uint KU = OWN >= 4u ? 2u : 4u;
void kivi_chunk(uint cg) {
  uint L = gl_LocalInvocationID.x;
  uint word[OWN], shift[OWN], pair[OWN];  // where each owned channel's code and scale sit in a token's row
  [[unroll]] for (uint i = 0u; i < OWN; ++i) {
    uint c = owned_channel(L, i);
    word[i] = c / 16u;
    shift[i] = 2u * (c & 15u);
    pair[i] = KIVI_SC + c / VG;
  }
  [[dont_unroll]] for (uint t0 = 0u; t0 < cg * G; t0 += KU) {
    uint code[KU * OWN], sm[KU * OWN];
    vec4 p[KU * RV];
    [[unroll]] for (uint k = 0u; k < KU; ++k) {
      uint tc = t0 + k;  // the chunk's token: p row tc (= gl * PROWS + t)
      [[unroll]] for (uint i = 0u; i < OWN; ++i) {
        code[k * OWN + i] = stage[tc * (DIM / 16u) + word[i]];
        sm[k * OWN + i] = stage[tc * KSG + pair[i]];
      }
      [[unroll]] for (uint v = 0u; v < RV; ++v) p[k * RV + v] = pw(tc * RV + v);
    }
    [[unroll]] for (uint k = 0u; k < KU; ++k)
      [[unroll]] for (uint i = 0u; i < OWN; ++i) {
        vec2 s = unpackHalf2x16(sm[k * OWN + i]);
        float value = float((code[k * OWN + i] >> shift[i]) & 3u) * s.x + s.y;
        [[unroll]] for (uint v = 0u; v < RV; ++v) accum[i * RV + v] += p[k * RV + v] * value;
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
    stage_weights(part_slots, first_slot + gc * G, cg);
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
    stage_weights(false, c0, ct / G);
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
