#pragma once
// Checks of a quantizer implementation (the CPU reference or a GPU one) against the golden
// vectors of the authors' quantizer, DESIGN section 7: bit-exact where the original is right,
// and differing exactly where section 3 says it is wrong.
#include <functional>
#include <string>
#include <vector>

#include "common/check_result.hpp"
#include "common/golden.hpp"
#include "vidkv/reference.hpp"

namespace vidkv::tools {

using QuantizeFn = std::function<QuantizedTensor(const QuantSpec&, const TensorShape&,
                                                 const std::vector<uint16_t>& input_fp16,
                                                 const TensorLayout&)>;
using DequantizeFn =
    std::function<std::vector<uint16_t>(const QuantizedTensor&, const TensorLayout&)>;

// True for the plain per-channel cases (perchan_*, q1bit_*, q1p58bit_*): params with "bits" in
// {1, 1.58, 2, 4, 8}, "axis" -1 and "D", and the arrays input, code, scale, mn, dequant_original,
// dequant_corrected; FFT, dynamic-key and STP cases are not.
bool golden_case_is_per_channel(const GoldenCase& c);

// Quantizes the case's input with spec {bits, group_size, axis channel, ternary mean_abs} on
// shape H x T x D (B must be 1) in the htd layout, then reports, each as its own result named
// "<impl>/<case>/<what>":
//   codes, scales, mins        bit-exact against code.bin, scale.bin, mn.bin (mins of 1 and 1.58
//                              bit are the original's 0 and -1); codes_unpacked when present;
//   dequant_corrected          our decoding bit-exact against the paper's formulas;
//   dequant_original_differs   1 and 1.58 bit: our decoding differs from the original's exactly
//                              where DESIGN section 3 says the original is wrong, and there the
//                              original holds its faulty value (0, resp. code - 1);
//   dequant_original_equal     2, 4, 8 bit: the original's decoding equals ours bit for bit.
// An exception from quantize or dequantize becomes one failed "<impl>/<case>/run" result; errors
// reading the golden files propagate (Error io_error / corrupt_data).
std::vector<CheckResult> run_per_channel_golden_case(const GoldenCase& c,
                                                     const QuantizeFn& quantize,
                                                     const DequantizeFn& dequantize,
                                                     const std::string& impl_name);

// The QuantSpec a per-channel case was made with (throws Error(corrupt_data) on bad params).
QuantSpec golden_case_spec(const GoldenCase& c);

}  // namespace vidkv::tools
