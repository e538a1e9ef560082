#version 450
#extension GL_GOOGLE_include_directive : require
// The inverse of token_gather: writes the rows of a dense fp16 [count][heads][dim] tensor to the
// listed token positions of an fp16 tensor with any strides. One invocation moves two channels.
// When they start on an even element they fill one whole word that no other invocation touches;
// otherwise each half shares its word with a neighbour, so it is replaced with atomics (clear our
// 16 bits, then set them), which leaves the neighbour's half intact whatever the order.

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Dense { uint data[]; } dense;
layout(std430, binding = 1) readonly buffer Tokens { uint data[]; } tokens;
layout(std430, binding = 2) buffer Target { uint data[]; } dst;

layout(push_constant) uniform Params {
  uint heads;
  uint dim;
  uint count;
  uint head_stride;   // elements, of the target tensor
  uint token_stride;
} params;

void store_half(uint e, uint value) {
  uint shift = 16u * (e & 1u);
  atomicAnd(dst.data[e >> 1], ~(0xffffu << shift));
  atomicOr(dst.data[e >> 1], value << shift);
}

void move_word(uint w);

void main() {
  uint row = params.heads * params.dim;
  uint words = params.count * (row / 2u);
  // grid-stride: the host caps the workgroup count at the guaranteed 65535
  for (uint w = gl_GlobalInvocationID.x; w < words; w += gl_NumWorkGroups.x * gl_WorkGroupSize.x) {
    move_word(w);
  }
}

void move_word(uint w) {
  uint row = params.heads * params.dim;
  uint e = 2u * w;
  uint r = e / row;
  uint rem = e - r * row;
  uint h = rem / params.dim;
  uint d = rem - h * params.dim;
  uint t = h * params.head_stride + tokens.data[r] * params.token_stride + d;
  uint word = dense.data[w];
  if ((t & 1u) == 0u) {
    dst.data[t >> 1] = word;
  } else {
    store_half(t, word & 0xffffu);
    store_half(t + 1u, word >> 16);
  }
}
