#pragma once
// The cache runtime end to end (vidkv::Cache: prefill from host vectors and from fp16 and fp32
// device buffers, appends across a residual flush, attention, dequantize) against the CPU reference on fresh
// random inputs, shared by vidkv-conformance and the tests. Per layer:
//   layout      segment count and token counts as the flush rule predicts
//   residual    the fp16 residual holds exactly the input's newest tokens
//   channels    key channel lists: the reference's choice on the first segment, kept afterwards
//   coefficients  the key quantizer's VkFFT coefficients within fp16 rounding of the reference's
//   key_codes   codes, scales, mins of both key parts bit-exact with the reference quantizing
//               those coefficients (the cache's key path is the building block's)
//   value_codes values (codes, scales, mins or packed trits) bit-exact with the reference; with
//               STP the prefill's two parts (2-bit protected tokens, trits for the others)
//   stp_split   (STP) the protected tokens are the reference's selection from the prefill's scores
//   dequantize  values bit-exact, keys within fp16 rounding (double against fp32 inverse FFT),
//               residual tokens unchanged
//   attention   within 1e-3 (attention_checks.hpp's measure) of the float64 reference over the
//               cache's own contents decoded exactly, after the prefill and again after the appends
// The cache allocates its device buffers itself, so unlike the building blocks these are not
// poisoned; the building blocks the cache records are poisoned in their own checks.
#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "common/check_result.hpp"
#include "vidkv/gpu_keys.hpp"
#include "vidkv/runtime/context.hpp"

namespace vidkv::tools {

// One sequence of a case: layer 1 gets `prefill` tokens from host vectors, then `appended` tokens
// one at a time; layer 0 gets `device_prefill` tokens from device buffers (0: left empty), fp16 or
// fp32 (fp32 values with bits below fp16 precision: the cache rounds them on the device, and the
// reference input is their round-to-nearest-even halves).
struct CacheSequenceCase {
  uint32_t prefill = 1000;
  uint32_t appended = 0;
  uint32_t device_prefill = 0;
  bool device_f32 = false;
};
// One Cache (two layers) holding several sequences at once.
struct CacheCheckCase {
  std::string preset;  // a preset name (presets.hpp)
  uint32_t kv_heads = 2, ratio = 4, dim = 128;
  std::vector<CacheSequenceCase> sequences;
  uint32_t group = 32;  // the preset's group_size (and its keys'), 32, 64 or 128
};
std::string cache_case_name(const CacheCheckCase& c);
inline void PrintTo(const CacheCheckCase& c, std::ostream* os) { *os << cache_case_name(c); }
// Every preset (fp16, 2bit, kivi, k1.5-v2, k1.5-v1.58, k1.5-v1.58-stp) as GQA 4 with D 128 (a
// long prefill then a flush, a prefill shorter than a group whose first flush chooses the
// channels -- not with STP, whose protected tokens come from the prefill --, a short one); kivi
// and k1.5-v1.58 also as GQA 7 with D 64; k1.5-v1.58, kivi and k1.5-v1.58-stp with groups of 64
// and 128.
std::vector<CacheCheckCase> cache_check_matrix();
// What one case gave: its checks, and the checks it could not run with the reason (attention
// over STP segments while the cache rejects it as not available yet).
struct CacheCheckOutcome {
  std::vector<CheckResult> checks;
  std::vector<std::pair<std::string, std::string>> skipped;
};
// The named checks above, "<case>/s<sequence>_p<prefill>a<appended>[_dev<n>[f32]]/L<layer>/<check>".
// `keys` (on the same context) gives the VkFFT coefficients the key codes are checked against;
// one serves every case, so its FFT plans are built once.
CacheCheckOutcome run_cache_check(const std::shared_ptr<rt::Context>& ctx, GpuKeyQuantizer& keys,
                                  const CacheCheckCase& c, uint64_t seed);

}  // namespace vidkv::tools
