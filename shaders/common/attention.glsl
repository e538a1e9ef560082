// Shared parts of the decode-attention shaders (attention_fp16.comp, attention_vidkv.comp): one
// workgroup handles one KV head and one split of at most SPLIT tokens for RATIO query heads of
// that KV head (GQA: all of them up to 8 per KV head, so every cache byte is read once per step;
// beyond 8, chunks of them: attention_heads.glsl). Scores (already multiplied by the
// softmax scale) go to shared memory, the split's softmax is taken there, and the unnormalised
// partial (max m, sum l, out[D] = sum_t exp(s_t - m) v_t) of each query head goes to its slot of the
// partial buffer; attention_reduce.comp combines the slots.
// Partial layout: [slot][q_heads][DIM + 2] floats: m, l, out[0..DIM-1].
//
// Subgroup reductions: a shader that defines ATTENTION_SUBGROUP_REDUCE_ID (a free specialization
// constant id) before including this file gets a boolean specialization constant SUBGROUP_REDUCE at
// that id. The subgroup code itself is compiled only where ATTENTION_SUBGROUP_ARITHMETIC is defined
// (a build variant that also enables GL_KHR_shader_subgroup_arithmetic): a module that declares the
// GroupNonUniformArithmetic capability may only be created on a device that has it, even when a
// constant switches the code off, so the host picks the variant rather than only the constant.
// With both, true reduces within each subgroup first, so only one value per subgroup goes through
// shared memory. Otherwise the reductions run through shared memory only. Both are right for any
// subgroup size and any workgroup size.

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint DIM = 128u;
layout(constant_id = 2) const uint RATIO = 1u;    // query heads per KV head
layout(constant_id = 3) const uint SPLIT = 256u;  // tokens per workgroup (a multiple of the group size)
#ifdef ATTENTION_SUBGROUP_REDUCE_ID
layout(constant_id = ATTENTION_SUBGROUP_REDUCE_ID) const bool SUBGROUP_REDUCE = false;
#else
const bool SUBGROUP_REDUCE = false;
#endif
#include "attention_heads.glsl"  // Q_PER_KV, CHUNKS: which query heads a workgroup serves

const uint WG = gl_WorkGroupSize.x;
// Channels each invocation owns in the value phase (DIM is a multiple of the workgroup size).
const uint CPL = (DIM + WG - 1u) / WG;

shared float scores[RATIO * SPLIT];  // scores, then exp(s - m)
// Reduction scratch, [entry][RATIO]: an entry's RATIO values side by side, so that the lanes of one
// reduction step read consecutive words (no bank conflicts between query heads).
shared float reduce_buf[RATIO * WG];
// Padded to whole vec4s: the arrays a shader declares after these start 16-byte aligned, which
// lets GPU compilers read their vec4s with one 16-byte load (scores and reduce_buf are multiples
// of 16 bytes: SPLIT and WG are multiples of 4).
const uint STATS = (RATIO + 3u) / 4u * 4u;
shared float stat_m[STATS];
shared float stat_l[STATS];

// Tree over reduce_buf's first `count` entries (any count >= 1), every invocation taking a share of
// each step's RATIO * half pairs; leaves the result in entry 0. `is_max`: max, else sum. Ends with
// a barrier.
void attention_tree(uint count, bool is_max) {
  uint lid = gl_LocalInvocationID.x;
  barrier();
  for (uint cur = count; cur > 1u;) {
    uint half_count = (cur + 1u) / 2u;
    for (uint i = lid; i < RATIO * (cur - half_count); i += WG) {
      float a = reduce_buf[i];
      float b = reduce_buf[i + half_count * RATIO];
      reduce_buf[i] = is_max ? max(a, b) : a + b;
    }
    cur = half_count;
    barrier();
  }
}

// Reduces v[r] (one value per query head per invocation) over the workgroup into reduce_buf[r]
// (entry 0); every invocation may read it after the call. Ends with a barrier.
void attention_reduce_heads(inout float v[RATIO], bool is_max) {
  uint lid = gl_LocalInvocationID.x;
#if defined(ATTENTION_SUBGROUP_REDUCE_ID) && defined(ATTENTION_SUBGROUP_ARITHMETIC)
  if (SUBGROUP_REDUCE) {
    [[unroll]] for (uint r = 0u; r < RATIO; ++r) v[r] = is_max ? subgroupMax(v[r]) : subgroupAdd(v[r]);
    if (subgroupElect()) {
      [[unroll]] for (uint r = 0u; r < RATIO; ++r) reduce_buf[gl_SubgroupID * RATIO + r] = v[r];
    }
    attention_tree(gl_NumSubgroups, is_max);
    return;
  }
#endif
  [[unroll]] for (uint r = 0u; r < RATIO; ++r) reduce_buf[lid * RATIO + r] = v[r];
  attention_tree(WG, is_max);
}

// Max and sum of exp over the split's n scores of every query head; leaves exp(s - m) in scores and
// m, l in stat_m, stat_l. Every invocation takes a strided share of every head's scores.
void split_softmax(uint n) {
  uint lid = gl_LocalInvocationID.x;
  float v[RATIO];
  [[unroll]] for (uint r = 0u; r < RATIO; ++r) v[r] = -3.0e38;
  // Two tokens per step, both rows read before the first use (on GPUs each wait for shared memory
  // is a round trip in the wave's serial chain). Past the end: the last score again.
  for (uint t = lid; t < n; t += 2u * WG) {
    uint t2 = min(t + WG, n - 1u);
    float a[RATIO], b[RATIO];
    [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
      a[r] = scores[r * SPLIT + t];
      b[r] = scores[r * SPLIT + t2];
    }
    [[unroll]] for (uint r = 0u; r < RATIO; ++r) v[r] = max(v[r], max(a[r], b[r]));
  }
  attention_reduce_heads(v, true);
  float m[RATIO];
  [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
    m[r] = reduce_buf[r];
    v[r] = 0.0;
  }
  if (lid < RATIO) stat_m[lid] = reduce_buf[lid];
  barrier();  // reduce_buf is written again below
  // (two tokens per step as above; past the end the second is the first again, rewritten with its
  // own value and not summed)
  for (uint t = lid; t < n; t += 2u * WG) {
    bool second = t + WG < n;
    uint t2 = second ? t + WG : t;
    float a[RATIO], b[RATIO];
    [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
      a[r] = scores[r * SPLIT + t];
      b[r] = scores[r * SPLIT + t2];
    }
    [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
      float pa = exp(a[r] - m[r]), pb = exp(b[r] - m[r]);
      scores[r * SPLIT + t] = pa;
      scores[r * SPLIT + t2] = pb;
      v[r] += pa;
      v[r] += second ? pb : 0.0;
    }
  }
  attention_reduce_heads(v, false);
  if (lid < RATIO) stat_l[lid] = reduce_buf[lid];
  barrier();
}
