#pragma once
// One context length of the bench: every preset (at every sparsity, with per-head policies)
// through vidkv::Cache (prefill of all layers, stats, dequantize and attention on the sampled
// layers against the float64 reference), then decode attention timed in interleaved rounds beside
// the fp16 shader and a buffer copy. Each round cycles through distinct copies of the timing layer
// (their bytes above a GPU's last-level cache), so that no preset is timed out of a cache. The reference is full attention over every token whatever the
// policies: the error a window head causes by dropping tokens is what is measured.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench/progress.hpp"
#include "bench/results.hpp"
#include "bench/run_profile.hpp"
#include "bench/workload.hpp"
#include "vidkv/head_policy.hpp"
#include "vidkv/runtime/context.hpp"

namespace vidkv::bench {

struct MeasurePlan {
  std::vector<std::string> presets;
  uint32_t error_layers = 0;  // 0: all
  uint32_t queries = 4;
  uint32_t runs = 7;
  uint64_t seed = 1;
  // Decode timing: distinct copies of the timing layer per preset, a fixed count or (0) enough to
  // exceed cycle_bytes (0: 256 MiB, 64 MiB on a CPU device), capped by device memory.
  uint32_t decode_layers = 0;
  uint64_t cycle_bytes = 0;
  // Per-head policies (--head-scores): every preset once per sparsity, its settings'
  // head_policies this spec at that sparsity. Empty: plain caches, one run per preset.
  std::optional<HeadPolicySpec> head_policies;
  std::vector<double> sparsities;
  size_t runs_per_preset() const { return head_policies ? sparsities.size() : 1; }
};

// Progress steps measure_size() will take for this workload (for the bar's total).
uint64_t progress_steps(const WorkloadInfo& info, const MeasurePlan& plan);

// A preset the cache refuses becomes a row with error "unsupported: <message>", one that fails
// later a row with "failed: <message>"; neither stops the run. Other errors (no device, a bad
// workload) are thrown.
SizeResults measure_size(const std::shared_ptr<rt::Context>& context, Workload& workload, const MeasurePlan& plan,
                         RunProfile& profile, Progress& progress);

}  // namespace vidkv::bench
