#pragma once
// --json: the device, the workload, what was sampled, one result object per preset and context
// length, the per-kernel table. Keys scripts rely on (README, "The benchmark"): device {name, type,
// driver}, copy_gbps, results[] {preset, tokens, bits_k, bits_v, bytes, fp16_bytes, k_rel_l2,
// v_rel_l2, attn_rel_err, prefill_ms, decode_ms, fp16_decode_ms, speedup_vs_fp16, achieved_gbps}.
// A preset that was not (fully) measured keeps every key, null where nothing was measured, plus
// "error" saying why. With per-head policies (--head-scores) each result also has sparsity,
// policy_heads and policy_bytes {vidkv, full, window}, timing_layer_policies, and the root
// has head_policies {scores, low, high, sink, recent, sparsities}; without them none of these
// keys appear (the JSON is as before).
#include <string>
#include <vector>

#include "bench/options.hpp"
#include "bench/results.hpp"
#include "common/json.hpp"
#include "vidkv/runtime/device_info.hpp"

namespace vidkv::bench {

struct RunSummary {
  rt::DeviceInfo device;
  std::string workload;  // the first size's description
  double wall_s = 0;
  size_t validation_messages = 0;
  uint64_t dropped_kernels = 0;
};

json::Value report_json(const RunSummary& run, const BenchOptions& options, const std::vector<SizeResults>& sizes,
                        const std::vector<KernelTotal>& kernels);

// Writes `text` to `path`; throws vidkv::Error(io_error) naming the path.
void write_text_file(const std::string& path, const std::string& text);

}  // namespace vidkv::bench
