#include "common/golden_checks_vidkv.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>

#include "vidkv/error.hpp"
#include "vidkv/fp16.hpp"

namespace vidkv::tools {
namespace {

using fp16::to_float;
constexpr double kPi = 3.14159265358979323846;

std::string half_text(uint16_t h) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.9g (0x%04x)", double(to_float(h)), unsigned(h));
  return buf;
}

std::string shape_text(const TensorShape& s) {
  return "1x" + std::to_string(s.heads) + "x" + std::to_string(s.tokens) + "x" + std::to_string(s.dim);
}

// Compares got with expected at the given indices (all when empty): bit-exact, or within fp16
// rounding when tolerant.
CheckResult compare(const std::string& name, const std::string& shape, const Halves& expected, const Halves& got,
                    bool tolerant, const std::vector<size_t>& where = {}) {
  CheckResult r{name, shape, 0.0, false, ""};
  if (expected.size() != got.size()) {
    r.detail = "size " + std::to_string(got.size()) + ", expected " + std::to_string(expected.size());
    r.max_error = INFINITY;
    return r;
  }
  std::vector<size_t> idx = where;
  if (idx.empty())
    for (size_t i = 0; i < expected.size(); ++i) idx.push_back(i);
  double gmax = 0;
  for (size_t i : idx) gmax = std::max(gmax, std::fabs(double(to_float(expected[i]))));
  const double floor = std::ldexp(gmax, -16);
  size_t bad = 0, differ = 0;
  double max_ulps = 0;
  for (size_t i : idx) {
    const double e = to_float(expected[i]), g = to_float(got[i]), d = std::fabs(e - g);
    const bool ok = tolerant ? within_fp16_rounding(got[i], expected[i], floor) : expected[i] == got[i];
    differ += expected[i] != got[i];
    r.max_error = std::max(r.max_error, std::isnan(d) ? INFINITY : d);
    max_ulps = std::max(max_ulps, d / half_ulp(std::max(std::fabs(e), std::fabs(g))));
    if (!ok && bad++ == 0) {
      r.detail = "; first mismatch at index " + std::to_string(i) + ": expected " + half_text(expected[i]) +
                 ", got " + half_text(got[i]);
    }
  }
  r.passed = bad == 0;
  char buf[160];
  std::snprintf(buf, sizeof buf, "%zu of %zu values differ (max %.3g, %.3g ulp; floor %.3g)", differ, idx.size(),
                r.max_error, max_ulps, floor);
  r.detail = (tolerant ? std::string(buf) : std::to_string(idx.size() - differ) + " of " +
                                                std::to_string(idx.size()) + " values bit-exact") +
             (r.passed ? "" : "; " + std::to_string(bad) + " outside" + r.detail);
  return r;
}

CheckResult compare_words(const std::string& name, const std::string& shape, const std::vector<int32_t>& expected,
                          const std::vector<uint32_t>& got) {
  CheckResult r{name, shape, 0.0, false, ""};
  size_t bad = expected.size() == got.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size() && i < got.size(); ++i) {
    if (uint32_t(expected[i]) != got[i] && bad++ == 0) r.detail = "; first mismatch at word " + std::to_string(i);
  }
  r.passed = bad == 0;
  r.max_error = r.passed ? 0 : 1;
  r.detail = r.passed ? std::to_string(got.size()) + " words bit-exact"
                      : std::to_string(bad) + " words differ (" + std::to_string(got.size()) + " vs " +
                            std::to_string(expected.size()) + ")" + r.detail;
  return r;
}

uint32_t param_u32(const json::Value& p, const char* key) {
  try { return uint32_t(p.at(key).as_uint()); } catch (const Error& e) {
    throw Error(ErrorCode::corrupt_data, std::string("golden param ") + key + ": " + e.what());
  }
}

std::vector<uint32_t> indices(const GoldenArray& a) {
  std::vector<uint32_t> out;
  for (int64_t v : a.as_i64()) out.push_back(uint32_t(v));
  return out;
}

// Re of the inverse DFT (1/N sum_f X_f e^{+2 pi i f n / N}) of full interleaved spectra
// [rows][2N], in double, rounded to half: [rows][N].
Halves inverse_dft_full(const Halves& spectra, uint32_t n) {
  const size_t rows = spectra.size() / (2 * n);
  Halves out(rows * n);
  for (size_t r = 0; r < rows; ++r) {
    for (uint32_t i = 0; i < n; ++i) {
      double sum = 0;
      for (uint32_t f = 0; f < n; ++f) {
        const double a = 2.0 * kPi * double((uint64_t(f) * i) % n) / double(n);
        sum += double(to_float(spectra[r * 2 * n + 2 * f])) * std::cos(a) -
               double(to_float(spectra[r * 2 * n + 2 * f + 1])) * std::sin(a);
      }
      out[r * n + i] = fp16::from_float(float(sum / n));
    }
  }
  return out;
}

// Element indices [h][t][c] of a decoded [h][t][dim] tensor at the given channels; gather makes
// the values there a compact [h][t][channels.size()] array.
std::vector<size_t> at_channels(const TensorShape& s, const std::vector<uint32_t>& channels) {
  std::vector<size_t> out;
  for (uint32_t h = 0; h < s.heads; ++h)
    for (uint32_t t = 0; t < s.tokens; ++t)
      for (uint32_t c : channels) out.push_back((size_t(h) * s.tokens + t) * s.dim + c);
  return out;
}
Halves gather(const Halves& x, const std::vector<size_t>& idx) {
  Halves out;
  for (size_t i : idx) out.push_back(x.at(i));
  return out;
}
uint16_t scale_at(const QuantizedTensor& q, uint32_t h, uint32_t t, uint32_t c) {
  return q.scales[(size_t(h) * q.shape.dim + c) * (q.shape.tokens / q.spec.group_size) + t / q.spec.group_size];
}

// The FFT-path checks shared by dynkey (easy channels) and fft1bit (the subset).
struct FftCase {
  std::string prefix, shape;
  TensorShape full;                    // the tensor the channels come from
  KeySpec spec;                        // layer scope, full layout
  std::vector<ChannelSplit> splits;    // per head
  Halves input, golden_coeffs;         // input [h][t][dim]; coefficients [h][t][2N]
  std::vector<size_t> normal_at;       // indices of the normal channels in a decoded tensor
};

void check_original_and_half(const FftCase& f, const KeyImpl& impl, const QuantizedKeys& q,
                             const Halves& original_normal, std::vector<CheckResult>& out) {
  const uint32_t n = uint32_t(f.splits[0].normal.size());
  const TensorLayout layout = TensorLayout::htd(f.full);
  // The original's coefficients c * s (0 for code 0), then its inverse transform.
  const TensorShape cs{f.full.heads, f.full.tokens, 2 * n};
  Halves orig_coeffs(cs.elements());
  for (uint32_t h = 0; h < cs.heads; ++h)
    for (uint32_t t = 0; t < cs.tokens; ++t)
      for (uint32_t s = 0; s < cs.dim; ++s)
        orig_coeffs[(size_t(h) * cs.tokens + t) * cs.dim + s] =
            reference::code_at(q.normal, h, t, s) ? scale_at(q.normal, h, t, s) : uint16_t(0);
  const Halves explained = inverse_dft_full(orig_coeffs, n);
  CheckResult r = compare(f.prefix + "dequant_original_explained", f.shape, original_normal,
                          explained, true);
  r.detail = "original = IDFT of its {0, s} coefficients (section 3.1): " + r.detail;
  out.push_back(r);

  // fft half against full, both from our own coefficients: same decoded keys, half the code bits.
  KeySpec half = f.spec;
  half.fft = FftLayout::half;
  const QuantizedKeys qf = impl.quantize_with(f.spec, f.full, f.input, layout, f.splits,
                                              impl.coefficients(f.spec, f.full, f.input, layout, f.splits));
  const QuantizedKeys qh = impl.quantize_with(half, f.full, f.input, layout, f.splits,
                                              impl.coefficients(half, f.full, f.input, layout, f.splits));
  CheckResult hf = compare(f.prefix + "half_equals_full", f.shape, gather(impl.dequantize(qf, layout), f.normal_at),
                           gather(impl.dequantize(qh, layout), f.normal_at), true);
  const size_t bits_full = qf.normal.codes.size() * 32, bits_half = qh.normal.codes.size() * 32;
  hf.passed = hf.passed && bits_full == 2 * bits_half && bits_half == size_t(n) * f.full.heads * f.full.tokens;
  hf.detail = "normal code bits half " + std::to_string(bits_half) + ", full " + std::to_string(bits_full) +
              ", scales " + std::to_string(qh.normal.scales.size()) + " vs " + std::to_string(qf.normal.scales.size()) +
              "; decoded " + hf.detail;
  out.push_back(hf);
}

}  // namespace

double half_ulp(double x) {
  x = std::fabs(x);
  if (x < 0x1p-14) return 0x1p-24;
  int e;
  std::frexp(x, &e);  // x in [2^(e-1), 2^e)
  return std::ldexp(1.0, e - 11);
}

bool within_fp16_rounding(uint16_t ours, uint16_t golden, double floor) {
  const double a = to_float(ours), b = to_float(golden);
  if (std::isnan(a) || std::isnan(b)) return false;
  return std::fabs(a - b) <= half_ulp(std::max(std::fabs(a), std::fabs(b))) + floor;
}

double rel_l2(const Halves& ref, const Halves& got) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size() && i < got.size(); ++i) {
    const double r = to_float(ref[i]), d = double(to_float(got[i])) - r;
    num += d * d, den += r * r;
  }
  return den > 0 ? std::sqrt(num / den) : 0.0;
}

VidkvCaseKind vidkv_case_kind(const GoldenCase& c) {
  if (c.has("easy_fft_coeffs") && c.has("difficult_idx")) return VidkvCaseKind::dynkey;
  if (c.has("fft_coeffs") && c.has("fft_dequant_corrected")) return VidkvCaseKind::fft1bit;
  if (c.has("low_tokens") && c.has("rel_code")) return VidkvCaseKind::stp;
  return VidkvCaseKind::other;
}

std::vector<CheckResult> run_dynkey_golden_case(const GoldenCase& c, const KeyImpl& impl, const std::string& impl_name) {
  const json::Value& p = c.params();
  FftCase f;
  f.prefix = impl_name + "/" + c.name() + "/";
  f.full = {param_u32(p, "H"), param_u32(p, "T"), param_u32(p, "D")};
  f.shape = shape_text(f.full);
  f.spec = {p.at("nbits_key").as_number(), param_u32(p, "group_size"), ChannelScope::layer, FftLayout::full};
  f.input = c.array("input").as_u16();
  f.golden_coeffs = c.array("easy_fft_coeffs").as_u16();
  const ChannelSplit golden_split{indices(c.array("difficult_idx")), indices(c.array("easy_idx"))};
  f.splits.assign(f.full.heads, golden_split);
  f.normal_at = at_channels(f.full, golden_split.normal);
  const TensorLayout layout = TensorLayout::htd(f.full);
  std::vector<CheckResult> out;

  const Halves ranges = impl.ranges(f.full, f.input, layout, ChannelScope::layer);
  out.push_back(compare(f.prefix + "ranges", "128", c.array("channel_range").as_u16(), ranges, false));
  const auto chosen = impl.select(ranges, f.full.dim, f.full.heads, ChannelScope::layer,
                                  anomalous_channel_count(f.spec, f.full.dim));
  CheckResult sel{f.prefix + "selection", f.shape, 0.0, true, ""};
  for (const ChannelSplit& s : chosen) {
    sel.passed = sel.passed && s.anomalous == golden_split.anomalous && s.normal == golden_split.normal;
  }
  sel.passed = sel.passed && chosen.size() == f.full.heads;
  sel.max_error = sel.passed ? 0 : 1;
  sel.detail = std::to_string(golden_split.anomalous.size()) + " anomalous channels per head " +
               (sel.passed ? "equal difficult_idx, normal equal easy_idx" : "differ from the golden ones");
  out.push_back(sel);

  const QuantizedKeys q = impl.quantize_with(f.spec, f.full, f.input, layout, f.splits, f.golden_coeffs);
  out.push_back(compare_words(f.prefix + "normal_codes", f.shape, c.array("easy_code").as_i32(), q.normal.codes));
  out.push_back(compare(f.prefix + "normal_scales", f.shape, c.array("easy_scale").as_u16(), q.normal.scales, false));
  out.push_back(compare(f.prefix + "normal_mins", f.shape, c.array("easy_mn").as_u16(), q.normal.mins, false));
  out.push_back(compare_words(f.prefix + "anomalous_codes", f.shape, c.array("difficult_code").as_i32(), q.anomalous.codes));
  out.push_back(compare(f.prefix + "anomalous_scales", f.shape, c.array("difficult_scale").as_u16(), q.anomalous.scales, false));
  out.push_back(compare(f.prefix + "anomalous_mins", f.shape, c.array("difficult_mn").as_u16(), q.anomalous.mins, false));

  const Halves ours = impl.dequantize(q, layout), corrected = c.array("dequant_corrected").as_u16();
  const std::vector<size_t> anomalous_at = at_channels(f.full, golden_split.anomalous);
  out.push_back(compare(f.prefix + "dequant_corrected_anomalous", f.shape, corrected, ours, false, anomalous_at));
  out.push_back(compare(f.prefix + "dequant_corrected_normal", f.shape, corrected, ours, true, f.normal_at));
  const Halves original = c.array("dequant_original").as_u16();
  out.push_back(compare(f.prefix + "dequant_original_anomalous_equal", f.shape, original, ours, false, anomalous_at));

  out.push_back(compare(f.prefix + "coefficients", f.shape, f.golden_coeffs,
                        impl.coefficients(f.spec, f.full, f.input, layout, f.splits), true));
  check_original_and_half(f, impl, q, gather(original, f.normal_at), out);
  return out;
}

std::vector<CheckResult> run_fft1bit_golden_case(const GoldenCase& c, const KeyImpl& impl,
                                                 const std::string& impl_name) {
  const json::Value& p = c.params();
  FftCase f;
  f.prefix = impl_name + "/" + c.name() + "/";
  const uint32_t heads = param_u32(p, "H"), tokens = param_u32(p, "T"), sub = param_u32(p, "D_subset");
  const bool subset = !p.at("channel_indices").is_null();
  f.input = c.array(subset ? "input_full" : "input").as_u16();
  const std::vector<uint32_t> normal = subset ? indices(c.array("channel_idx")) : std::vector<uint32_t>();
  f.full = {heads, tokens, subset ? uint32_t(f.input.size() / (size_t(heads) * tokens)) : sub};
  f.shape = shape_text(f.full);
  ChannelSplit split;
  for (uint32_t d = 0; d < f.full.dim; ++d) {
    const bool is_normal = !subset || std::find(normal.begin(), normal.end(), d) != normal.end();
    (is_normal ? split.normal : split.anomalous).push_back(d);
  }
  f.spec = {1.0 + double(split.anomalous.size()) / f.full.dim, param_u32(p, "group_size"), ChannelScope::layer,
            FftLayout::full};
  f.splits.assign(heads, split);
  f.normal_at = at_channels(f.full, split.normal);
  f.golden_coeffs = c.array("fft_coeffs").as_u16();
  const TensorLayout layout = TensorLayout::htd(f.full);
  std::vector<CheckResult> out;

  out.push_back(compare(f.prefix + "coefficients", f.shape, f.golden_coeffs,
                        impl.coefficients(f.spec, f.full, f.input, layout, f.splits), true));
  const QuantizedKeys q = impl.quantize_with(f.spec, f.full, f.input, layout, f.splits, f.golden_coeffs);
  const std::vector<int32_t> code = c.array("code").as_i32();
  out.push_back(compare_words(f.prefix + "codes", f.shape, code, q.normal.codes));
  out.push_back(compare(f.prefix + "scales", f.shape, c.array("scale").as_u16(), q.normal.scales, false));
  out.push_back(compare(f.prefix + "mins", f.shape, c.array("mn").as_u16(), q.normal.mins, false));
  const TensorShape cs{heads, tokens, uint32_t(2 * split.normal.size())};
  const Halves coeff_ours = reference::dequantize(q.normal, TensorLayout::htd(cs));
  out.push_back(compare(f.prefix + "fft_dequant_corrected", f.shape, c.array("fft_dequant_corrected").as_u16(),
                        coeff_ours, false));
  out.push_back(compare(f.prefix + "dequant_corrected", f.shape, c.array("dequant_corrected").as_u16(),
                        gather(impl.dequantize(q, layout), f.normal_at), true));

  // Section 3.1 on the coefficients: the original holds c * s, so it differs from ours exactly
  // where the code is 0 and the scale is not.
  const Halves fo = c.array("fft_dequant_original").as_u16();
  CheckResult r{f.prefix + "fft_dequant_original_differs", f.shape, 0.0, false, ""};
  size_t predicted = 0, unexpected = 0;
  for (uint32_t h = 0; h < heads; ++h)
    for (uint32_t t = 0; t < tokens; ++t)
      for (uint32_t s = 0; s < cs.dim; ++s) {
        const size_t i = (size_t(h) * tokens + t) * cs.dim + s;
        const int32_t k = reference::code_at(q.normal, h, t, s);
        const uint16_t sc = scale_at(q.normal, h, t, s);
        const bool wrong = k == 0 && to_float(sc) != 0.0f;
        predicted += wrong;
        const bool ok = to_float(fo.at(i)) == (k ? to_float(sc) : 0.0f) && (to_float(fo[i]) != to_float(coeff_ours[i])) == wrong;
        unexpected += !ok;
        r.max_error = std::max(r.max_error, double(std::fabs(to_float(fo[i]) - to_float(coeff_ours[i]))));
      }
  r.passed = unexpected == 0 && predicted > 0;
  r.detail = std::to_string(predicted) + " of " + std::to_string(fo.size()) + " coefficients predicted to differ, " +
             std::to_string(unexpected) + " unexpected";
  out.push_back(r);
  check_original_and_half(f, impl, q, c.array("dequant_original").as_u16(), out);  // subset only
  return out;
}

std::vector<CheckResult> run_stp_golden_case(const GoldenCase& c, const ValueImpl& impl, const std::string& impl_name) {
  const json::Value& p = c.params();
  const std::string prefix = impl_name + "/" + c.name() + "/";
  const TensorShape shape{param_u32(p, "H"), param_u32(p, "T"), param_u32(p, "D")};
  const std::string st = shape_text(shape);
  const uint32_t g = param_u32(p, "group_size");
  const TokenSplit split = reference::split_from_list(indices(c.array("low_tokens")), shape.tokens, g);
  std::vector<CheckResult> out;
  const bool split_ok = split.other_tokens == indices(c.array("rel_tokens"));
  out.push_back({prefix + "split", st, split_ok ? 0.0 : 1.0, split_ok,
                 std::to_string(split.protected_tokens.size()) + " protected, " +
                     std::to_string(split.other_tokens.size()) + " others (rel_tokens)"});
  const Halves input = c.array("input").as_u16();
  const TensorLayout layout = TensorLayout::htd(shape);
  const StpQuantizedValues q = impl.quantize(split, g, TernaryScale::mean_abs, shape, input, layout);
  out.push_back(compare_words(prefix + "high_codes", st, c.array("low_code").as_i32(), q.high.codes));
  out.push_back(compare(prefix + "high_scales", st, c.array("low_scale").as_u16(), q.high.scales, false));
  out.push_back(compare(prefix + "high_mins", st, c.array("low_mn").as_u16(), q.high.mins, false));
  out.push_back(compare_words(prefix + "low_codes", st, c.array("rel_code").as_i32(), q.low.codes));
  out.push_back(compare(prefix + "low_scales", st, c.array("rel_scale").as_u16(), q.low.scales, false));
  out.push_back(compare(prefix + "low_mins", st, c.array("rel_mn").as_u16(), q.low.mins, false));
  const Halves ours = impl.dequantize(q, layout);
  out.push_back(compare(prefix + "dequant_corrected", st, c.array("dequant_corrected").as_u16(), ours, false));

  // Section 3.2: on the 1.58-bit tokens the original holds the unscaled trit, so it differs from
  // ours exactly where trit * s does not round to the trit; protected tokens are equal.
  const Halves orig = c.array("dequant_original").as_u16();
  CheckResult r{prefix + "dequant_original_differs", st, 0.0, false, ""};
  size_t predicted = 0, unexpected = 0;
  for (uint32_t h = 0; h < shape.heads; ++h)
    for (uint32_t j = 0; j < split.other_tokens.size(); ++j)
      for (uint32_t d = 0; d < shape.dim; ++d) {
        const size_t i = (size_t(h) * shape.tokens + split.other_tokens[j]) * shape.dim + d;
        const int32_t k = reference::code_at(q.low, h, j, d);
        const float s = to_float(scale_at(q.low, h, j, d));
        const bool wrong = to_float(fp16::from_float(float(k) * s)) != float(k);
        predicted += wrong;
        unexpected += !(to_float(orig[i]) == float(k) && (to_float(orig[i]) != to_float(ours[i])) == wrong);
        r.max_error = std::max(r.max_error, double(std::fabs(to_float(orig[i]) - to_float(ours[i]))));
      }
  for (uint32_t h = 0; h < shape.heads; ++h)
    for (uint32_t t : split.protected_tokens)
      for (uint32_t d = 0; d < shape.dim; ++d) unexpected += orig[(size_t(h) * shape.tokens + t) * shape.dim + d] != ours[(size_t(h) * shape.tokens + t) * shape.dim + d];
  r.passed = unexpected == 0 && predicted > 0;
  r.detail = std::to_string(predicted) + " of " + std::to_string(orig.size()) + " values predicted to differ, " +
             std::to_string(unexpected) + " unexpected (protected tokens equal)";
  out.push_back(r);
  return out;
}

std::vector<CheckResult> run_vidkv_golden_case(const GoldenCase& c, const KeyImpl& keys, const ValueImpl& values,
                                               const std::string& impl_name) {
  try {
    switch (vidkv_case_kind(c)) {
      case VidkvCaseKind::dynkey: return run_dynkey_golden_case(c, keys, impl_name);
      case VidkvCaseKind::fft1bit: return run_fft1bit_golden_case(c, keys, impl_name);
      case VidkvCaseKind::stp: return run_stp_golden_case(c, values, impl_name);
      case VidkvCaseKind::other: return {};
    }
  } catch (const Error& e) {
    if (e.code() == ErrorCode::io_error || e.code() == ErrorCode::corrupt_data) throw;  // golden files
    return {CheckResult{impl_name + "/" + c.name() + "/run", "", INFINITY, false, e.what()}};
  } catch (const std::exception& e) {
    return {CheckResult{impl_name + "/" + c.name() + "/run", "", INFINITY, false, e.what()}};
  }
  return {};
}

}  // namespace vidkv::tools
