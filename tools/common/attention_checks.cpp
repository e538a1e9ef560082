#include "common/attention_checks.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "common/random_data.hpp"
#include "vidkv/attention_reference.hpp"
#include "vidkv/error.hpp"
#include "vidkv/fp16.hpp"
#include "vidkv/ternary_pack.hpp"

namespace vidkv::tools {

RandomKv random_kv(uint32_t kv_heads, uint32_t tokens, uint32_t dim, uint64_t seed) {
  const TensorShape shape{kv_heads, tokens, dim};
  const TensorLayout thd = TensorLayout::thd(shape);
  return {random_halves(shape, thd, seed, true), random_halves(shape, thd, seed ^ 0x5bd1e995u, false)};
}

std::vector<float> realistic_query(const std::vector<uint16_t>& keys, uint32_t tokens, uint32_t kv_heads,
                                   uint32_t q_heads, uint32_t dim, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> q(size_t(q_heads) * dim);
  for (float& v : q) v = normal(rng);
  const uint32_t ratio = q_heads / kv_heads;
  for (uint32_t i = 0; i < q_heads && tokens > 1; ++i) {
    double sum = 0, squares = 0;
    for (uint32_t t = 0; t < tokens; ++t) {
      double score = 0;
      const size_t key = (size_t(t) * kv_heads + i / ratio) * dim;
      for (uint32_t c = 0; c < dim; ++c) score += q[size_t(i) * dim + c] * fp16::to_float(keys[key + c]);
      score /= std::sqrt(double(dim));
      sum += score;
      squares += score * score;
    }
    const double mean = sum / tokens;
    const double deviation = std::sqrt(std::max(squares / tokens - mean * mean, 1e-12));
    for (uint32_t c = 0; c < dim; ++c) q[size_t(i) * dim + c] *= float(2.0 / deviation);
  }
  return q;
}

double attention_error(const std::vector<float>& out, const std::vector<double>& ref, uint32_t dim) {
  if (out.size() != ref.size()) return INFINITY;
  double worst = 0;
  for (size_t head = 0; head * dim < ref.size(); ++head) {
    double difference = 0, magnitude = 0;
    for (uint32_t c = 0; c < dim; ++c) {
      const double o = out[head * dim + c], r = ref[head * dim + c];
      if (!std::isfinite(o)) return INFINITY;
      difference = std::max(difference, std::abs(o - r));
      magnitude = std::max(magnitude, std::abs(r));
    }
    worst = std::max(worst, difference / std::max(magnitude, 1e-30));
  }
  return worst;
}

std::vector<uint16_t> token_slice(const std::vector<uint16_t>& tensor, uint32_t from, uint32_t count,
                                  uint32_t kv_heads, uint32_t dim) {
  const size_t row = size_t(kv_heads) * dim;
  return std::vector<uint16_t>(tensor.begin() + from * row, tensor.begin() + (from + count) * row);
}

namespace {

KeySpec key_spec_of(const std::string& keys, uint32_t group) {
  KeySpec s;
  s.group_size = group;
  s.nbits = keys == "k2" ? 2.0 : (keys == "k1" ? 1.0 : 1.5);
  s.fft = keys == "k1.5full" ? FftLayout::full : FftLayout::half;
  s.scope = keys == "k1.5layer" ? ChannelScope::layer : ChannelScope::head;
  return s;
}

QuantSpec value_spec_of(ValueFormat format, uint32_t group) {
  switch (format) {
    case ValueFormat::ternary_trits: return {QuantBits::b1_58, QuantAxis::channel, group, TernaryScale::lsq};
    case ValueFormat::b2_channel: return {QuantBits::b2, QuantAxis::channel, group};
    case ValueFormat::b2_token: return {QuantBits::b2, QuantAxis::token, group};
    case ValueFormat::ternary_stp:
      // Two formats per segment (stp.hpp), not one QuantSpec; the STP attention checks are the
      // tests' (test_gpu_attention_stp.cpp), not this matrix's.
      break;
  }
  throw Error(ErrorCode::invalid_argument, std::string("attention check values ") + value_format_name(format) +
                                               " are not supported (ternary_trits, b2_channel, b2_token)");
}

// One segment quantized by the CPU reference, trits packed for ternary values.
struct ReferenceSegment {
  QuantizedKeys keys;
  QuantizedTensor values;
  std::vector<uint8_t> trits;
};

ReferenceSegment quantize_segment(const RandomKv& kv, uint32_t from, uint32_t count, uint32_t heads, uint32_t dim,
                                  const KeySpec& ks, const QuantSpec& vs, const std::vector<ChannelSplit>& splits) {
  const TensorShape shape{heads, count, dim};
  const TensorLayout thd = TensorLayout::thd(shape);
  const auto k = token_slice(kv.keys, from, count, heads, dim);
  const auto v = token_slice(kv.values, from, count, heads, dim);
  ReferenceSegment s;
  if (splits.empty()) {
    s.keys = reference::quantize_keys(ks, shape, k.data(), thd);
  } else {
    // A later segment keeps the first one's channels, as the cache does after its prefill.
    const auto coefficients = reference::key_coefficients(ks, shape, k.data(), thd, splits);
    s.keys = reference::quantize_keys_with(ks, shape, k.data(), thd, splits, coefficients);
  }
  s.values = reference::quantize(vs, shape, v.data(), thd);
  if (vs.bits == QuantBits::b1_58) s.trits = reference::pack_trits(s.values);
  return s;
}

// Group counts of `segments` segments covering `groups` groups: equal shares, the first takes the
// remainder; none is empty.
std::vector<uint32_t> segment_groups(uint32_t groups, uint32_t segments) {
  std::vector<uint32_t> out;
  if (groups == 0) return out;
  segments = std::min(segments, groups);
  const uint32_t share = groups / segments;
  out.assign(segments, share);
  out[0] += groups - share * segments;
  return out;
}

}  // namespace

std::string attention_case_name(const AttentionCheckCase& c) {
  std::string n = "attention_" + c.keys;
  if (c.keys != "fp16") n += std::string("_") + value_format_name(c.values);
  n += "_h" + std::to_string(c.kv_heads) + "r" + std::to_string(c.ratio) + "d" + std::to_string(c.dim) + "t" +
       std::to_string(c.tokens);
  if (c.segments > 1) n += "_seg" + std::to_string(c.segments);
  if (c.group != 32) n += "_g" + std::to_string(c.group);
  if (c.portable) n += "_portable";
  for (char& ch : n)
    if (ch == '.') ch = 'p';
  return n;
}

std::vector<AttentionCheckCase> attention_check_matrix() {
  std::vector<AttentionCheckCase> cases;
  auto add = [&](std::string keys, ValueFormat values, uint32_t heads, uint32_t ratio, uint32_t dim, uint32_t tokens,
                 uint32_t segments = 1, bool portable = false) {
    cases.push_back({std::move(keys), values, heads, ratio, dim, tokens, segments, portable});
  };
  const ValueFormat formats[] = {ValueFormat::ternary_trits, ValueFormat::b2_channel, ValueFormat::b2_token};
  // GQA 1, 4, 7 and D 64, 128: the fp16 baseline and every value format with VidKV keys.
  for (uint32_t ratio : {1u, 4u, 7u}) {
    for (uint32_t dim : {64u, 128u}) {
      add("fp16", ValueFormat::ternary_trits, 2, ratio, dim, 300);
      for (ValueFormat f : formats) add("k1.5", f, 2, ratio, dim, 300);
    }
  }
  // Token counts around a group (32) and a split (256): residual only, whole groups only, both.
  for (uint32_t tokens : {1u, 31u, 32u, 33u, 257u, 1000u}) {
    add("fp16", ValueFormat::ternary_trits, 2, 4, 128, tokens);
    add("k1.5", ValueFormat::ternary_trits, 2, 4, 128, tokens);
  }
  // Every key variant.
  add("k1.5full", ValueFormat::ternary_trits, 2, 4, 128, 129);
  add("k1.5full", ValueFormat::b2_channel, 2, 7, 64, 129);
  add("k1.5layer", ValueFormat::ternary_trits, 2, 4, 128, 129);
  add("k2", ValueFormat::b2_channel, 2, 4, 128, 129);
  add("k2", ValueFormat::b2_token, 2, 4, 64, 129);
  add("k1", ValueFormat::ternary_trits, 2, 4, 128, 129);
  add("k1", ValueFormat::b2_channel, 2, 1, 64, 129);
  // Layers of several segments and a residual: one softmax over all of them.
  add("k1.5", ValueFormat::ternary_trits, 2, 7, 128, 1005, 3);
  add("k1.5", ValueFormat::b2_token, 1, 4, 64, 300, 3);
  // The portable path forced (set_portable): what GPUs take by default, and on a CPU device whose
  // default is the subgroup-of-8 path the only cases that run the portable shaders.
  add("fp16", ValueFormat::ternary_trits, 2, 7, 128, 300, 1, true);
  add("k1.5", ValueFormat::ternary_trits, 2, 7, 128, 300, 1, true);
  add("k1.5full", ValueFormat::b2_channel, 2, 4, 64, 129, 1, true);
  add("k2", ValueFormat::b2_token, 1, 3, 128, 100, 1, true);
  // attention_vidkv.comp at the edges of its geometry: D 256 with 8 query heads per KV head, one
  // query head per KV head over two segments, KIVI at D 64 with a layer-wide channel list
  add("k1.5", ValueFormat::ternary_trits, 1, 8, 256, 300, 1, true);
  add("k1", ValueFormat::b2_channel, 2, 1, 256, 1000, 2, true);
  add("k1.5layer", ValueFormat::b2_token, 1, 8, 64, 257, 1, true);
  // GQA beyond 8: a KV head's query heads in chunks of 5 (9: one surplus head), 6 or 8, both paths
  for (uint32_t ratio : {9u, 12u, 16u}) {
    add("fp16", ValueFormat::ternary_trits, 2, ratio, 128, 300);
    add("k1.5", ValueFormat::ternary_trits, 2, ratio, 128, 300);
    add("k2", ValueFormat::b2_token, 2, ratio, 128, 300, 1, true);
  }
  add("fp16", ValueFormat::ternary_trits, 2, 12, 128, 300, 1, true);
  add("k1.5", ValueFormat::ternary_trits, 2, 12, 128, 300, 1, true);
  // Groups of 64 and 128 (the shaders walk 32-token blocks and read each block's group scales):
  // every value format on both paths, with segments and a residual.
  for (uint32_t group : {64u, 128u}) {
    for (bool portable : {false, true}) {
      for (ValueFormat f : formats) {
        add("k1.5", f, 2, 7, 128, 1000, 2, portable);
        cases.back().group = group;
      }
      add("k2", ValueFormat::ternary_trits, 1, 4, 64, 700, 1, portable);
      cases.back().group = group;
    }
  }
  // Head dims that are not a multiple of the lanes that own channels (80, 96, 112): the fp16
  // baseline and every value format on both paths (KIVI's value groups run along the channels:
  // 96 only), with segments and a residual.
  for (uint32_t dim : {80u, 96u, 112u}) {
    for (bool portable : {false, true}) {
      add("fp16", ValueFormat::ternary_trits, 2, 7, dim, 300, 1, portable);
      add("k1.5", ValueFormat::ternary_trits, 2, 7, dim, 700, 2, portable);
      add("k2", ValueFormat::b2_channel, 1, 12, dim, 333, 1, portable);
      if (dim == 96) add("k1.5layer", ValueFormat::b2_token, 2, 4, dim, 300, 1, portable);
    }
  }
  return cases;
}

std::vector<CheckResult> run_attention_check(GpuAttention& gpu, const AttentionCheckCase& c, uint64_t seed) {
  const std::string name = attention_case_name(c);
  const uint32_t q_heads = c.kv_heads * c.ratio;
  const std::string shape =
      std::to_string(q_heads) + "/" + std::to_string(c.kv_heads) + "x" + std::to_string(c.tokens) + "x" +
      std::to_string(c.dim);
  const AttentionGeometry g{c.kv_heads, q_heads, c.dim};
  const RandomKv kv = random_kv(c.kv_heads, c.tokens, c.dim, seed);
  const auto q = realistic_query(kv.keys, c.tokens, c.kv_heads, q_heads, c.dim, seed + 7);

  std::vector<ReferenceSegment> segments;
  uint32_t quantized = 0;
  if (c.keys != "fp16") {
    const KeySpec ks = key_spec_of(c.keys, c.group);
    const QuantSpec vs = value_spec_of(c.values, c.group);
    // (KIVI's values group channels; its keys still group tokens)
    for (uint32_t groups : segment_groups(c.tokens / c.group, c.segments)) {
      const std::vector<ChannelSplit> splits = segments.empty() ? std::vector<ChannelSplit>{} : segments[0].keys.splits;
      segments.push_back(quantize_segment(kv, quantized, groups * c.group, c.kv_heads, c.dim, ks, vs, splits));
      quantized += groups * c.group;
    }
  }
  std::vector<AttentionSegment> host;
  for (const auto& s : segments) host.push_back({&s.keys, &s.values, s.trits.empty() ? nullptr : &s.trits});
  const uint32_t residual = c.tokens - quantized;
  const auto rk = token_slice(kv.keys, quantized, residual, c.kv_heads, c.dim);
  const auto rv = token_slice(kv.values, quantized, residual, c.kv_heads, c.dim);
  const auto ref = reference::attention_layer(q, q_heads, host, rk, rv, residual, c.kv_heads, c.dim);

  gpu.set_portable(c.portable);
  CheckResult output{name + "/output", shape, 0.0, true, ""};
  std::vector<std::vector<float>> outs;
  for (uint8_t poison : {uint8_t(0x00), uint8_t(0xff)}) {
    gpu.set_poison(poison);
    outs.push_back(c.keys == "fp16" ? gpu.fp16_host(g, q, kv.keys, kv.values, c.tokens)
                                    : gpu.vidkv_host(g, q, host, rk, rv, residual));
    const double error = attention_error(outs.back(), ref, c.dim);
    output.max_error = std::max(output.max_error, error);
    if (!(error < kAttentionTolerance) && output.passed) {
      output.passed = false;
      output.detail = "poison 0x" + std::string(poison ? "ff" : "00") + ": relative error " + std::to_string(error) +
                      " (limit 1e-3)";
    }
  }
  gpu.set_portable(false);
  if (output.passed) output.detail = std::to_string(segments.size()) + " segments + " + std::to_string(residual) +
                                     " fp16 tokens";
  const bool same = outs[0].size() == outs[1].size() &&
                    std::memcmp(outs[0].data(), outs[1].data(), outs[0].size() * sizeof(float)) == 0;
  return {output, CheckResult{name + "/repeatable", shape, 0.0, same,
                              same ? "" : "outputs differ between poison 0x00 and 0xff"}};
}

}  // namespace vidkv::tools
