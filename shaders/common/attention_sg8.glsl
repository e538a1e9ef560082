// Shared parts of the decode-attention shaders for subgroups of exactly 8 invocations
// (attention_fp16_sg8.comp, attention_vidkv_sg8.comp): what CPU drivers such as lavapipe run.
//
// One workgroup is one subgroup of 8 lanes and handles one KV head and one split of at most SPLIT
// tokens for RATIO query heads of that KV head (all of them up to 8; beyond 8, a chunk:
// attention_heads.glsl). It walks the split 32 tokens at a time: lane l
// scores tokens l, l + 8, l + 16, l + 24 of the group (4 x RATIO accumulators), the group's softmax
// is folded into a running one (max m, sum l, outputs rescaled by exp(m_old - m_new)), and the
// values are accumulated with lanes owning channels. Nothing goes through shared memory and there
// is no barrier.
//
// Written for how llvmpipe compiles compute shaders, where the cost is instructions per cached
// element: every load whose address is not a constant or push constant becomes a loop over the 8
// lanes; subgroupBroadcast inside a loop recomputes the first active lane with another such loop,
// while subgroupShuffle / subgroupShuffleXor are one permute. So data every lane needs (code words,
// scales, query weights, probabilities) is loaded 8 values at a time, one per lane, and handed out
// with subgroupShuffle; reductions use subgroupShuffleXor. Loops over channels stay loops (not
// unrolled), which keeps LLVM's compile time to seconds; everything inside them is unrolled.
// Partial layout as in attention.glsl: [slot][q_heads][DIM + 2] floats: m, l, out[0..DIM-1].

layout(local_size_x = 8) in;
layout(constant_id = 1) const uint DIM = 128u;
layout(constant_id = 2) const uint RATIO = 1u;    // query heads per KV head
layout(constant_id = 3) const uint SPLIT = 256u;  // tokens per workgroup (a multiple of 32)
#include "attention_heads.glsl"  // Q_PER_KV, CHUNKS: which query heads a workgroup serves

const uint G = 32u;  // tokens per group: 4 per lane

uint lane_id() { return gl_SubgroupInvocationID; }

float lane_max(float x) {
  x = max(x, subgroupShuffleXor(x, 1u));
  x = max(x, subgroupShuffleXor(x, 2u));
  return max(x, subgroupShuffleXor(x, 4u));
}

float lane_sum(float x) {
  x += subgroupShuffleXor(x, 1u);
  x += subgroupShuffleXor(x, 2u);
  return x + subgroupShuffleXor(x, 4u);
}

// Running softmax state of the split, per query head (uniform across lanes).
float run_m[RATIO];
float run_l[RATIO];
// Of the group last folded in: exp(m_old - m_new), sum of p, and p of token t for head r at
// pb[t * RATIO + r] (uniform; used as operands of the value multiply-adds).
float grp_alpha[RATIO];
// Scores of the group being processed: grp_score[m * RATIO + r] for token lane + 8m, head r.
float grp_score[4u * RATIO];
float grp_psum[RATIO];
float pb[G * RATIO];

void softmax_begin() {
  [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
    run_m[r] = -3.0e38;
    run_l[r] = 0.0;
  }
}

// Folds the group's scores (-3e38 for absent tokens) into the running softmax.
void softmax_group() {
  [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
    float gm = lane_max(max(max(grp_score[r], grp_score[RATIO + r]), max(grp_score[2u * RATIO + r], grp_score[3u * RATIO + r])));
    float m_new = max(run_m[r], gm);
    grp_alpha[r] = exp(run_m[r] - m_new);
    run_m[r] = m_new;
    float ps = 0.0;
    [[unroll]] for (uint m = 0u; m < 4u; ++m) {
      float p = exp(grp_score[m * RATIO + r] - m_new);
      ps += p;
      [[unroll]] for (uint k = 0u; k < 8u; ++k) pb[(8u * m + k) * RATIO + r] = subgroupShuffle(p, k);
    }
    grp_psum[r] = lane_sum(ps);
    run_l[r] = run_l[r] * grp_alpha[r] + grp_psum[r];
  }
}
