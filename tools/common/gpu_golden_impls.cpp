#include "common/gpu_golden_impls.hpp"

namespace vidkv::tools {

KeyImpl gpu_key_impl(GpuKeyQuantizer& keys, GpuQuantizer& grouped) {
  KeyImpl k;
  k.ranges = [&keys](const TensorShape& s, const Halves& x, const TensorLayout& l, ChannelScope scope) {
    return keys.ranges_host(s, x, l, scope);
  };
  k.select = [&keys](const Halves& ranges, uint32_t dim, uint32_t heads, ChannelScope scope, uint32_t count) {
    return keys.select_host(ranges, dim, heads, scope, count);
  };
  k.coefficients = [&keys](const KeySpec& spec, const TensorShape& s, const Halves& x, const TensorLayout& l,
                           const std::vector<ChannelSplit>& splits) {
    return keys.quantize_host_with(spec, s, x, l, splits).coefficients;
  };
  k.quantize_with = [&keys, &grouped](const KeySpec& spec, const TensorShape& s, const Halves& x,
                                      const TensorLayout& l, const std::vector<ChannelSplit>& splits,
                                      const Halves& coefficients) {
    validate(spec, s);
    const uint32_t kk = anomalous_channel_count(spec, s.dim);
    const uint32_t streams = coefficient_streams(spec.fft, s.dim - kk);
    QuantizedKeys q;
    q.spec = spec;
    q.shape = s;
    q.ranges = keys.ranges_host(s, x, l, spec.scope);
    q.splits = splits;
    q.coefficients = coefficients;
    const TensorShape a_shape{s.heads, s.tokens, kk}, n_shape{s.heads, s.tokens, streams};
    q.anomalous.spec = {QuantBits::b2, QuantAxis::channel, spec.group_size};
    q.anomalous.shape = a_shape;
    q.normal.spec = {QuantBits::b1, QuantAxis::channel, spec.group_size};
    q.normal.shape = n_shape;
    if (kk > 0) {
      Halves gathered(a_shape.elements());  // [heads][tokens][k]
      for (uint32_t h = 0; h < s.heads; ++h)
        for (uint32_t t = 0; t < s.tokens; ++t)
          for (uint32_t j = 0; j < kk; ++j)
            gathered[(size_t(h) * s.tokens + t) * kk + j] =
                x[h * l.head_stride + t * l.token_stride + splits[h].anomalous[j]];
      q.anomalous = grouped.quantize_host(q.anomalous.spec, a_shape, gathered, TensorLayout::htd(a_shape));
    }
    if (streams > 0) {
      q.normal = grouped.quantize_host(q.normal.spec, n_shape, coefficients, TensorLayout::htd(n_shape));
    }
    return q;
  };
  k.dequantize = [&keys](const QuantizedKeys& q, const TensorLayout& l) { return keys.dequantize_host(q, l); };
  return k;
}

ValueImpl gpu_value_impl(GpuStp& stp) {
  ValueImpl v;
  v.quantize = [&stp](const TokenSplit& split, uint32_t group, TernaryScale ts, const TensorShape& s, const Halves& x,
                      const TensorLayout& l) { return stp.quantize_values_host(split, group, ts, s, x, l); };
  v.dequantize = [&stp](const StpQuantizedValues& q, const TensorLayout& l) {
    return stp.dequantize_values_host(q, l);
  };
  return v;
}

}  // namespace vidkv::tools
