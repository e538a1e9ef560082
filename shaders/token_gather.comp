#version 450
#extension GL_GOOGLE_include_directive : require
// Copies the tokens named in a list out of an fp16 [heads][tokens][dim] tensor (any strides, as
// the grouped quantizer takes them) into a dense fp16 [count][heads][dim] tensor, bits unchanged,
// so quantizing the dense tensor is quantizing those tokens. One invocation writes one output word
// (two channels; dim is even); the two input halves may sit in different words when a stride is
// odd.
#include "fp16.glsl"

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Source { uint data[]; } src;
layout(std430, binding = 1) readonly buffer Tokens { uint data[]; } tokens;
layout(std430, binding = 2) writeonly buffer Dense { uint data[]; } dense;

layout(push_constant) uniform Params {
  uint heads;
  uint dim;
  uint count;         // tokens in the list
  uint head_stride;   // elements, of the source tensor
  uint token_stride;
} params;

uint load_half(uint e) { return half_in_word(src.data[e >> 1], e & 1u); }

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
  uint s = h * params.head_stride + tokens.data[r] * params.token_stride + d;
  dense.data[w] = load_half(s) | (load_half(s + 1u) << 16);
}
