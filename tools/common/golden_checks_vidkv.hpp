#pragma once
// Checks of VidKV's own paths (mixed-precision FFT keys, STP values) against the golden vectors
// of the authors' quantizer: the dynkey_*, fft1bit_* and stp_* cases. As in golden_checks.hpp the
// implementation under test (the CPU reference, or a GPU one) comes in as std::functions, and
// every result is named "<impl>/<case>/<what>".
//
// "Within fp16 rounding" (coefficients and inverse transforms, which the golden computed in
// complex64 and we in double or fp32): |ours - golden| <= ulp16(max(|ours|, |golden|)) + floor,
// where ulp16(x) is the spacing of halves at |x| (2^-24 below 2^-14) and floor = 2^-16 *
// max|golden| over the compared array. Two roundings to half of the same real number differ by at
// most one ulp at the larger magnitude; the floor covers the fp32 computation error of the golden
// (about log2(N) * 2^-24 relative to the largest value, far below 2^-16), which only shows for
// results near zero, where the ulp is tiny. Codes, scales and mins are compared bit for bit.
#include <functional>
#include <string>
#include <vector>

#include "common/check_result.hpp"
#include "common/golden.hpp"
#include "vidkv/reference.hpp"
#include "vidkv/stp.hpp"
#include "vidkv/vidkv_keys.hpp"

namespace vidkv::tools {

using Halves = std::vector<uint16_t>;

struct KeyImpl {
  // fp16 channel ranges [units][dim] (reference::channel_ranges).
  std::function<Halves(const TensorShape&, const Halves& input, const TensorLayout&, ChannelScope)> ranges;
  // Anomalous / normal channels per head from the ranges (reference::select_channels).
  std::function<std::vector<ChannelSplit>(const Halves& ranges, uint32_t dim, uint32_t heads, ChannelScope,
                                          uint32_t k)>
      select;
  // fp16 coefficient streams [heads][tokens][streams] (reference::key_coefficients).
  std::function<Halves(const KeySpec&, const TensorShape&, const Halves& input, const TensorLayout&,
                       const std::vector<ChannelSplit>&)>
      coefficients;
  // Quantizes given coefficients with a given split (reference::quantize_keys_with).
  std::function<QuantizedKeys(const KeySpec&, const TensorShape&, const Halves& input, const TensorLayout&,
                              const std::vector<ChannelSplit>&, const Halves& coefficients)>
      quantize_with;
  // Decoded keys at layout positions (reference::dequantize_keys).
  std::function<Halves(const QuantizedKeys&, const TensorLayout&)> dequantize;
};

struct ValueImpl {
  // reference::quantize_values_stp
  std::function<StpQuantizedValues(const TokenSplit&, uint32_t group_size, TernaryScale, const TensorShape&,
                                   const Halves& input, const TensorLayout&)>
      quantize;
  // reference::dequantize_values_stp
  std::function<Halves(const StpQuantizedValues&, const TensorLayout&)> dequantize;
};

// The CPU reference as an implementation under test.
inline KeyImpl reference_key_impl() {
  KeyImpl k;
  k.ranges = [](const TensorShape& s, const Halves& x, const TensorLayout& l, ChannelScope sc) {
    return reference::channel_ranges(s, x.data(), l, sc);
  };
  k.select = reference::select_channels;
  k.coefficients = [](const KeySpec& sp, const TensorShape& s, const Halves& x, const TensorLayout& l,
                      const std::vector<ChannelSplit>& splits) {
    return reference::key_coefficients(sp, s, x.data(), l, splits);
  };
  k.quantize_with = [](const KeySpec& sp, const TensorShape& s, const Halves& x, const TensorLayout& l,
                       const std::vector<ChannelSplit>& splits, const Halves& c) {
    return reference::quantize_keys_with(sp, s, x.data(), l, splits, c);
  };
  k.dequantize = reference::dequantize_keys;
  return k;
}

inline ValueImpl reference_value_impl() {
  ValueImpl v;
  v.quantize = [](const TokenSplit& sp, uint32_t g, TernaryScale ts, const TensorShape& s, const Halves& x,
                  const TensorLayout& l) { return reference::quantize_values_stp(sp, g, ts, s, x.data(), l); };
  v.dequantize = reference::dequantize_values_stp;
  return v;
}


enum class VidkvCaseKind { other, dynkey, fft1bit, stp };
// By the arrays the case holds: easy_fft_coeffs + difficult_idx (dynkey), fft_coeffs (fft1bit),
// low_tokens + rel_code (stp).
VidkvCaseKind vidkv_case_kind(const GoldenCase& c);

// The tolerance described above, for one pair.
double half_ulp(double x);
bool within_fp16_rounding(uint16_t ours, uint16_t golden, double floor);
// ||got - ref|| / ||ref|| over all elements, in double.
double rel_l2(const Halves& ref, const Halves& got);

// dynkey_*: with channel_scope layer and fft full (the original's), results
//   ranges, selection                      bit-exact / equal to channel_range, difficult/easy_idx;
//   normal_codes/scales/mins               quantizing the stored easy_fft_coeffs, bit-exact;
//   anomalous_codes/scales/mins            2-bit part, bit-exact;
//   dequant_corrected_anomalous            bit-exact; dequant_corrected_normal within fp16 rounding;
//   dequant_original_explained             the original equals ours on the 2-bit channels and the
//                                          inverse DFT of its {0, s} coefficients on the others;
//   coefficients                           ours from the input, within fp16 rounding;
//   half_equals_full                       fft half decodes like full with half the code bits.
std::vector<CheckResult> run_dynkey_golden_case(const GoldenCase& c, const KeyImpl& impl, const std::string& impl_name);
// fft1bit_*: the FFT path on the case's channel subset (all channels when channel_indices is null):
//   coefficients, codes/scales/mins, fft_dequant_corrected (exact), dequant_corrected (within
//   rounding), fft_dequant_original_differs (exact, section 3.1), dequant_original_explained,
//   half_equals_full.
std::vector<CheckResult> run_fft1bit_golden_case(const GoldenCase& c, const KeyImpl& impl,
                                                 const std::string& impl_name);
// stp_*: split_from_list(low_tokens): split, high_codes/scales/mins (2-bit), low_codes/scales/mins
//   (1.58-bit mean_abs), dequant_corrected (exact), dequant_original_differs (section 3.2).
std::vector<CheckResult> run_stp_golden_case(const GoldenCase& c, const ValueImpl& impl, const std::string& impl_name);
// Dispatches on vidkv_case_kind; an empty list for other cases. An exception from the
// implementation becomes one failed "<impl>/<case>/run" result.
std::vector<CheckResult> run_vidkv_golden_case(const GoldenCase& c, const KeyImpl& keys, const ValueImpl& values,
                                               const std::string& impl_name);

}  // namespace vidkv::tools
