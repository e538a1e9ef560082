#pragma once
// One context length of the bench: every preset through vidkv::Cache (prefill of all layers,
// stats, dequantize and attention on the sampled layers against the float64 reference), then
// decode attention timed in interleaved rounds beside the fp16 shader and a buffer copy.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench/progress.hpp"
#include "bench/results.hpp"
#include "bench/run_profile.hpp"
#include "bench/workload.hpp"
#include "vidkv/runtime/context.hpp"

namespace vidkv::bench {

struct MeasurePlan {
  std::vector<std::string> presets;
  uint32_t error_layers = 0;  // 0: all
  uint32_t queries = 4;
  uint32_t runs = 7;
  uint64_t seed = 1;
};

// Progress steps measure_size() will take for this workload (for the bar's total).
uint64_t progress_steps(const WorkloadInfo& info, const MeasurePlan& plan);

// A preset the cache refuses becomes a row with error "unsupported: <message>", one that fails
// later a row with "failed: <message>"; neither stops the run. Other errors (no device, a bad
// workload) are thrown.
SizeResults measure_size(const std::shared_ptr<rt::Context>& context, Workload& workload, const MeasurePlan& plan,
                         RunProfile& profile, Progress& progress);

}  // namespace vidkv::bench
