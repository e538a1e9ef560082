// The query of one decode step transformed inside attention_vidkv.comp (DESIGN section 5), as
// attention_query.comp computes it for the subgroup-of-8 path: per query head, [scale * q_c for
// the K_ANOM anomalous channels, then one weight per coefficient stream of the N normal channels].
// With Q = DFT(scale * q_normal):
//   half spectrum: w(Re X_f) = c_f Re(Q_f) / N, w(Im X_f) = c_f Im(Q_f) / N, c_f = 1 for DC and
//     Nyquist, 2 otherwise;  full spectrum: w(Re X_f) = Re(Q_f) / N, w(Im X_f) = Im(Q_f) / N.
// Every workgroup transforms its own RATIO heads (a few thousand multiply-adds against the split's
// hundreds of thousands) so that no latency-bound dispatch of q_heads workgroups precedes the
// attention. cos and sin of 2 pi k / N come from a table in the staging area, indexed by
// (f n) mod N kept incrementally: the same angles attention_query.comp evaluates.
// One invocation per frequency bin takes all RATIO heads: a twiddle read serves RATIO heads' two
// multiply-adds, the q of a channel n is one read that every lane shares ([n][RATIO] in the
// staging area), and QU channels' reads are issued before the first wait (on GPUs this loop's
// LDS round trips were a quarter of a split's serial chain, docs/gpu.md).
// Needs: qk (+ a trash slot), stage (RATIO N + 2 N words, + TRASH), query, channels, params.scale,
// K_ANOM, STREAMS, KS, NORMAL, FFT_FULL, SCOPE_LAYER, OWN, owned_channel, channel_stored.

const uint BINS = FFT_FULL == 1u ? NORMAL : NORMAL / 2u + 1u;  // frequency bins of the query's DFT
const uint QU = 4u;  // normal channels per step of the DFT (loads in flight; RATIO <= 8)

// re[r], im[r] = sum_n q_rn (cos, -sin)(2 pi f n / N) over the normal channels, for bin f of every
// head (the twiddle's index k = (f n) mod N, kept incrementally).
void dft_bin(uint f, inout float re[RATIO], inout float im[RATIO]) {
  const uint TW = RATIO * NORMAL;
  uint k = 0u, n = 0u;
  for (; n + QU <= NORMAL; n += QU) {
    uint kk[QU];
    kk[0] = k;
    [[unroll]] for (uint u = 1u; u < QU; ++u) {
      uint next = kk[u - 1u] + f;
      kk[u] = next >= NORMAL ? next - NORMAL : next;
    }
    uint next = kk[QU - 1u] + f;
    k = next >= NORMAL ? next - NORMAL : next;
    float q[QU * RATIO];
    vec2 tw[QU];
    [[unroll]] for (uint u = 0u; u < QU; ++u) {
      [[unroll]] for (uint r = 0u; r < RATIO; ++r) q[u * RATIO + r] = uintBitsToFloat(stage[(n + u) * RATIO + r]);
      tw[u] = vec2(uintBitsToFloat(stage[TW + 2u * kk[u]]), uintBitsToFloat(stage[TW + 2u * kk[u] + 1u]));
    }
    [[unroll]] for (uint u = 0u; u < QU; ++u) {
      [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
        re[r] += q[u * RATIO + r] * tw[u].x;
        im[r] += q[u * RATIO + r] * tw[u].y;
      }
    }
  }
  for (; n < NORMAL; ++n) {
    vec2 tw = vec2(uintBitsToFloat(stage[TW + 2u * k]), uintBitsToFloat(stage[TW + 2u * k + 1u]));
    [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
      float q = uintBitsToFloat(stage[n * RATIO + r]);
      re[r] += q * tw.x;
      im[r] += q * tw.y;
    }
    uint next = k + f;
    k = next >= NORMAL ? next - NORMAL : next;
  }
}

void transform_query(uint h) {
  uint lid = gl_LocalInvocationID.x;
  uint unit = SCOPE_LAYER == 1u ? 0u : h;
  const uint TW = RATIO * NORMAL;  // twiddles (cos, sin) after the normal channels' q
  // all loads first, in two round trips (channel indices, then q), and stores without branches
  // (ACO schedules within a basic block: a load before each conditional store waits each time)
  // channels per invocation (DIM not a multiple of WG: see owned_channel). With whole rounds the
  // index is written as before, unit * DIM + lid + k * WG: ACO folds k * WG into the load's
  // offset only in that order, so D 64/128/256 keep their code.
  const uint QJ = OWN;
  uint ch[QJ];
  [[unroll]] for (uint k = 0u; k < QJ; ++k) ch[k] = channels.data[WHOLE_ROUNDS ? unit * DIM + lid + k * WG : unit * DIM + owned_channel(lid, k)];
  float qv[RATIO * QJ];
  [[unroll]] for (uint r = 0u; r < RATIO; ++r)
    [[unroll]] for (uint k = 0u; k < QJ; ++k) qv[r * QJ + k] = query.data[((gl_WorkGroupID.z * params.kv_heads + h) * Q_PER_KV + head_read(r)) * DIM + ch[k]];
  [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
    [[unroll]] for (uint k = 0u; k < QJ; ++k) {
      uint j = lid + k * WG;
      // both stores, one of them to a trash slot: no branch (both to trash past DIM)
      float q = qv[r * QJ + k] * params.scale;
      bool real = channel_stored(lid, k);
      qk[j < K_ANOM && real ? r * KS + j : RATIO * KS] = q;
      stage[j < K_ANOM || !real ? TRASH : (j - K_ANOM) * RATIO + r] = floatBitsToUint(q);
    }
  }
  for (uint k = lid; k < NORMAL; k += WG) {
    float angle = 6.283185307179586 * float(k) / float(NORMAL);
    stage[TW + 2u * k] = floatBitsToUint(cos(angle));
    stage[TW + 2u * k + 1u] = floatBitsToUint(-sin(angle));
  }
  barrier();
  // one invocation per frequency bin, all RATIO heads (Re and Im of a bin share the loads)
  for (uint f = lid; f < BINS; f += WG) {
    float re[RATIO], im[RATIO];
    [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
      re[r] = 0.0;
      im[r] = 0.0;
    }
    dft_bin(f, re, im);
    float c = (FFT_FULL == 1u || f == 0u || 2u * f == NORMAL) ? 1.0 : 2.0;
    // streams: full Re f = 2f, Im f = 2f + 1; half Re 0 = 0, Re f = 2f - 1, Im f = 2f (f >= 1)
    uint s_re = FFT_FULL == 1u ? 2u * f : max(2u * f, 1u) - 1u;
    uint s_im = FFT_FULL == 1u ? 2u * f + 1u : 2u * f;
    [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
      if (s_re < STREAMS) qk[r * KS + K_ANOM + s_re] = c * re[r] / float(NORMAL);
      if ((FFT_FULL == 1u || f > 0u) && s_im < STREAMS) qk[r * KS + K_ANOM + s_im] = c * im[r] / float(NORMAL);
    }
  }
  barrier();
}
