#pragma once
// GPU-vs-reference checks of VidKV's keys, trit packing and STP on fresh random inputs, shared by
// the tests and vidkv-conformance (see gpu_checks.hpp for the grouped quantizer's).
//   keys: ranges and channel choices bit-exact; coefficients within fp16 rounding
//     (fp16_tolerance.hpp: VkFFT's fp32 against the reference's double DFT); codes, scales, mins
//     bit-exact when the reference quantizes the GPU's coefficients; decoded keys within fp16
//     rounding and the anomalous channels exactly. Every buffer poisoned with 0x00, then 0xFF.
//   trits: packing bit-exact (poisoned output), decoding from trits bit-exact.
//   stp: scores, selection, codes/scales/mins and decoding bit-exact.
#include <ostream>
#include <string>
#include <vector>

#include "common/check_result.hpp"
#include "vidkv/gpu_keys.hpp"
#include "vidkv/gpu_quantizer.hpp"
#include "vidkv/gpu_stp.hpp"

namespace vidkv::tools {

struct KeyCheckCase {
  KeySpec spec;
  TensorShape shape;
};
std::string key_case_name(const KeyCheckCase& c);
inline void PrintTo(const KeyCheckCase& c, std::ostream* os) { *os << key_case_name(c); }
// nbits 1, 1.25, 1.5, 1.75, 2 with fft half and full; scope layer; an odd number of normal channels.
std::vector<KeyCheckCase> key_check_matrix();
std::vector<CheckResult> run_gpu_key_check(GpuKeyQuantizer& gpu, const KeyCheckCase& c, uint64_t seed);

std::vector<CheckResult> run_gpu_trit_check(GpuQuantizer& gpu, const TensorShape& shape, uint32_t group_size,
                                            TernaryScale scale, uint64_t seed);
// N visual tokens after `first_visual` text tokens, M text tokens, hidden size; the layer's values
// are tokens x heads x dim with tokens = first_visual + visual + trailing.
struct StpCheckCase {
  uint32_t first_visual, visual, trailing, text, hidden;
  TensorShape values;  // tokens must equal first_visual + visual + trailing
};
std::vector<StpCheckCase> stp_check_matrix();
std::vector<CheckResult> run_gpu_stp_check(GpuStp& gpu, const StpCheckCase& c, uint64_t seed);

}  // namespace vidkv::tools
