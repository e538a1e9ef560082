#pragma once
// What the bench measures, per preset and context length, and for the whole run.
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "bench/run_profile.hpp"
#include "bench/workload.hpp"
#include "vidkv/head_policy.hpp"

namespace vidkv::bench {

// How far a preset's measurement got: a preset the cache takes only in part (say, prefill but not
// yet attention) still reports what it could.
enum class Stage { none, stored, reconstructed, attended, timed };

struct PresetResult {
  std::string preset;       // as asked (a name or a configuration string)
  std::string settings;     // describe(settings): what it stores
  uint32_t tokens = 0, frames = 0;
  Stage done = Stage::none;  // the fields below up to this stage hold measurements
  std::string error;        // why it stopped there ("unsupported: ..." or "failed: ..."), or empty
  bool reached(Stage s) const { return done >= s; }

  // Per-head policies (--head-scores; none otherwise). Stage stored: per policy, indexed by
  // HeadPolicy (vidkv, full, window), its (layer, KV head) pairs and bytes over all layers
  // (Cache::stats().policies). The decode timing layer's policy per KV head.
  std::optional<double> sparsity;
  uint32_t policy_heads[3] = {};
  uint64_t policy_bytes[3] = {};
  std::vector<HeadPolicy> timing_policies;
  // "k1.5-v1.58", or "k1.5-v1.58 s=0.5" with per-head policies (table rows, plot lines).
  std::string label() const {
    if (!sparsity) return preset;
    char buf[32];
    std::snprintf(buf, sizeof buf, " s=%g", *sparsity);
    return preset + buf;
  }
  // K/V bits are those of the preset's (vidkv) heads: none to measure when no head takes it.
  bool has_bits() const { return !sparsity || policy_heads[size_t(HeadPolicy::vidkv)] > 0; }

  // Stage stored. Storage of all layers (Cache::stats after prefill); bits over the quantized store only
  // (DESIGN section 4), bytes including the fp16 residual and channel maps, and the full and window
  // heads' fp16 stores with per-head policies.
  double bits_k = 0, bits_v = 0, bits_total = 0;
  uint64_t bytes = 0, fp16_bytes = 0, residual_bytes = 0;
  // Stages reconstructed (K, V) and attended (attention). Errors over the sampled layers:
  // relative L2 of Cache::dequantize against the input, and of
  // Cache::attention against a float64 reference over the unquantized input (all query heads and
  // queries together); the worst single query as well.
  double k_rel_l2 = 0, v_rel_l2 = 0, attn_rel_err = 0, attn_rel_err_max = 0;
  // Stage stored. Prefill of all layers: wall time of the cache calls (uploads included) and GPU
  // kernel time.
  double prefill_ms = 0, prefill_gpu_ms = 0;
  // Stage timed. Decode attention per layer step (GPU span of the attention kernels over the
  // cycled layer copies / their count, median of the runs).
  double decode_ms = 0, fp16_decode_ms = 0, speedup_vs_fp16 = 0;
  uint64_t decode_bytes = 0;  // packed + residual bytes of one layer, read per step
  uint32_t decode_layers = 0;        // distinct copies of the timing layer each round cycles through
  uint64_t decode_cycled_bytes = 0;  // decode_bytes x decode_layers
  double achieved_gbps = 0;   // decode_bytes / decode_ms
  double copy_gbps = 0;       // the copy bandwidth measured in the same rounds
};

struct SizeResults {
  WorkloadInfo workload;
  std::vector<uint32_t> error_layers;
  uint32_t timing_layer = 0;
  uint64_t cycle_bytes = 0;  // decode: each preset's layer copies exceed this many bytes (0: --decode-layers fixed them)
  bool cycle_capped = false; // fewer copies than that: device memory
  double copy_gbps = 0, copy_ms = 0;
  uint64_t copy_bytes = 0;
  std::vector<PresetResult> results;
};

}  // namespace vidkv::bench
