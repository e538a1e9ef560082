#include "common/cache_checks.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <tuple>

#include "common/attention_checks.hpp"
#include "common/fp16_tolerance.hpp"
#include "vidkv/attention_reference.hpp"
#include "vidkv/cache.hpp"
#include "vidkv/fp16.hpp"
#include "vidkv/stp.hpp"
#include "vidkv/ternary_pack.hpp"

namespace vidkv::tools {

namespace {

// --- what the cache is expected to hold ---

// The key spec the cache stores with (cache.hpp): the settings' VidKV keys, or plain 2-bit keys as
// VidKV keys whose channels are all anomalous.
KeySpec expected_key_spec(const CacheSettings& s) {
  if (s.key_mode == CacheSettings::KeyMode::vidkv) return s.keys;
  KeySpec k;
  k.nbits = 2.0;
  k.group_size = s.group_size;
  return k;
}

QuantSpec expected_value_spec(const CacheSettings& s) {
  switch (s.value_mode) {
    case CacheSettings::ValueMode::per_channel_ternary:
      return {QuantBits::b1_58, QuantAxis::channel, s.group_size, s.ternary};
    case CacheSettings::ValueMode::per_token_2bit: return {QuantBits::b2, QuantAxis::token, s.group_size};
    default: return {QuantBits::b2, QuantAxis::channel, s.group_size};
  }
}

bool is_fp16(const CacheSettings& s) { return s.key_mode == CacheSettings::KeyMode::fp16; }

// Token counts of the segments the flush rule predicts: the prefill's whole groups, then one
// segment each time the residual reaches residual_length.
std::vector<uint32_t> expected_segments(const CacheSettings& s, uint32_t prefill, uint32_t appended) {
  std::vector<uint32_t> segments;
  if (is_fp16(s)) return segments;
  uint32_t residual = prefill % s.group_size;
  if (prefill >= s.group_size) segments.push_back(prefill - residual);
  for (uint32_t i = 0; i < appended; ++i) {
    if (++residual == s.residual_length) {
      segments.push_back(residual);
      residual = 0;
    }
  }
  return segments;
}

// STP input of a prefill of `tokens` tokens: visual tokens from position 8 to the end of the
// prefill's whole groups (all protected ones must lie there), with random scores.
CacheStpInput stp_input(const CacheSettings& s, uint32_t tokens, uint64_t seed) {
  CacheStpInput in;
  const uint32_t quantized = tokens / s.group_size * s.group_size;
  in.first_visual = std::min(8u, quantized);
  in.visual_tokens = quantized - in.first_visual;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (uint32_t i = 0; i < in.visual_tokens; ++i) in.scores.push_back(normal(rng));
  return in;
}

// --- fp32 input ---

// fp32 values near the given halves, each moved by k/8 of the half's ulp (k in -4..4), so that
// rounding them to fp16 is not trivial; k = +-4 lands on a tie (round to even decides).
std::vector<float> below_half_precision(const std::vector<uint16_t>& halves, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> step(-4, 4);
  std::vector<float> out(halves.size());
  for (size_t i = 0; i < halves.size(); ++i) {
    const float h = fp16::to_float(halves[i]);
    const float ulp = float(half_ulp_of(std::fabs(h)));
    out[i] = h + ulp * float(step(rng)) / 8.0f;
  }
  return out;
}

std::vector<uint16_t> rounded(const std::vector<float>& values) {
  std::vector<uint16_t> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) out[i] = fp16::from_float(values[i]);
  return out;
}

// --- the float64 reference over what the cache holds ---

bool is_stp_segment(const CacheSegmentHost& s) { return !s.split.protected_tokens.empty(); }

// The value a per-channel code of part `t` at (head h, gathered token j, channel c) stands for,
// unrounded (attention_reference.hpp's exact decoding).
double exact_value(const QuantizedTensor& t, uint32_t h, uint32_t j, uint32_t c) {
  const size_t g = (size_t(h) * t.shape.dim + c) * (t.shape.tokens / t.spec.group_size) + j / t.spec.group_size;
  const double code = reference::code_at(t, h, j, c), scale = fp16::to_float(t.scales[g]);
  return t.spec.bits == QuantBits::b1_58 ? code * scale : code * scale + fp16::to_float(t.mins[g]);
}

// K and V of a layer in float64, [tokens][kv_heads][dim]: every segment decoded exactly (an STP
// segment's two value parts put back at their token positions), then the fp16 residual.
void exact_layer(const std::vector<CacheSegmentHost>& segments, const std::vector<uint16_t>& rk,
                 const std::vector<uint16_t>& rv, std::vector<double>& keys, std::vector<double>& values) {
  for (const auto& s : segments) {
    if (!is_stp_segment(s)) {
      reference::decode_segment({&s.keys, &s.values, s.trits.empty() ? nullptr : &s.trits},
                                reference::DecodeRounding::exact, keys, values);
      continue;
    }
    // Keys through the reference with stand-in values of the right shape, then the real values.
    const uint32_t H = s.keys.shape.heads, D = s.keys.shape.dim;
    QuantizedTensor stand_in;
    stand_in.spec = {QuantBits::b2, QuantAxis::channel, s.values_high.spec.group_size};
    stand_in.shape = s.keys.shape;
    const PackedSizes sizes = packed_sizes(stand_in.spec, stand_in.shape);
    stand_in.codes.assign(sizes.code_words(), 0);
    stand_in.scales.assign(sizes.scale_count(), 0);
    stand_in.mins.assign(sizes.scale_count(), 0);
    const size_t base = values.size();
    reference::decode_segment({&s.keys, &stand_in, nullptr}, reference::DecodeRounding::exact, keys, values);
    for (const auto* part : {&s.split.protected_tokens, &s.split.other_tokens}) {
      const QuantizedTensor& t = part == &s.split.protected_tokens ? s.values_high : s.values;
      for (uint32_t j = 0; j < part->size(); ++j)
        for (uint32_t h = 0; h < H; ++h)
          for (uint32_t c = 0; c < D; ++c) {
            values[base + (size_t((*part)[j]) * H + h) * D + c] = exact_value(t, h, j, c);
          }
    }
  }
  for (uint16_t h : rk) keys.push_back(fp16::to_float(h));
  for (uint16_t h : rv) values.push_back(fp16::to_float(h));
}

// --- checks ---

CheckResult result(const std::string& name, const std::string& shape, bool passed, const std::string& failure,
                   double error = 0.0) {
  return {name, shape, error, passed, passed ? "" : failure};
}

// Folds one more comparison into a per-layer check: the first failure is kept.
void fold(CheckResult& into, bool passed, const std::string& failure, double error = 0.0) {
  into.max_error = std::max(into.max_error, error);
  if (!passed && into.passed) {
    into.passed = false;
    into.detail = failure;
  }
}

std::string within_detail(const ToleranceReport& t) {
  return std::to_string(t.mismatches) + " outside fp16 rounding, first " + t.first;
}

struct LayerInput {
  uint32_t layer;
  const RandomKv* kv;
  uint32_t prefill, appended;
  const CacheStpInput* stp;  // the prefill's, with settings.stp
};

class LayerChecker {
 public:
  LayerChecker(Cache& cache, GpuKeyQuantizer& keys, uint32_t sequence, const std::string& prefix,
               const LayerInput& input, CacheCheckOutcome& out)
      : cache_(cache), keys_(keys), seq_(sequence), in_(input), prefix_(prefix), out_(out) {
    const CacheGeometry& g = cache.geometry();
    shape_ = std::to_string(g.q_heads) + "/" + std::to_string(g.kv_heads) + "x" +
             std::to_string(input.prefill + input.appended) + "x" + std::to_string(g.head_dim);
  }

  // Attention from the cache against the reference over what the cache holds now.
  void attention(const std::string& what, uint64_t seed) {
    const CacheGeometry& g = cache_.geometry();
    const uint32_t tokens = cache_.tokens(seq_, in_.layer);
    const auto held_keys = token_slice(in_.kv->keys, 0, tokens, g.kv_heads, g.head_dim);
    const auto q = realistic_query(held_keys, tokens, g.kv_heads, g.q_heads, g.head_dim, seed);
    std::vector<float> got;
    try {
      got = cache_.attention(seq_, in_.layer, q);
    } catch (const Error& e) {
      // STP segments wait for the fused attention's STP value format (cache_layer.cpp).
      if (cache_.settings().stp && e.code() == ErrorCode::unsupported_bits) {
        out_.skipped.emplace_back(prefix_ + "/" + what, e.what());
        return;
      }
      throw;
    }
    std::vector<CacheSegmentHost> segments;
    for (uint32_t i = 0; i < cache_.segment_count(seq_, in_.layer); ++i) {
      segments.push_back(cache_.segment_host(seq_, in_.layer, i));
    }
    std::vector<uint16_t> rk, rv;
    cache_.residual_host(seq_, in_.layer, rk, rv);
    std::vector<double> k, v;
    exact_layer(segments, rk, rv, k, v);
    const auto ref = reference::attention(q, g.q_heads, k, v, tokens, g.kv_heads, g.head_dim);
    const double error = attention_error(got, ref, g.head_dim);
    out_.checks.push_back(result(prefix_ + "/" + what, shape_, error < kAttentionTolerance,
                                 "relative error " + std::to_string(error) + " (limit 1e-3)", error));
  }

  // Everything but attention, on the layer's final state.
  void contents() {
    const CacheGeometry& g = cache_.geometry();
    const CacheSettings& settings = cache_.settings();
    const uint32_t H = g.kv_heads, D = g.head_dim, total = in_.prefill + in_.appended;
    const size_t row = size_t(H) * D;

    const auto sizes = expected_segments(settings, in_.prefill, in_.appended);
    uint32_t quantized = 0;
    for (uint32_t n : sizes) quantized += n;
    const uint32_t count = cache_.segment_count(seq_, in_.layer);
    std::vector<CacheSegmentHost> segments;
    for (uint32_t i = 0; i < count; ++i) segments.push_back(cache_.segment_host(seq_, in_.layer, i));
    bool layout = cache_.tokens(seq_, in_.layer) == total && count == sizes.size();
    for (size_t i = 0; layout && i < sizes.size(); ++i) layout = segments[i].keys.shape.tokens == sizes[i];
    add(result(prefix_ + "/layout", shape_, layout,
               std::to_string(count) + " segments for " + std::to_string(cache_.tokens(seq_, in_.layer)) +
                   " tokens; expected " + std::to_string(sizes.size()) + " for " + std::to_string(total)));
    if (!layout) return;

    std::vector<uint16_t> rk, rv;
    cache_.residual_host(seq_, in_.layer, rk, rv);
    const auto tail_k = token_slice(in_.kv->keys, quantized, total - quantized, H, D);
    const auto tail_v = token_slice(in_.kv->values, quantized, total - quantized, H, D);
    add(result(prefix_ + "/residual", shape_, rk == tail_k && rv == tail_v,
               "the residual differs from the input's newest tokens"));

    std::vector<uint16_t> dk, dv;
    cache_.dequantize(seq_, in_.layer, dk, dv);
    CheckResult dequantized = result(prefix_ + "/dequantize", shape_, true, "");
    if (dk.size() != size_t(total) * row || dv.size() != size_t(total) * row) {
      fold(dequantized, false, "dequantize returned " + std::to_string(dk.size() / row) + " tokens");
      add(dequantized);
      return;
    }
    fold(dequantized,
         std::equal(tail_k.begin(), tail_k.end(), dk.begin() + quantized * row) &&
             std::equal(tail_v.begin(), tail_v.end(), dv.begin() + quantized * row),
         "decoded residual tokens differ from the input");
    if (!segments.empty()) segment_checks(segments, sizes, dk, dv, dequantized);
    add(dequantized);
  }

 private:
  void add(const CheckResult& r) { out_.checks.push_back(r); }

  // Channels, coefficients, codes and decoding of every segment, one check line each.
  void segment_checks(const std::vector<CacheSegmentHost>& segments, const std::vector<uint32_t>& sizes,
                      const std::vector<uint16_t>& dk, const std::vector<uint16_t>& dv, CheckResult& dequantized) {
    const CacheSettings& settings = cache_.settings();
    const uint32_t H = cache_.geometry().kv_heads, D = cache_.geometry().head_dim, G = settings.group_size;
    const size_t row = size_t(H) * D;
    CheckResult channels = result(prefix_ + "/channels", shape_, true, "");
    CheckResult coefficients = result(prefix_ + "/coefficients", shape_, true, "");
    CheckResult key_codes = result(prefix_ + "/key_codes", shape_, true, "");
    CheckResult value_codes = result(prefix_ + "/value_codes", shape_, true, "");
    CheckResult stp = result(prefix_ + "/stp_split", shape_, true, "");
    const KeySpec ks = expected_key_spec(settings);
    const QuantSpec vs = expected_value_spec(settings);
    const uint32_t k = anomalous_channel_count(ks, D), streams = coefficient_streams(ks.fft, D - k);
    const bool prefill_segment = in_.prefill >= G;  // segment 0 came from the prefill
    std::vector<ChannelSplit> first_splits;
    uint32_t from = 0;
    for (size_t i = 0; i < segments.size(); from += sizes[i], ++i) {
      const CacheSegmentHost& s = segments[i];
      const std::string where = "segment " + std::to_string(i) + ": ";
      const uint32_t n = sizes[i];
      const TensorShape shape{H, n, D};
      const TensorLayout thd = TensorLayout::thd(shape);
      const auto kin = token_slice(in_.kv->keys, from, n, H, D), vin = token_slice(in_.kv->values, from, n, H, D);
      if (i == 0) {
        const auto ranges = reference::channel_ranges(shape, kin.data(), thd, ks.scope);
        first_splits = reference::select_channels(ranges, D, H, ks.scope, k);
      }
      bool same_channels = s.keys.spec.nbits == ks.nbits && s.keys.spec.fft == ks.fft &&
                           s.keys.spec.scope == ks.scope && s.keys.splits.size() == first_splits.size();
      for (size_t h = 0; same_channels && h < first_splits.size(); ++h) {
        same_channels = s.keys.splits[h].anomalous == first_splits[h].anomalous &&
                        s.keys.splits[h].normal == first_splits[h].normal;
      }
      fold(channels, same_channels, where + "key spec or channel lists differ from the reference's choice");
      if (!same_channels) continue;

      // Keys: the building block's VkFFT coefficients against the double DFT, then every code
      // against the reference quantizing those coefficients.
      std::vector<uint16_t> gpu_coefficients;
      if (streams > 0) {
        gpu_coefficients = keys_.quantize_host_with(ks, shape, kin, thd, first_splits).coefficients;
        const auto t = compare_within_fp16_rounding(
            gpu_coefficients, reference::key_coefficients(ks, shape, kin.data(), thd, first_splits), streams);
        fold(coefficients, t.mismatches == 0, where + within_detail(t), t.max_difference);
      }
      const QuantizedKeys ek =
          reference::quantize_keys_with(ks, shape, kin.data(), thd, first_splits, gpu_coefficients);
      fold(key_codes,
           std::tie(ek.anomalous.codes, ek.anomalous.scales, ek.anomalous.mins) ==
               std::tie(s.keys.anomalous.codes, s.keys.anomalous.scales, s.keys.anomalous.mins),
           where + "2-bit key channels differ from the reference");
      fold(key_codes,
           std::tie(ek.normal.codes, ek.normal.scales) == std::tie(s.keys.normal.codes, s.keys.normal.scales),
           where + "1-bit key streams differ from the reference");
      const auto t = compare_within_fp16_rounding(
          std::vector<uint16_t>(dk.begin() + from * row, dk.begin() + (from + n) * row),
          reference::dequantize_keys(s.keys, thd), D);
      fold(dequantized, t.mismatches == 0, where + "keys " + within_detail(t), t.max_difference);

      // Values: with STP, the prefill's segment splits its tokens as the reference selects them.
      std::vector<uint16_t> decoded_values;
      TokenSplit split;
      if (settings.stp && i == 0 && prefill_segment) {
        StpSpec spec{settings.stp_ratio, G, in_.stp->first_visual};
        split = reference::stp_select(spec, in_.stp->scores, n);
      }
      if (!split.protected_tokens.empty()) {
        fold(stp, s.split.protected_tokens == split.protected_tokens && s.split.other_tokens == split.other_tokens,
             where + "protected tokens differ from the reference's selection");
        const StpQuantizedValues ev =
            reference::quantize_values_stp(split, G, settings.ternary, shape, vin.data(), thd);
        fold(value_codes,
             std::tie(ev.high.codes, ev.high.scales, ev.high.mins) ==
                     std::tie(s.values_high.codes, s.values_high.scales, s.values_high.mins) &&
                 std::tie(ev.low.codes, ev.low.scales) == std::tie(s.values.codes, s.values.scales) &&
                 s.trits == reference::pack_trits(ev.low),
             where + "STP value parts differ from the reference");
        decoded_values = reference::dequantize_values_stp(ev, thd);
      } else {
        fold(stp, !is_stp_segment(s), where + "protects tokens it should not");
        const QuantizedTensor ev = reference::quantize(vs, shape, vin.data(), thd);
        bool same = ev.codes == s.values.codes && ev.scales == s.values.scales;
        same = same && (vs.bits == QuantBits::b1_58 ? s.trits == reference::pack_trits(ev) : ev.mins == s.values.mins);
        fold(value_codes, same, where + "value codes, scales, mins or trits differ from the reference");
        decoded_values = reference::dequantize(ev, thd);
      }
      fold(dequantized, std::equal(decoded_values.begin(), decoded_values.end(), dv.begin() + from * row),
           where + "decoded values differ from the reference's decoding");
    }
    add(channels);
    if (streams > 0) add(coefficients);
    add(key_codes);
    add(value_codes);
    if (settings.stp) add(stp);
  }

  Cache& cache_;
  GpuKeyQuantizer& keys_;
  uint32_t seq_;
  LayerInput in_;
  std::string prefix_;
  std::string shape_;
  CacheCheckOutcome& out_;
};

}  // namespace

std::string cache_case_name(const CacheCheckCase& c) {
  std::string n = "cache_" + c.preset + "_h" + std::to_string(c.kv_heads) + "r" + std::to_string(c.ratio) + "d" +
                  std::to_string(c.dim);
  if (c.group != 32) n += "_g" + std::to_string(c.group);
  for (char& ch : n)
    if (ch == '.') ch = 'p';
  return n;
}

std::vector<CacheCheckCase> cache_check_matrix() {
  std::vector<CacheCheckCase> cases;
  for (const char* p : {"fp16", "2bit", "kivi", "k1.5-v2", "k1.5-v1.58"}) {
    // A long prefill (18 whole groups + 24) then 130 appends: one flush of 128, 26 left; a prefill
    // shorter than a group, whose first flush quantizes and chooses the channels; a short one.
    cases.push_back({p, 2, 4, 128, {{600, 130, 129, false}, {20, 120, 0, false}, {33, 3, 64, true}}});
  }
  // GQA 7 and D 64 (two per-token groups of 32 channels for KIVI's values).
  for (const char* p : {"kivi", "k1.5-v1.58"}) cases.push_back({p, 1, 7, 64, {{300, 100, 40, true}}});
  // GQA 12 and 16 (two workgroups of 6 or 8 query heads per KV head).
  for (const char* p : {"fp16", "k1.5-v1.58"}) cases.push_back({p, 2, 12, 128, {{300, 100, 40, true}}});
  cases.push_back({"2bit", 1, 16, 64, {{300, 100, 40, true}}});
  // STP: every prefill carries scores for its visual tokens; 600 tokens protect 128, 129 protect
  // 32, 33 protect none (stp.hpp rounds to whole groups).
  cases.push_back({"k1.5-v1.58-stp", 2, 4, 128, {{600, 130, 129, false}, {33, 3, 64, true}}});
  // Groups of 64 and 128: a long prefill then a flush, a prefill shorter than a group.
  for (uint32_t group : {64u, 128u}) {
    for (const char* p : {"k1.5-v1.58", "kivi"}) {
      cases.push_back({p, 2, 4, 128, {{600, 130, 129, false}, {100, 120, 0, false}}, group});
    }
    cases.push_back({"k1.5-v1.58-stp", 2, 4, 128, {{600, 130, 129, false}}, group});
  }
  return cases;
}

CacheCheckOutcome run_cache_check(const std::shared_ptr<rt::Context>& ctx, GpuKeyQuantizer& keys,
                                  const CacheCheckCase& c, uint64_t seed) {
  const std::string name = cache_case_name(c);
  CacheSettings settings = preset(c.preset);
  settings.group_size = settings.keys.group_size = c.group;
  const CacheGeometry g{2, c.kv_heads, c.kv_heads * c.ratio, c.dim};
  uint32_t max_tokens = 1;
  for (const auto& s : c.sequences) max_tokens = std::max({max_tokens, s.prefill + s.appended, s.device_prefill});
  Cache cache(ctx, g, settings, max_tokens);
  std::mt19937_64 rng(seed);
  CacheCheckOutcome out;

  // Sequences live side by side: each is filled and checked while the others hold their data.
  for (size_t i = 0; i < c.sequences.size(); ++i) {
    const CacheSequenceCase& sc = c.sequences[i];
    std::string prefix = name + "/s" + std::to_string(i) + "_p" + std::to_string(sc.prefill) + "a" +
                         std::to_string(sc.appended);
    if (sc.device_prefill > 0) prefix += "_dev" + std::to_string(sc.device_prefill) + (sc.device_f32 ? "f32" : "");
    const uint32_t total = sc.prefill + sc.appended;
    const RandomKv kv1 = random_kv(c.kv_heads, total, c.dim, rng());
    RandomKv kv0 = random_kv(c.kv_heads, std::max(sc.device_prefill, 1u), c.dim, rng());
    std::vector<float> f32_keys, f32_values;
    if (sc.device_f32) {
      f32_keys = below_half_precision(kv0.keys, rng());
      f32_values = below_half_precision(kv0.values, rng());
      kv0 = {rounded(f32_keys), rounded(f32_values)};
    }
    const CacheStpInput stp1 = stp_input(settings, sc.prefill, rng());
    const CacheStpInput stp0 = stp_input(settings, sc.device_prefill, rng());
    const uint32_t seq = cache.create_sequence();

    LayerChecker layer1(cache, keys, seq, prefix + "/L1", {1, &kv1, sc.prefill, sc.appended, &stp1}, out);
    const auto k1 = token_slice(kv1.keys, 0, sc.prefill, c.kv_heads, c.dim);
    const auto v1 = token_slice(kv1.values, 0, sc.prefill, c.kv_heads, c.dim);
    if (settings.stp) {
      cache.prefill(seq, 1, k1, v1, sc.prefill, stp1);
    } else {
      cache.prefill(seq, 1, k1, v1, sc.prefill);
    }
    layer1.attention("attention_prefill", rng());

    if (sc.device_prefill > 0) {
      const uint64_t elements = uint64_t(sc.device_prefill) * c.kv_heads * c.dim;
      const uint64_t bytes = (elements * (sc.device_f32 ? 4 : 2) + 3) / 4 * 4;
      rt::Buffer k(ctx, bytes), v(ctx, bytes);
      if (sc.device_f32) {
        k.upload(f32_keys.data(), elements * 4);
        v.upload(f32_values.data(), elements * 4);
      } else {
        k.upload(kv0.keys.data(), elements * 2);
        v.upload(kv0.values.data(), elements * 2);
      }
      const ElementType type = sc.device_f32 ? ElementType::f32 : ElementType::f16;
      if (settings.stp) {
        cache.prefill(seq, 0, k.view(), v.view(), type, sc.device_prefill, stp0);
      } else {
        cache.prefill(seq, 0, k.view(), v.view(), type, sc.device_prefill);
      }
      LayerChecker layer0(cache, keys, seq, prefix + "/L0", {0, &kv0, sc.device_prefill, 0, &stp0}, out);
      layer0.attention("attention_prefill", rng());
      layer0.contents();
    }

    for (uint32_t t = sc.prefill; t < total; ++t) {
      cache.append(seq, 1, token_slice(kv1.keys, t, 1, c.kv_heads, c.dim),
                   token_slice(kv1.values, t, 1, c.kv_heads, c.dim));
    }
    if (sc.appended > 0) layer1.attention("attention_appended", rng());
    layer1.contents();
  }
  return out;
}

}  // namespace vidkv::tools
