#version 450
#extension GL_GOOGLE_include_directive : require
// Rebuilds the half spectrum [heads * tokens][N/2 + 1] that the inverse real FFT takes, from decoded
// coefficient streams [tokens][heads][streams] (fp32). For the full layout it takes the Hermitian
// part H_f = (X_f + conj(X_{N-f})) / 2, whose inverse real transform is exactly Re(IDFT(X)): the
// decoding the original defines, without assuming the quantized spectrum is symmetric.
#include "key_streams.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint FFT_FULL = 0u;

layout(std430, binding = 0) readonly buffer Streams { float data[]; } streams;
layout(std430, binding = 1) writeonly buffer Spectrum { vec2 data[]; } spectrum;

layout(push_constant) uniform Params {
  uint heads, tokens, n, streams, spectrum_row_stride;
} params;

void process(uint invocation) {
  uint bins = params.n / 2u + 1u;
  uint id = invocation;
  if (id >= params.heads * params.tokens * bins) return;
  uint f = id % bins;
  uint ht = id / bins;
  uint t = ht % params.tokens;
  uint h = ht / params.tokens;
  uint base = (t * params.heads + h) * params.streams;
  vec2 x;
  if (FFT_FULL == 1u) {
    uint g = (params.n - f) % params.n;
    precise float re = (streams.data[base + 2u * f] + streams.data[base + 2u * g]) * 0.5;
    precise float im = (streams.data[base + 2u * f + 1u] - streams.data[base + 2u * g + 1u]) * 0.5;
    x = vec2(re, im);
  } else {
    int re = half_stream_re(f, params.n);
    int im = half_stream_im(f, params.n);
    x = vec2(streams.data[base + uint(re)], im < 0 ? 0.0 : streams.data[base + uint(im)]);
  }
  spectrum.data[(h * params.tokens + t) * params.spectrum_row_stride + f] = x;
}

// Grid-stride over every item: the host caps the workgroup count at the 65535 every device
// allows, and long contexts have more items than that many workgroups cover.
void main() {
  uint total = params.heads * params.tokens * (params.n / 2u + 1u);
  for (uint i = gl_GlobalInvocationID.x; i < total; i += gl_NumWorkGroups.x * gl_WorkGroupSize.x) process(i);
}
