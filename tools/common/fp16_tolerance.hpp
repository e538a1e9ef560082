#pragma once
// "Within fp16 rounding" for FFT-path results, which the GPU computes in fp32 (VkFFT) and the
// reference in double before both round to half: two halves agree when they differ by at most one
// half ulp of the larger magnitude, or, for values that are near zero relative to their row, by at
// most 1e-5 of the row's largest magnitude (cancellation leaves an fp32 error that is small against
// the row, not against the tiny value), or by at most 1e-6 of the whole tensor's largest magnitude:
// VkFFT transforms rows together (two real rows packed as one complex one, for instance), so a row
// whose inputs are all near zero carries an fp32 error of its batch-mates' size (seen: 2.4e-7
// against 0 in a row whose largest coefficient was 3e-7, beside rows of magnitude ~10).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "vidkv/fp16.hpp"

namespace vidkv::tools {

inline double half_ulp_of(double magnitude) {
  if (magnitude < 6.103515625e-05) return 5.960464477539063e-08;  // subnormal spacing 2^-24
  return std::ldexp(1.0, int(std::floor(std::log2(magnitude))) - 10);
}

struct ToleranceReport {
  size_t mismatches = 0;
  double max_difference = 0;
  std::string first;
};

// a and b: halves in rows of `row` elements.
inline ToleranceReport compare_within_fp16_rounding(const std::vector<uint16_t>& a, const std::vector<uint16_t>& b,
                                                    size_t row) {
  ToleranceReport r;
  if (a.size() != b.size()) {
    r.mismatches = 1;
    r.first = "size " + std::to_string(a.size()) + " vs " + std::to_string(b.size());
    return r;
  }
  double tensor_max = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    tensor_max = std::max({tensor_max, std::fabs(double(fp16::to_float(a[i]))), std::fabs(double(fp16::to_float(b[i])))});
  }
  for (size_t start = 0; start < a.size(); start += row) {
    double row_max = 0;
    for (size_t i = start; i < start + row && i < a.size(); ++i) {
      row_max = std::max({row_max, std::fabs(double(fp16::to_float(a[i]))), std::fabs(double(fp16::to_float(b[i])))});
    }
    for (size_t i = start; i < start + row && i < a.size(); ++i) {
      const double x = fp16::to_float(a[i]), y = fp16::to_float(b[i]);
      const double diff = std::fabs(x - y);
      r.max_difference = std::max(r.max_difference, std::isnan(diff) ? INFINITY : diff);
      const double allowed =
          std::max({half_ulp_of(std::max(std::fabs(x), std::fabs(y))), 1e-5 * row_max, 1e-6 * tensor_max});
      if (!(diff <= allowed)) {
        if (r.mismatches++ == 0) {
          r.first = "element " + std::to_string(i) + ": " + std::to_string(x) + " vs " + std::to_string(y);
        }
      }
    }
  }
  return r;
}

}  // namespace vidkv::tools
