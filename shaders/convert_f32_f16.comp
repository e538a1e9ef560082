#version 450
#extension GL_GOOGLE_include_directive : require
// fp32 -> fp16, round to nearest even, bit-identical to vidkv::f32_to_f16 on the host (so an fp32
// prefill is exactly the fp16 prefill of the rounded input). One invocation writes one output word
// (two halves); the element count is even (head_dim is).
#include "fp16.glsl"

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Source { float data[]; } src;
layout(std430, binding = 1) writeonly buffer Halves { uint data[]; } dst;

layout(push_constant) uniform Params {
  uint words;  // output words = input floats / 2
} params;

void main() {
  // grid-stride: the host caps the workgroup count
  for (uint w = gl_GlobalInvocationID.x; w < params.words; w += gl_NumWorkGroups.x * gl_WorkGroupSize.x) {
    dst.data[w] = f32_to_f16(src.data[2u * w]) | (f32_to_f16(src.data[2u * w + 1u]) << 16);
  }
}
