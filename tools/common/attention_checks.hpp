#pragma once
// Decode attention on the device (GpuAttention::fp16_host / vidkv_host) against the float64
// reference (attention_reference.hpp) on fresh random inputs, shared by vidkv-conformance and the
// tests. The VidKV cases quantize whole groups (32, 64 or 128 tokens) with the CPU reference into one or more
// segments (later segments keep the first one's key channels, as the cache does) and keep the
// remaining tokens as the fp16 residual; the reference decodes the segments exactly
// (DecodeRounding::exact). Every output and scratch buffer is poisoned first, with 0x00 and then
// 0xFF. Error measure: per query head max_c |out - ref| / max_c |ref|, the worst head; a check
// passes below 1e-3 (fp32 accumulation against float64; measured errors are around 1e-5).
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "common/check_result.hpp"
#include "vidkv/gpu_attention.hpp"

namespace vidkv::tools {

constexpr double kAttentionTolerance = 1e-3;

// K/V halves [tokens][kv_heads][dim]: keys with outlier channels and awkward groups
// (random_halves with specials), values without.
struct RandomKv {
  std::vector<uint16_t> keys, values;
};
RandomKv random_kv(uint32_t kv_heads, uint32_t tokens, uint32_t dim, uint64_t seed);
// fp32 [q_heads][dim], scaled per query head so that its scores against `keys` have a standard
// deviation of about 2: a softmax that is neither flat nor one-hot.
std::vector<float> realistic_query(const std::vector<uint16_t>& keys, uint32_t tokens, uint32_t kv_heads,
                                   uint32_t q_heads, uint32_t dim, uint64_t seed);
// Per query head max |out - ref| / max |ref|, the worst head; infinity for any non-finite output.
double attention_error(const std::vector<float>& out, const std::vector<double>& ref, uint32_t dim);
// Tokens [from, from + count) of a [tokens][kv_heads][dim] tensor.
std::vector<uint16_t> token_slice(const std::vector<uint16_t>& tensor, uint32_t from, uint32_t count,
                                  uint32_t kv_heads, uint32_t dim);

struct AttentionCheckCase {
  // "fp16" (the baseline shader over fp16 K and V), or VidKV keys: "k1.5" (half spectrum),
  // "k1.5full", "k1.5layer" (channel scope layer), "k2" (every channel 2-bit), "k1" (every channel
  // through the FFT).
  std::string keys;
  ValueFormat values = ValueFormat::ternary_trits;  // ignored for fp16
  uint32_t kv_heads = 2, ratio = 4, dim = 128, tokens = 300;
  uint32_t segments = 1;  // quantized segments the whole groups are cut into
  bool portable = false;  // GpuAttention::set_portable(true): the portable shaders, which GPUs take anyway
  uint32_t group = 32;    // key and value group size (32, 64 or 128)
};
std::string attention_case_name(const AttentionCheckCase& c);
inline void PrintTo(const AttentionCheckCase& c, std::ostream* os) { *os << attention_case_name(c); }
// fp16 and every value format (trits, 2-bit per channel, 2-bit per token) with GQA 1, 4, 7 and
// D 64, 128; token counts 1 to 1000 around the group and split edges; every key variant; layers of
// three segments; a few cases on the portable path forced, so that a device whose default is the
// subgroup-of-8 path (GpuAttention::subgroup8_default) runs both paths' shaders; groups of 64 and
// 128 for every value format on both paths.
std::vector<AttentionCheckCase> attention_check_matrix();
// Results "<case>/output" (the error measure, both poisons) and "<case>/repeatable" (the two
// poisoned runs give bit-identical outputs: nothing reads an unwritten scratch byte).
std::vector<CheckResult> run_attention_check(GpuAttention& gpu, const AttentionCheckCase& c, uint64_t seed);

}  // namespace vidkv::tools
