#version 450
// Finds NaN and Inf halves in an fp16 tensor before the cache quantizes it: a group's scale or
// range computed from an Inf or NaN would poison every value of the group, silently. Writes the
// smallest flat index (base + element) of a non-finite half with atomicMin and counts them with
// atomicAdd, so one pass serves both the synchronous check (reads `first`, names the position)
// and recorded work (accumulates `count`, reported by the cache's stats).

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Source { uint data[]; } src;
// {first, count} of the keys at slot 0, of the values at slot 1
layout(std430, binding = 1) buffer Result { uint data[]; } result;

layout(push_constant) uniform Params {
  uint words;  // input words (two halves each)
  uint base;   // flat index of the first half, added to what is reported
  uint slot;   // which {first, count} pair
  uint skip;   // words of the bound range before the input (its offset aligned down)
} params;

bool nonfinite(uint h) { return (h & 0x7c00u) == 0x7c00u; }

void main() {
  for (uint w = gl_GlobalInvocationID.x; w < params.words; w += gl_NumWorkGroups.x * gl_WorkGroupSize.x) {
    uint word = src.data[params.skip + w];
    uint lo = word & 0xffffu, hi = word >> 16;
    if (nonfinite(lo) || nonfinite(hi)) {
      uint n = (nonfinite(lo) ? 1u : 0u) + (nonfinite(hi) ? 1u : 0u);
      atomicAdd(result.data[2u * params.slot + 1u], n);
      atomicMin(result.data[2u * params.slot], params.base + 2u * w + (nonfinite(lo) ? 0u : 1u));
    }
  }
}
