// Reference decode attention (attention_reference.hpp).
#include "vidkv/attention_reference.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "vidkv/fp16.hpp"
#include "vidkv/stp.hpp"
#include "vidkv/ternary_pack.hpp"

namespace vidkv::reference {

std::vector<double> attention(const std::vector<float>& q, uint32_t q_heads, const std::vector<double>& keys,
                              const std::vector<double>& values, uint32_t tokens, uint32_t kv_heads, uint32_t dim,
                              double scale) {
  if (kv_heads == 0 || q_heads % kv_heads != 0 || tokens == 0 || q.size() != size_t(q_heads) * dim ||
      keys.size() < size_t(tokens) * kv_heads * dim || values.size() < size_t(tokens) * kv_heads * dim) {
    throw Error(ErrorCode::invalid_argument, "reference attention: inconsistent sizes (q_heads " +
                                                 std::to_string(q_heads) + ", kv_heads " + std::to_string(kv_heads) +
                                                 ", tokens " + std::to_string(tokens) + ")");
  }
  if (scale == 0.0) scale = 1.0 / std::sqrt(double(dim));
  const uint32_t ratio = q_heads / kv_heads;
  std::vector<double> out(size_t(q_heads) * dim, 0.0), s(tokens);
  for (uint32_t i = 0; i < q_heads; ++i) {
    const uint32_t h = i / ratio;
    double m = -INFINITY;
    for (uint32_t t = 0; t < tokens; ++t) {
      double dot = 0.0;
      const double* k = &keys[(size_t(t) * kv_heads + h) * dim];
      for (uint32_t c = 0; c < dim; ++c) dot += double(q[size_t(i) * dim + c]) * k[c];
      s[t] = dot * scale;
      m = std::max(m, s[t]);
    }
    double l = 0.0;
    for (uint32_t t = 0; t < tokens; ++t) l += (s[t] = std::exp(s[t] - m));
    for (uint32_t t = 0; t < tokens; ++t) {
      const double* v = &values[(size_t(t) * kv_heads + h) * dim];
      for (uint32_t c = 0; c < dim; ++c) out[size_t(i) * dim + c] += s[t] / l * v[c];
    }
  }
  return out;
}

namespace {

double half(uint16_t h) { return fp16::to_float(h); }

// Scale/min index of element (h, t, c) of a grouped tensor.
size_t group_index(const QuantizedTensor& q, uint32_t h, uint32_t t, uint32_t c) {
  const uint32_t G = q.spec.group_size;
  if (q.spec.axis == QuantAxis::channel) return (size_t(h) * q.shape.dim + c) * (q.shape.tokens / G) + t / G;
  return (size_t(h) * q.shape.tokens + t) * (q.shape.dim / G) + c / G;
}

// The value the codes stand for, unrounded.
double decode_exact(const QuantizedTensor& q, uint32_t h, uint32_t t, uint32_t c) {
  const int32_t code = code_at(q, h, t, c);
  const size_t g = group_index(q, h, t, c);
  switch (q.spec.bits) {
    case QuantBits::b1: return (2.0 * code - 1.0) * half(q.scales[g]);
    case QuantBits::b1_58: return code * half(q.scales[g]);
    default: return code * half(q.scales[g]) + half(q.mins[g]);
  }
}

// Keys in float64: anomalous channels code * s + mn; normal channels the real part of the float64
// inverse DFT of the decoded streams (half layout: conjugate-symmetric extension).
void exact_keys(const QuantizedKeys& k, std::vector<double>& out) {
  const uint32_t H = k.shape.heads, T = k.shape.tokens, D = k.shape.dim;
  const uint32_t K = uint32_t(k.splits[0].anomalous.size()), N = D - K;
  const bool full = k.spec.fft == FftLayout::full;
  const size_t base = out.size();
  out.resize(base + size_t(T) * H * D);
  std::vector<double> re(N), im(N);
  for (uint32_t t = 0; t < T; ++t)
    for (uint32_t h = 0; h < H; ++h) {
      double* row = &out[base + (size_t(t) * H + h) * D];
      const ChannelSplit& split = k.splits[h];
      for (uint32_t j = 0; j < K; ++j) row[split.anomalous[j]] = decode_exact(k.anomalous, h, t, j);
      if (N == 0) continue;
      std::fill(re.begin(), re.end(), 0.0);
      std::fill(im.begin(), im.end(), 0.0);
      for (uint32_t s = 0; s < k.normal.shape.dim; ++s) {
        const double x = decode_exact(k.normal, h, t, s);
        const uint32_t f = full ? s / 2 : (s + 1) / 2;
        const bool imag = full ? (s % 2 == 1) : (s > 0 && s % 2 == 0);
        (imag ? im : re)[f] = x;
        if (!full && f > 0 && 2 * f != N) (imag ? im : re)[N - f] = imag ? -x : x;  // X_{N-f} = conj(X_f)
      }
      for (uint32_t n = 0; n < N; ++n) {
        double x = 0.0;
        for (uint32_t f = 0; f < N; ++f) {
          const double a = 2.0 * M_PI * double((uint64_t(f) * n) % N) / N;
          x += re[f] * std::cos(a) - im[f] * std::sin(a);
        }
        row[split.normal[n]] = x / N;
      }
    }
}

}  // namespace

namespace {

// Keys of a segment, exact or rounded to fp16 like dequantize_keys.
void decode_keys(const QuantizedKeys& k, DecodeRounding rounding, std::vector<double>& keys) {
  if (rounding == DecodeRounding::fp16) {
    for (uint16_t h : dequantize_keys(k, TensorLayout::thd(k.shape))) keys.push_back(half(h));
  } else {
    exact_keys(k, keys);
  }
}

// Values split by semantic token protection: token t of the segment reads its part at its index.
void decode_stp_values(const AttentionSegment& seg, DecodeRounding rounding, std::vector<double>& values) {
  const StpQuantizedValues& stp = *seg.stp;
  const TensorShape shape = seg.keys->shape;
  const TokenSplit& split = stp.split;
  if (stp.shape.heads != shape.heads || stp.shape.tokens != shape.tokens || stp.shape.dim != shape.dim ||
      stp.high.shape.tokens != split.protected_tokens.size() || stp.low.shape.tokens != split.other_tokens.size() ||
      split.protected_tokens.size() + split.other_tokens.size() != shape.tokens) {
    throw Error(ErrorCode::invalid_argument, "reference attention: the STP split (" +
                                                 std::to_string(split.protected_tokens.size()) + " protected, " +
                                                 std::to_string(split.other_tokens.size()) +
                                                 " other tokens) does not match the segment's " +
                                                 std::to_string(shape.tokens) + " tokens");
  }
  // positions in range, increasing, disjoint, whole groups: the split the lists stand for
  const uint32_t group = std::max<uint32_t>(stp.low.spec.group_size, 1);
  if (split_from_list(split.protected_tokens, shape.tokens, group).other_tokens != split.other_tokens) {
    throw Error(ErrorCode::invalid_argument, "reference attention: the STP split's other tokens are not the "
                                             "complement of its protected tokens");
  }
  StpQuantizedValues parts = stp;
  if (seg.trits != nullptr && parts.low.shape.tokens > 0) {
    parts.low.codes = unpack_trits(*seg.trits, parts.low.spec, parts.low.shape);
  }
  if (rounding == DecodeRounding::fp16) {
    for (uint16_t h : dequantize_values_stp(parts, TensorLayout::thd(shape))) values.push_back(half(h));
    return;
  }
  // part (0 other, 1 protected) and index of every token
  std::vector<std::pair<int, uint32_t>> where(shape.tokens);
  for (uint32_t i = 0; i < split.other_tokens.size(); ++i) where[split.other_tokens[i]] = {0, i};
  for (uint32_t j = 0; j < split.protected_tokens.size(); ++j) where[split.protected_tokens[j]] = {1, j};
  for (uint32_t t = 0; t < shape.tokens; ++t) {
    const QuantizedTensor& part = where[t].first == 1 ? parts.high : parts.low;
    for (uint32_t h = 0; h < shape.heads; ++h)
      for (uint32_t c = 0; c < shape.dim; ++c) values.push_back(decode_exact(part, h, where[t].second, c));
  }
}

}  // namespace

void decode_segment(const AttentionSegment& seg, DecodeRounding rounding, std::vector<double>& keys,
                    std::vector<double>& values) {
  if (seg.keys == nullptr || (seg.values == nullptr) == (seg.stp == nullptr)) {
    throw Error(ErrorCode::invalid_argument, "reference attention: a segment needs keys and either values or an STP split");
  }
  const QuantizedKeys& k = *seg.keys;
  if (k.splits.size() != k.shape.heads) {
    throw Error(ErrorCode::invalid_argument, "reference attention: segment keys have no channel split per head");
  }
  if (seg.stp != nullptr) {
    decode_stp_values(seg, rounding, values);
    decode_keys(k, rounding, keys);
    return;
  }
  QuantizedTensor v = *seg.values;
  if (seg.trits != nullptr) v.codes = unpack_trits(*seg.trits, v.spec, v.shape);
  if (v.shape.tokens != k.shape.tokens || v.shape.heads != k.shape.heads || v.shape.dim != k.shape.dim) {
    throw Error(ErrorCode::invalid_argument, "reference attention: segment keys and values do not match");
  }
  decode_keys(k, rounding, keys);
  if (rounding == DecodeRounding::fp16) {
    for (uint16_t h : dequantize(v, TensorLayout::thd(k.shape))) values.push_back(half(h));
    return;
  }
  for (uint32_t t = 0; t < v.shape.tokens; ++t)
    for (uint32_t h = 0; h < v.shape.heads; ++h)
      for (uint32_t c = 0; c < v.shape.dim; ++c) values.push_back(decode_exact(v, h, t, c));
}

std::vector<double> attention_layer(const std::vector<float>& q, uint32_t q_heads,
                                    const std::vector<AttentionSegment>& segments,
                                    const std::vector<uint16_t>& residual_keys,
                                    const std::vector<uint16_t>& residual_values, uint32_t residual_tokens,
                                    uint32_t kv_heads, uint32_t dim, double scale, DecodeRounding rounding) {
  std::vector<double> keys, values;
  for (const AttentionSegment& seg : segments) {
    if (seg.keys == nullptr) throw Error(ErrorCode::invalid_argument, "reference attention: a segment lacks keys");
    if (seg.keys->shape.heads != kv_heads || seg.keys->shape.dim != dim) {
      throw Error(ErrorCode::invalid_argument, "reference attention: segment shape does not match the layer");
    }
    decode_segment(seg, rounding, keys, values);
  }
  auto append = [&](std::vector<double>& dst, const std::vector<uint16_t>& halves) {
    for (uint16_t h : halves) dst.push_back(fp16::to_float(h));
  };
  const size_t n = size_t(residual_tokens) * kv_heads * dim;
  if (residual_keys.size() < n || residual_values.size() < n) {
    throw Error(ErrorCode::buffer_too_small, "reference attention: residual holds fewer than " + std::to_string(n) +
                                                 " halves");
  }
  append(keys, std::vector<uint16_t>(residual_keys.begin(), residual_keys.begin() + n));
  append(values, std::vector<uint16_t>(residual_values.begin(), residual_values.begin() + n));
  const uint32_t tokens = uint32_t(keys.size() / (size_t(kv_heads) * dim));
  return attention(q, q_heads, keys, values, tokens, kv_heads, dim, scale);
}

}  // namespace vidkv::reference
