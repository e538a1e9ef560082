// CPU reference of VidKV's mixed-precision keys (see vidkv_keys.hpp for the exact definitions):
// channel ranges, anomalous-channel selection, a direct O(N^2) DFT in double, and per-channel
// quantization of the anomalous channels (2-bit) and of the coefficient streams (1-bit) by
// vidkv::reference::quantize.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "vidkv/error.hpp"
#include "vidkv/fp16.hpp"
#include "vidkv/vidkv_keys.hpp"

namespace vidkv {
namespace {

using fp16::from_float;
using fp16::to_float;

constexpr double kPi = 3.14159265358979323846264338327950288;

// The half nearest to a double (ties to even), without double rounding: the double is first
// rounded to float with round-to-odd (24 >= 11 + 2 bits), after which float -> half rounding
// gives the once-rounded result.
uint16_t half_from_double(double d) {
  if (!std::isfinite(d)) return from_float(float(d));
  float f = float(d);
  if (double(f) != d) {
    if (std::fabs(double(f)) > std::fabs(d)) f = std::nextafter(f, 0.0f);  // truncate
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    bits |= 1u;  // sticky: the value lies strictly between two floats
    std::memcpy(&f, &bits, 4);
  }
  return from_float(f);
}

// cos and sin of 2 pi m / n for m = 0 .. n-1; exact at the quarter points and mirrored
// (c[n-m] = c[m], s[n-m] = -s[m]) so the DFT of real data is exactly conjugate-symmetric.
struct Twiddles {
  std::vector<double> c, s;
  explicit Twiddles(uint32_t n) : c(n), s(n) {
    for (uint32_t m = 0; m <= n / 2; ++m) {
      double cv, sv;
      if (m == 0) cv = 1, sv = 0;
      else if (2 * m == n) cv = -1, sv = 0;
      else if (4 * m == n) cv = 0, sv = 1;
      else cv = std::cos(2.0 * kPi * double(m) / double(n)), sv = std::sin(2.0 * kPi * double(m) / double(n));
      c[m] = cv, s[m] = sv;
      if (m != 0 && 2 * m != n) c[n - m] = cv, s[n - m] = -sv;
    }
  }
};

uint64_t at(const TensorLayout& l, uint32_t h, uint32_t t, uint32_t d) {
  return h * l.head_stride + t * l.token_stride + d;
}

std::string position(uint32_t h, uint32_t t, uint32_t d) {
  return "(head " + std::to_string(h) + ", token " + std::to_string(t) + ", channel " +
         std::to_string(d) + ")";
}

void check_splits(const KeySpec& spec, const TensorShape& shape, const std::vector<ChannelSplit>& splits) {
  const uint32_t k = anomalous_channel_count(spec, shape.dim);
  if (splits.size() != shape.heads) {
    throw Error(ErrorCode::invalid_argument, "channel split has " + std::to_string(splits.size()) +
                                                 " heads, the shape " + std::to_string(shape.heads));
  }
  for (uint32_t h = 0; h < shape.heads; ++h) {
    const ChannelSplit& s = splits[h];
    const std::string head = "channel split of head " + std::to_string(h);
    if (s.anomalous.size() != k) {
      throw Error(ErrorCode::invalid_argument, head + " has " + std::to_string(s.anomalous.size()) +
                                                   " anomalous channels, nbits " +
                                                   std::to_string(spec.nbits) + " needs " + std::to_string(k));
    }
    std::vector<int> seen(shape.dim, 0);
    for (const auto* list : {&s.anomalous, &s.normal}) {
      for (size_t i = 0; i < list->size(); ++i) {
        const uint32_t c = (*list)[i];
        if (c >= shape.dim || seen[c]++ || (i > 0 && (*list)[i - 1] >= c)) {
          throw Error(ErrorCode::invalid_argument,
                      head + ": channel " + std::to_string(c) +
                          " is out of range, repeated or out of increasing order (dim " +
                          std::to_string(shape.dim) + ")");
        }
      }
    }
    if (s.anomalous.size() + s.normal.size() != shape.dim) {
      throw Error(ErrorCode::invalid_argument, head + " covers " +
                                                   std::to_string(s.anomalous.size() + s.normal.size()) +
                                                   " channels of dim " + std::to_string(shape.dim));
    }
    if (spec.scope == ChannelScope::layer && (s.anomalous != splits[0].anomalous)) {
      throw Error(ErrorCode::invalid_argument, head + " differs from head 0 with channel_scope layer");
    }
  }
}

void check_finite(const TensorShape& shape, const uint16_t* input, const TensorLayout& layout) {
  if (input == nullptr) throw Error(ErrorCode::invalid_argument, "input is null");
  for (uint32_t h = 0; h < shape.heads; ++h)
    for (uint32_t t = 0; t < shape.tokens; ++t)
      for (uint32_t d = 0; d < shape.dim; ++d)
        if (!fp16::is_finite(input[at(layout, h, t, d)]))
          throw Error(ErrorCode::invalid_argument, "key value at " + position(h, t, d) + " is " +
                                                       ((input[at(layout, h, t, d)] & 0x3ffu) ? "NaN" : "infinite"));
}

// An empty part: the spec filled in, shape {heads, tokens, 0}, no codes, scales or mins.
QuantizedTensor empty_part(const QuantSpec& spec, const TensorShape& shape) {
  QuantizedTensor q;
  q.spec = spec;
  q.shape = {shape.heads, shape.tokens, 0};
  return q;
}

QuantizedKeys quantize_parts(const KeySpec& spec, const TensorShape& shape, const uint16_t* input,
                             const TensorLayout& layout, const std::vector<ChannelSplit>& splits,
                             std::vector<uint16_t> ranges, std::vector<uint16_t> coefficients) {
  const uint32_t k = anomalous_channel_count(spec, shape.dim);
  const uint32_t streams = coefficient_streams(spec.fft, shape.dim - k);
  if (coefficients.size() != size_t(shape.heads) * shape.tokens * streams) {
    throw Error(ErrorCode::invalid_argument,
                "coefficients hold " + std::to_string(coefficients.size()) + " values; heads x tokens x streams = " +
                    std::to_string(size_t(shape.heads) * shape.tokens * streams));
  }
  for (size_t i = 0; i < coefficients.size(); ++i) {
    if (!fp16::is_finite(coefficients[i])) {
      throw Error(ErrorCode::invalid_argument, "coefficient " + std::to_string(i) + " is not finite");
    }
  }
  QuantizedKeys q;
  q.spec = spec;
  q.shape = shape;
  q.ranges = std::move(ranges);
  q.splits = splits;
  const QuantSpec two{QuantBits::b2, QuantAxis::channel, spec.group_size, TernaryScale::mean_abs};
  const QuantSpec one{QuantBits::b1, QuantAxis::channel, spec.group_size, TernaryScale::mean_abs};
  if (k == 0) {
    q.anomalous = empty_part(two, shape);
  } else {
    const TensorShape as{shape.heads, shape.tokens, k};
    std::vector<uint16_t> gathered(as.elements());
    for (uint32_t h = 0; h < shape.heads; ++h)
      for (uint32_t t = 0; t < shape.tokens; ++t)
        for (uint32_t j = 0; j < k; ++j)
          gathered[(size_t(h) * shape.tokens + t) * k + j] = input[at(layout, h, t, splits[h].anomalous[j])];
    q.anomalous = reference::quantize(two, as, gathered.data(), TensorLayout::htd(as));
  }
  if (streams == 0) {
    q.normal = empty_part(one, shape);
  } else {
    const TensorShape ns{shape.heads, shape.tokens, streams};
    q.normal = reference::quantize(one, ns, coefficients.data(), TensorLayout::htd(ns));
  }
  q.coefficients = std::move(coefficients);
  return q;
}

}  // namespace

const char* channel_scope_name(ChannelScope scope) noexcept {
  switch (scope) {
    case ChannelScope::head: return "head";
    case ChannelScope::layer: return "layer";
  }
  return "?";
}

const char* fft_layout_name(FftLayout layout) noexcept {
  switch (layout) {
    case FftLayout::half: return "half";
    case FftLayout::full: return "full";
  }
  return "?";
}

uint32_t anomalous_channel_count(const KeySpec& spec, uint32_t dim) {
  if (!(spec.nbits >= 1.0 && spec.nbits <= 2.0)) {
    throw Error(ErrorCode::unsupported_bits,
                "nbits_key " + std::to_string(spec.nbits) + " is outside [1, 2]");
  }
  return std::min(dim, uint32_t(std::floor(double(dim) * (spec.nbits - 1.0) + 1e-9)));
}

uint32_t coefficient_streams(FftLayout layout, uint32_t normal_channels) {
  return layout == FftLayout::full ? 2 * normal_channels : normal_channels;
}

void validate(const KeySpec& spec, const TensorShape& shape) {
  if (spec.scope != ChannelScope::head && spec.scope != ChannelScope::layer) {
    throw Error(ErrorCode::invalid_argument, "channel scope enum value " + std::to_string(int(spec.scope)) + " is not known");
  }
  if (spec.fft != FftLayout::half && spec.fft != FftLayout::full) {
    throw Error(ErrorCode::invalid_argument, "fft layout enum value " + std::to_string(int(spec.fft)) + " is not known");
  }
  // Group size, tokens a multiple of it, zero sizes. Any k is accepted: odd parts are quantized
  // like any other (the GPU decodes keys to fp16 only for an even dim, which it checks itself).
  validate(QuantSpec{QuantBits::b2, QuantAxis::channel, spec.group_size, TernaryScale::mean_abs}, shape);
}

namespace reference {

std::vector<uint16_t> channel_ranges(const TensorShape& shape, const uint16_t* input, const TensorLayout& layout,
                                     ChannelScope scope) {
  if (shape.heads == 0 || shape.tokens == 0 || shape.dim == 0) {
    throw Error(ErrorCode::invalid_argument, "key shape heads=" + std::to_string(shape.heads) + " tokens=" +
                                                 std::to_string(shape.tokens) + " dim=" + std::to_string(shape.dim) +
                                                 " has a zero dimension");
  }
  check_finite(shape, input, layout);
  const uint32_t units = scope == ChannelScope::head ? shape.heads : 1;
  std::vector<uint16_t> out(size_t(units) * shape.dim);
  for (uint32_t u = 0; u < units; ++u) {
    const uint32_t h0 = scope == ChannelScope::head ? u : 0, h1 = scope == ChannelScope::head ? u + 1 : shape.heads;
    for (uint32_t d = 0; d < shape.dim; ++d) {
      uint16_t mn = input[at(layout, h0, 0, d)], mx = mn;
      for (uint32_t h = h0; h < h1; ++h) {
        for (uint32_t t = 0; t < shape.tokens; ++t) {
          const uint16_t v = input[at(layout, h, t, d)];
          const float fv = to_float(v);
          // -0 below +0, so the result never depends on the scan order.
          if (fv < to_float(mn) || (fv == to_float(mn) && (v & 0x8000u) && !(mn & 0x8000u))) mn = v;
          if (fv > to_float(mx) || (fv == to_float(mx) && !(v & 0x8000u) && (mx & 0x8000u))) mx = v;
        }
      }
      out[size_t(u) * shape.dim + d] = from_float(to_float(mx) - to_float(mn));
    }
  }
  return out;
}

std::vector<ChannelSplit> select_channels(const std::vector<uint16_t>& ranges, uint32_t dim, uint32_t heads,
                                          ChannelScope scope, uint32_t k) {
  const uint32_t units = scope == ChannelScope::head ? heads : 1;
  if (ranges.size() != size_t(units) * dim || k > dim) {
    throw Error(ErrorCode::invalid_argument, "ranges hold " + std::to_string(ranges.size()) + " values for " +
                                                 std::to_string(units) + " unit(s) of dim " + std::to_string(dim) +
                                                 ", k " + std::to_string(k));
  }
  std::vector<ChannelSplit> out(heads);
  for (uint32_t h = 0; h < heads; ++h) {
    const uint16_t* r = ranges.data() + size_t(scope == ChannelScope::head ? h : 0) * dim;
    for (uint32_t d = 0; d < dim; ++d) {
      if (!(to_float(r[d]) >= 0.0f)) {
        throw Error(ErrorCode::invalid_argument, "range of channel " + std::to_string(d) + " is NaN or negative");
      }
    }
    std::vector<uint32_t> order(dim);
    for (uint32_t d = 0; d < dim; ++d) order[d] = d;
    std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return to_float(r[a]) > to_float(r[b]); });
    std::vector<bool> anomalous(dim, false);
    for (uint32_t i = 0; i < k; ++i) anomalous[order[i]] = true;
    for (uint32_t d = 0; d < dim; ++d) (anomalous[d] ? out[h].anomalous : out[h].normal).push_back(d);
  }
  return out;
}

std::vector<uint16_t> key_coefficients(const KeySpec& spec, const TensorShape& shape, const uint16_t* input,
                                       const TensorLayout& layout, const std::vector<ChannelSplit>& splits) {
  validate(spec, shape);
  check_splits(spec, shape, splits);
  check_finite(shape, input, layout);
  const uint32_t n = shape.dim - anomalous_channel_count(spec, shape.dim);
  const uint32_t streams = coefficient_streams(spec.fft, n);
  std::vector<uint16_t> out(size_t(shape.heads) * shape.tokens * streams);
  if (n == 0) return out;
  const Twiddles w(n);
  std::vector<double> x(n), re(n), im(n);
  for (uint32_t h = 0; h < shape.heads; ++h) {
    for (uint32_t t = 0; t < shape.tokens; ++t) {
      for (uint32_t i = 0; i < n; ++i) x[i] = to_float(input[at(layout, h, t, splits[h].normal[i])]);
      for (uint32_t f = 0; f < n; ++f) {
        double sr = 0, si = 0;
        for (uint32_t i = 0; i < n; ++i) {
          const uint32_t m = uint32_t((uint64_t(f) * i) % n);
          sr += x[i] * w.c[m];
          si -= x[i] * w.s[m];  // exp(-2 pi i f n / N)
        }
        re[f] = sr, im[f] = si;
      }
      uint16_t* o = out.data() + (size_t(h) * shape.tokens + t) * streams;
      if (spec.fft == FftLayout::full) {
        for (uint32_t f = 0; f < n; ++f) o[2 * f] = half_from_double(re[f]), o[2 * f + 1] = half_from_double(im[f]);
      } else {
        uint32_t s = 0;
        o[s++] = half_from_double(re[0]);
        for (uint32_t f = 1; f < (n + 1) / 2; ++f) o[s++] = half_from_double(re[f]), o[s++] = half_from_double(im[f]);
        if (n % 2 == 0) o[s++] = half_from_double(re[n / 2]);
      }
    }
  }
  return out;
}

QuantizedKeys quantize_keys(const KeySpec& spec, const TensorShape& shape, const uint16_t* input,
                            const TensorLayout& layout) {
  validate(spec, shape);
  std::vector<uint16_t> ranges = channel_ranges(shape, input, layout, spec.scope);
  const std::vector<ChannelSplit> splits =
      select_channels(ranges, shape.dim, shape.heads, spec.scope, anomalous_channel_count(spec, shape.dim));
  return quantize_parts(spec, shape, input, layout, splits, std::move(ranges),
                        key_coefficients(spec, shape, input, layout, splits));
}

QuantizedKeys quantize_keys_with(const KeySpec& spec, const TensorShape& shape, const uint16_t* input,
                                 const TensorLayout& layout, const std::vector<ChannelSplit>& splits,
                                 const std::vector<uint16_t>& coefficients) {
  validate(spec, shape);
  check_splits(spec, shape, splits);
  std::vector<uint16_t> ranges = channel_ranges(shape, input, layout, spec.scope);
  return quantize_parts(spec, shape, input, layout, splits, std::move(ranges), coefficients);
}

std::vector<uint16_t> dequantize_keys(const QuantizedKeys& q, const TensorLayout& layout) {
  const TensorShape& shape = q.shape;
  validate(q.spec, shape);
  check_splits(q.spec, shape, q.splits);
  const uint32_t k = anomalous_channel_count(q.spec, shape.dim), n = shape.dim - k;
  const uint32_t streams = coefficient_streams(q.spec.fft, n);
  if (q.anomalous.shape.dim != k || q.normal.shape.dim != streams || q.anomalous.shape.heads != shape.heads ||
      q.normal.shape.tokens != shape.tokens || q.anomalous.shape.tokens != shape.tokens ||
      q.normal.shape.heads != shape.heads) {
    throw Error(ErrorCode::invalid_argument, "quantized key parts have dims " + std::to_string(q.anomalous.shape.dim) +
                                                 " and " + std::to_string(q.normal.shape.dim) + ", expected " +
                                                 std::to_string(k) + " and " + std::to_string(streams));
  }
  std::vector<uint16_t> out(layout.span(shape), 0);
  if (k > 0) {
    const TensorShape as{shape.heads, shape.tokens, k};
    const std::vector<uint16_t> a = reference::dequantize(q.anomalous, TensorLayout::htd(as));
    for (uint32_t h = 0; h < shape.heads; ++h)
      for (uint32_t t = 0; t < shape.tokens; ++t)
        for (uint32_t j = 0; j < k; ++j)
          out[at(layout, h, t, q.splits[h].anomalous[j])] = a[(size_t(h) * shape.tokens + t) * k + j];
  }
  if (n == 0) return out;
  const TensorShape ns{shape.heads, shape.tokens, streams};
  const std::vector<uint16_t> c = reference::dequantize(q.normal, TensorLayout::htd(ns));
  const Twiddles w(n);
  std::vector<double> re(n), im(n);
  for (uint32_t h = 0; h < shape.heads; ++h) {
    for (uint32_t t = 0; t < shape.tokens; ++t) {
      const uint16_t* s = c.data() + (size_t(h) * shape.tokens + t) * streams;
      if (q.spec.fft == FftLayout::full) {
        for (uint32_t f = 0; f < n; ++f) re[f] = to_float(s[2 * f]), im[f] = to_float(s[2 * f + 1]);
      } else {  // the conjugate-symmetric extension of the half spectrum
        uint32_t i = 0;
        re[0] = to_float(s[i++]), im[0] = 0;
        for (uint32_t f = 1; f < (n + 1) / 2; ++f) {
          re[f] = to_float(s[i++]), im[f] = to_float(s[i++]);
          re[n - f] = re[f], im[n - f] = -im[f];
        }
        if (n % 2 == 0) re[n / 2] = to_float(s[i++]), im[n / 2] = 0;
      }
      for (uint32_t i = 0; i < n; ++i) {
        double sum = 0;
        for (uint32_t f = 0; f < n; ++f) {
          const uint32_t m = uint32_t((uint64_t(f) * i) % n);
          sum += re[f] * w.c[m] - im[f] * w.s[m];  // Re(X_f exp(+2 pi i f n / N))
        }
        out[at(layout, h, t, q.splits[h].normal[i])] = half_from_double(sum / double(n));
      }
    }
  }
  return out;
}

}  // namespace reference
}  // namespace vidkv
