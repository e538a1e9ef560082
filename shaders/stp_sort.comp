#version 450
#extension GL_GOOGLE_include_directive : require
// STP, step 3: bitonic sort of (score key, visual index) pairs, best first, over P = a power of two
// >= N entries (padding entries get key 0 and an index >= N, so they sort after every real token).
// One workgroup owns CHUNK = 2 * local size consecutive entries; every step whose compare distance
// j is below CHUNK runs inside shared memory, so only the steps with j >= CHUNK need a dispatch of
// their own:
//   MODE 0: load scores, sort each chunk completely (all k <= CHUNK);
//   MODE 1: one global compare-exchange step (k, j), j >= CHUNK;
//   MODE 2: the remaining steps j = CHUNK/2 .. 1 of stage k, per chunk.
// Directions follow the global index (i & k), so the chunks together form the standard network.
#include "stp_key.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint CHUNK = 512u;  // 2 * local size, set by the host
layout(constant_id = 2) const uint MODE = 0u;

layout(std430, binding = 0) readonly buffer Scores { float data[]; } scores;
layout(std430, binding = 1) buffer Pairs { uvec2 data[]; } pairs;

layout(push_constant) uniform Params {
  uint visual_tokens;  // N
  uint k;              // bitonic stage (size of the sequences being merged)
  uint j;              // compare distance (MODE 1)
} params;

shared uvec2 chunk[CHUNK];

// Position of the first element of compare pair t at distance j.
uint pair_first(uint t, uint j) { return ((t & ~(j - 1u)) << 1) | (t & (j - 1u)); }

// Orders (a, b) at global positions (gi, gi + j): best first where (gi & k) == 0, else reversed.
bool needs_swap(uvec2 a, uvec2 b, uint gi, uint k) {
  return (gi & k) == 0u ? stp_beats(b, a) : stp_beats(a, b);
}

void shared_steps(uint base, uint k, uint j_start) {
  uint t = gl_LocalInvocationID.x;
  for (uint j = j_start; j > 0u; j >>= 1) {
    uint i = pair_first(t, j);
    uvec2 a = chunk[i];
    uvec2 b = chunk[i + j];
    if (needs_swap(a, b, base + i, k)) {
      chunk[i] = b;
      chunk[i + j] = a;
    }
    barrier();
  }
}

void main() {
  uint lid = gl_LocalInvocationID.x;
  uint half_chunk = CHUNK / 2u;
  if (MODE == 1u) {
    uint i = pair_first(gl_GlobalInvocationID.x, params.j);
    uvec2 a = pairs.data[i];
    uvec2 b = pairs.data[i + params.j];
    if (needs_swap(a, b, i, params.k)) {
      pairs.data[i] = b;
      pairs.data[i + params.j] = a;
    }
    return;
  }
  uint base = gl_WorkGroupID.x * CHUNK;
  for (uint e = lid; e < CHUNK; e += half_chunk) {
    uint gi = base + e;
    if (MODE == 0u) {
      chunk[e] = uvec2(gi < params.visual_tokens ? stp_score_key(scores.data[gi]) : 0u, gi);
    } else {
      chunk[e] = pairs.data[gi];
    }
  }
  barrier();
  if (MODE == 0u) {
    for (uint k = 2u; k <= CHUNK; k <<= 1) shared_steps(base, k, k >> 1);
  } else {
    shared_steps(base, params.k, half_chunk);
  }
  for (uint e = lid; e < CHUNK; e += half_chunk) pairs.data[base + e] = chunk[e];
}
