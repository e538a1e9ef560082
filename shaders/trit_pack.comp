#version 450
#extension GL_GOOGLE_include_directive : require
// Repacks the 2-bit-field codes of a 1.58-bit per-channel tensor (codes[h][c][tokens / 16], field =
// code + 1) into trits 5 per byte, in blocks of one (head, group): trit index c * group + t within
// the block. One invocation per output word (4 bytes), so no two invocations share a word.
#include "trits.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint GROUP_SIZE = 32u;

layout(std430, binding = 0) readonly buffer Codes { uint data[]; } codes;
layout(std430, binding = 1) writeonly buffer Packed { uint data[]; } packed;

layout(push_constant) uniform Params {
  uint heads, tokens, dim, total_bytes;
} params;

uint field(uint h, uint c, uint t) {
  uint words_per_row = params.tokens / 16u;
  uint word = codes.data[(h * params.dim + c) * words_per_row + t / 16u];
  return (word >> ((t % 16u) * 2u)) & 3u;
}

void process(uint invocation) {
  uint w = invocation;
  if (4u * w >= params.total_bytes) return;
  uint block_bytes = trit_block_bytes(params.dim, GROUP_SIZE);
  uint groups = params.tokens / GROUP_SIZE;
  uint trits_per_block = params.dim * GROUP_SIZE;
  // The word's first byte: its block (head h, group g) and offset, by division once per word (on
  // CPU drivers a division by a non-constant is a per-lane loop of scalar divides); the other
  // three bytes carry into the next block.
  uint b0 = 4u * w;
  uint block = b0 / block_bytes;
  uint offset = b0 - block * block_bytes;
  uint h = block / groups;
  uint g = block - h * groups;
  uint word = 0u;
  for (uint k = 0u; k < 4u; ++k) {
    if (b0 + k >= params.total_bytes) break;
    if (offset == block_bytes) {
      offset = 0u;
      if (++g == groups) {
        g = 0u;
        ++h;
      }
    }
    uint first = 5u * offset;
    uint v = 0u;
    for (uint i = 0u; i < 5u; ++i) {
      uint trit = first + i;
      uint d = 0u;
      if (trit < trits_per_block) {
        uint c = trit / GROUP_SIZE;
        d = field(h, c, g * GROUP_SIZE + (trit - c * GROUP_SIZE));
      }
      v = v * 3u + d;
    }
    word |= ((v * 256u + 242u) / 243u) << (8u * k);
    ++offset;
  }
  packed.data[w] = word;
}

// Grid-stride over every item: the host caps the workgroup count at the 65535 every device
// allows, and long contexts have more items than that many workgroups cover.
void main() {
  uint total = (params.total_bytes + 3u) / 4u;
  for (uint i = gl_GlobalInvocationID.x; i < total; i += gl_NumWorkGroups.x * gl_WorkGroupSize.x) process(i);
}
