// Shared parts of the decode-attention shaders (attention_fp16.comp, attention_vidkv.comp): one
// workgroup handles one KV head and one split of at most SPLIT tokens for all RATIO query heads of
// that KV head (GQA), so every cache byte is read once per step. Scores (already multiplied by the
// softmax scale, which is folded into the query) go to shared memory, the split's softmax is taken
// there, and the unnormalised partial (max m, sum l, out[D] = sum_t exp(s_t - m) v_t) of each query
// head goes to its slot of the partial buffer; attention_reduce.comp combines the slots.
// Partial layout: [slot][q_heads][DIM + 2] floats: m, l, out[0..DIM-1].

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint DIM = 128u;
layout(constant_id = 2) const uint RATIO = 1u;    // query heads per KV head
layout(constant_id = 3) const uint SPLIT = 256u;  // tokens per workgroup (a multiple of the group size)

const uint WG = gl_WorkGroupSize.x;
// Channels each invocation owns in the value phase (DIM is a multiple of the workgroup size).
const uint CPL = (DIM + WG - 1u) / WG;

shared float scores[RATIO * SPLIT];  // scores, then exp(s - m)
shared float reduce_buf[RATIO * WG];
shared float stat_m[RATIO];
shared float stat_l[RATIO];

// Max and sum of exp over the split's n scores of every query head; leaves exp(s - m) in scores.
// Two passes of per-invocation partials plus a serial pass over WG values: no subgroup operations,
// so it runs the same everywhere.
void split_softmax(uint n) {
  uint lid = gl_LocalInvocationID.x;
  [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
    float m = -3.0e38;
    for (uint t = lid; t < n; t += WG) m = max(m, scores[r * SPLIT + t]);
    reduce_buf[r * WG + lid] = m;
  }
  barrier();
  if (lid < RATIO) {
    float m = -3.0e38;
    for (uint i = 0u; i < WG; ++i) m = max(m, reduce_buf[lid * WG + i]);
    stat_m[lid] = m;
  }
  barrier();
  [[unroll]] for (uint r = 0u; r < RATIO; ++r) {
    float m = stat_m[r];
    float l = 0.0;
    for (uint t = lid; t < n; t += WG) {
      float p = exp(scores[r * SPLIT + t] - m);
      scores[r * SPLIT + t] = p;
      l += p;
    }
    reduce_buf[r * WG + lid] = l;
  }
  barrier();
  if (lid < RATIO) {
    float l = 0.0;
    for (uint i = 0u; i < WG; ++i) l += reduce_buf[lid * WG + i];
    stat_l[lid] = l;
  }
  barrier();
}
