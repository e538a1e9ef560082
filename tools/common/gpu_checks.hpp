#pragma once
// One GPU-vs-reference check of the grouped quantizer, shared by the tests and vidkv-conformance:
// quantize and dequantize (fp16 and fp32 output) on the device with every output poisoned first,
// twice (all 0x00, then all 0xFF), and compare with vidkv::reference bit for bit.
#include <ostream>
#include <string>
#include <vector>

#include "common/check_result.hpp"
#include "vidkv/gpu_quantizer.hpp"

namespace vidkv::tools {

struct GpuCheckCase {
  QuantSpec spec;
  TensorShape shape;
  bool head_major = false;  // htd layout instead of thd
  ElementType input = ElementType::f16;
};

std::string gpu_case_name(const GpuCheckCase& c);
// GoogleTest prints parameters with this (found by argument-dependent lookup).
inline void PrintTo(const GpuCheckCase& c, std::ostream* os) { *os << gpu_case_name(c); }
// The fixed matrix of shapes and specs that conformance runs and the tests instantiate: every bit
// width on both axes where supported, both ternary scales, both layouts, fp16 and fp32 input,
// group counts per row that are odd (scale words shared across rows).
std::vector<GpuCheckCase> gpu_check_matrix();
// Results named "<case>/codes", "/scales", "/mins", "/decoded_f16", "/decoded_f32", "/finite".
std::vector<CheckResult> run_gpu_check(GpuQuantizer& quantizer, const GpuCheckCase& c, uint64_t seed);

}  // namespace vidkv::tools
