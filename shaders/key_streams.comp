#version 450
#extension GL_GOOGLE_include_directive : require
// Turns the FFT's half spectrum [heads * tokens][N/2 + 1] (complex fp32) into coefficient streams
// [tokens][heads][streams] (fp32; the grouped 1-bit quantizer rounds them to half on load). The full
// layout mirrors the upper bins: X_{N-f} = conj(X_f) for a real signal. One invocation per stream
// value.
#include "key_streams.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint FFT_FULL = 0u;

layout(std430, binding = 0) readonly buffer Spectrum { vec2 data[]; } spectrum;
layout(std430, binding = 1) writeonly buffer Streams { float data[]; } streams;

layout(push_constant) uniform Params {
  uint heads, tokens, n, streams, spectrum_row_stride;
} params;

void process(uint invocation) {
  uint id = invocation;
  if (id >= params.heads * params.tokens * params.streams) return;
  uint s = id % params.streams;
  uint ht = id / params.streams;
  uint t = ht % params.tokens;
  uint h = ht / params.tokens;
  uint row = (h * params.tokens + t) * params.spectrum_row_stride;
  float value;
  if (FFT_FULL == 1u) {
    uint f = s / 2u;
    bool mirrored = f > params.n / 2u;
    vec2 x = spectrum.data[row + (mirrored ? params.n - f : f)];
    value = (s & 1u) == 0u ? x.x : (mirrored ? -x.y : x.y);
  } else {
    uint f = (s + 1u) / 2u;
    if ((params.n & 1u) == 0u && s == params.n - 1u) f = params.n / 2u;
    vec2 x = spectrum.data[row + f];
    value = (s == 0u || (s & 1u) == 1u || ((params.n & 1u) == 0u && s == params.n - 1u)) ? x.x : x.y;
  }
  streams.data[(t * params.heads + h) * params.streams + s] = value;
}

// Grid-stride over every item: the host caps the workgroup count at the 65535 every device
// allows, and long contexts have more items than that many workgroups cover.
void main() {
  uint total = params.heads * params.tokens * params.streams;
  for (uint i = gl_GlobalInvocationID.x; i < total; i += gl_NumWorkGroups.x * gl_WorkGroupSize.x) process(i);
}
