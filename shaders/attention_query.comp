#version 450
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
// The query of one decode step, transformed once for the fused VidKV shader (DESIGN section 5):
// per query head, [scale * q_c for the K_ANOM anomalous channels, then one weight per coefficient
// stream of the normal channels]. With Q = DFT(scale * q_normal) (direct DFT, N <= 256):
//   half spectrum: w(Re X_f) = c_f Re(Q_f) / N, w(Im X_f) = c_f Im(Q_f) / N, c_f = 1 for DC and
//     Nyquist, 2 otherwise (X_{N-f} = conj(X_f) contributes the same again);
//   full spectrum: w(Re X_f) = Re(Q_f) / N, w(Im X_f) = Im(Q_f) / N for all N bins (right for any
//     stored spectrum, symmetric or not),
// because q . Re(IDFT(X)) = (1/N) sum_f Re(X_f conj(Q_f)). One workgroup per query head: one
// subgroup of 8 lanes (the subgroup-of-8 path alone runs it; GpuAttention::query_desc).
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint DIM = 128u;
layout(constant_id = 2) const uint RATIO = 1u;
layout(constant_id = 3) const uint K_ANOM = 64u;
layout(constant_id = 4) const uint STREAMS = 64u;
layout(constant_id = 5) const uint FFT_FULL = 0u;
layout(constant_id = 6) const uint SCOPE_LAYER = 0u;  // one channel list for all heads

const uint NORMAL = DIM - K_ANOM;
const uint ANCHOR = 16u;  // terms between exact twiddles

layout(std430, binding = 0) readonly buffer Query { float data[]; } query;
layout(std430, binding = 1) readonly buffer Channels { uint data[]; } channels;  // [units][DIM]
layout(std430, binding = 2) writeonly buffer Prepared { float data[]; } prepared;

// Workgroup z is a causal query (channel_stride 0: one channel table) or a batch layer (each its own
// table, copied side by side); q rows follow one another either way.
layout(push_constant) uniform Params {
  float scale;
  uint channel_stride;   // uints from one z's channel table to the next
  uint prepared_stride;  // floats from one z's transformed query to the next
} params;

shared float qn[NORMAL > 0u ? NORMAL : 1u];

void main() {
  uint qh = gl_WorkGroupID.x;
  uint row = gl_WorkGroupID.z * gl_NumWorkGroups.x + qh;  // causal: query z's head qh
  uint unit = SCOPE_LAYER == 1u ? 0u : qh / RATIO;
  uint lid = gl_LocalInvocationID.x;
  uint ks = K_ANOM + STREAMS;
  uint table = gl_WorkGroupID.z * params.channel_stride + unit * DIM;
  uint dst = gl_WorkGroupID.z * params.prepared_stride + qh * ks;
  for (uint j = lid; j < DIM; j += gl_WorkGroupSize.x) {
    float q = query.data[row * DIM + min(channels.data[table + j], DIM - 1u)] * params.scale;
    if (j < K_ANOM) prepared.data[dst + j] = q; else qn[j - K_ANOM] = q;
  }
  barrier();
  // Lane l computes stream s0 + l; the channels come 8 at a time, one per lane, and are handed out
  // with shuffles (on a CPU driver a load at a lane-dependent address costs one load per lane, a
  // shuffle one permute). The twiddle of (f, n) is the one of (f, n - 1) rotated by angle f: a
  // complex multiply instead of sin and cos per term, re-anchored with exact sin and cos every
  // ANCHOR terms so that the rotations' rounding errors (~1 ulp each) stay within ANCHOR ulps.
  uint lane = gl_SubgroupInvocationID;
  for (uint s0 = 0u; s0 < STREAMS; s0 += 8u) {
    uint s = min(s0 + lane, STREAMS - 1u);  // lanes past the end repeat the last stream, unstored
    uint f = FFT_FULL == 1u ? s / 2u : (s + 1u) / 2u;
    bool imag = FFT_FULL == 1u ? (s & 1u) == 1u : (s > 0u && (s & 1u) == 0u);
    float weight = (FFT_FULL == 1u || f == 0u || 2u * f == NORMAL) ? 1.0 : 2.0;
    float step = 6.283185307179586 * float(f) / float(NORMAL);
    float cr = cos(step), sr = sin(step);
    float tc = 1.0, ts = 0.0;  // cos and sin of 2 pi f n / N
    float sum = 0.0;
    for (uint n0 = 0u; n0 < NORMAL; n0 += 8u) {
      if (n0 % ANCHOR == 0u) {
        // f * n0 reduced mod N first keeps the angle in [0, 2 pi), where sin and cos are accurate
        float angle = 6.283185307179586 * float((f * n0) % NORMAL) / float(NORMAL);
        tc = cos(angle);
        ts = sin(angle);
      }
      float q8 = qn[min(n0 + lane, NORMAL - 1u)];
      [[unroll]] for (uint k = 0u; k < 8u; ++k) {
        float qk = subgroupShuffle(q8, k);
        if (n0 + k < NORMAL) sum += qk * (imag ? -ts : tc);
        float rotated = tc * cr - ts * sr;
        ts = ts * cr + tc * sr;
        tc = rotated;
      }
    }
    if (s0 + lane < STREAMS) prepared.data[dst + K_ANOM + s] = weight * sum / float(NORMAL);
  }
}
