#version 450
#extension GL_GOOGLE_include_directive : require
// STP, step 4: the token split. After stp_sort, entry n-1 of the sorted pairs is the last protected
// token, so visual token v is protected exactly when (key_v, v) is that entry or beats it. One
// workgroup walks the sequence in chunks of its size; a prefix sum of the flags gives each token
// its place, so both lists come out in increasing position without a second sort. Tokens outside
// [first_visual, first_visual + N) are never protected.
#include "stp_key.glsl"

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Scores { float data[]; } scores;
layout(std430, binding = 1) readonly buffer Pairs { uvec2 data[]; } pairs;
layout(std430, binding = 2) writeonly buffer Protected { uint data[]; } protected_tokens;
layout(std430, binding = 3) writeonly buffer Other { uint data[]; } other_tokens;

layout(push_constant) uniform Params {
  uint total_tokens;
  uint first_visual;
  uint visual_tokens;    // N
  uint protected_count;  // n
} params;

shared uint counts[gl_WorkGroupSize.x];

void main() {
  uint lid = gl_LocalInvocationID.x;
  uint size = gl_WorkGroupSize.x;
  uvec2 last = params.protected_count > 0u ? pairs.data[params.protected_count - 1u] : uvec2(0u);
  uint carry = 0u;  // protected tokens before the current chunk
  for (uint base = 0u; base < params.total_tokens; base += size) {
    uint t = base + lid;
    uint flag = 0u;
    if (t < params.total_tokens && t >= params.first_visual && params.protected_count > 0u) {
      uint v = t - params.first_visual;
      if (v < params.visual_tokens) {
        uvec2 entry = uvec2(stp_score_key(scores.data[v]), v);
        flag = (entry == last || stp_beats(entry, last)) ? 1u : 0u;
      }
    }
    // inclusive Hillis-Steele scan of the flags
    counts[lid] = flag;
    barrier();
    for (uint offset = 1u; offset < size; offset <<= 1) {
      uint add = lid >= offset ? counts[lid - offset] : 0u;
      barrier();
      counts[lid] += add;
      barrier();
    }
    uint before = carry + counts[lid] - flag;
    uint chunk_total = counts[size - 1u];
    if (t < params.total_tokens) {
      if (flag == 1u) {
        protected_tokens.data[before] = t;
      } else {
        other_tokens.data[t - before] = t;
      }
    }
    carry += chunk_total;
    barrier();  // every invocation has read counts before the next chunk overwrites them
  }
}
