#version 450
#extension GL_GOOGLE_include_directive : require
// Turns the FFT's half spectrum [heads * tokens][N/2 + 1] (complex fp32) into coefficient streams
// [tokens][heads][streams] (fp32; the grouped 1-bit quantizer rounds them to half on load). The full
// layout mirrors the upper bins: X_{N-f} = conj(X_f) for a real signal. One invocation per run of
// 8 stream values.
#include "key_streams.glsl"
#include "index_runs.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint FFT_FULL = 0u;

layout(std430, binding = 0) readonly buffer Spectrum { vec2 data[]; } spectrum;
layout(std430, binding = 1) writeonly buffer Streams { float data[]; } streams;

layout(push_constant) uniform Params {
  uint heads, tokens, n, streams, spectrum_row_stride;
} params;

// The stream value s of token t of head h.
void store(uint h, uint t, uint s) {
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

const uint RUN = 8u;  // values per invocation, consecutive in (head, token, stream) order

void process_run(uint run, uint total) {
  uint first = run * RUN;
  uint count = min(RUN, total - first);
  uvec3 at = run_first(first, params.streams, params.tokens);  // (h, t, s)
  for (uint i = 0u; i < count; ++i) {
    store(at.x, at.y, at.z);
    run_next(at, params.streams, params.tokens);
  }
}

// Grid-stride over the runs: the host caps the workgroup count at the 65535 every device allows,
// and long contexts have more runs than that many workgroups cover.
void main() {
  uint total = params.heads * params.tokens * params.streams;
  uint runs = (total + RUN - 1u) / RUN;
  for (uint r = gl_GlobalInvocationID.x; r < runs; r += gl_NumWorkGroups.x * gl_WorkGroupSize.x) process_run(r, total);
}
