#pragma once
// Command line of vidkv-bench.
#include <cstdint>
#include <string>
#include <vector>

namespace vidkv::bench {

struct BenchOptions {
  // Workload: the built-in video KV generator, or a dump directory (--kv).
  std::string kv_dir;                     // empty: generator
  std::string model = "llava-ov-7b";      // generator geometry and RoPE flavour
  std::vector<uint32_t> frames{32};       // sweep over frames (generator), or
  std::vector<uint32_t> tokens;           // sweep over total context lengths (visual + text)
  uint32_t tokens_per_frame = 196;
  uint32_t text_tokens = 32;
  double rope_base = 0.0;                 // 0: the model's (1e6 for both models)
  double frame_correlation = 0.9;         // AR(1) coefficient across frames per patch
  uint64_t seed = 1;
  uint32_t layers = 0;                    // 0: all (28 for the generator, every file of a dump)
  uint32_t q_heads = 0;                   // 0: the model's (28), or 7 per KV head for a dump
  int64_t first_visual = -1;              // dump only: where the video starts (default 0)
  int64_t visual_tokens = -1;             // dump only: how many visual tokens (default: all but --text-tokens)

  std::vector<std::string> presets{"fp16", "2bit", "kivi", "k1.5-v2", "k1.5-v1.58", "k1.5-v1.58-stp"};
  // Error sampling: layers whose K/V reconstruction and attention error are measured (0: all),
  // spread evenly over the depth; random queries per sampled layer. Four layers keep the default
  // run (the main job) within its time on a 2-core CPU device; memory always counts every layer.
  uint32_t error_layers = 4;
  uint32_t queries = 4;
  uint32_t runs = 7;                      // timed decode rounds (after one warm-up round)
  // Decode timing cycles through distinct copies of the timing layer so that no preset is timed
  // out of a GPU's last-level cache: a fixed count, or enough copies to exceed a byte bound
  // (0: 256 MiB, 64 MiB on a CPU device).
  uint32_t decode_layers = 0;
  uint64_t cycle_bytes = 0;
  // Batched decode (bench/batch_decode.hpp): batch sizes; empty: the usual measurement.
  std::vector<uint32_t> sequences;

  // Per-head cache policies (RLKV, vidkv/head_policy.hpp): with head scores every preset is
  // measured at each sparsity; without them the bench measures plain caches, as before.
  std::string head_scores;                // a CSV/JSON file, "synthetic", or empty: no policies
  std::vector<double> sparsity;           // each in [0, 1); {0} when --head-scores comes alone
  std::string low_policy = "window";      // heads below the sparsity quantile: window or vidkv
  std::string high_policy = "full";       // the others: full or vidkv
  uint32_t window_sink = 16, window_recent = 64;
  bool head_policies() const { return !head_scores.empty(); }

  std::string json_path, trace_path, plot_path;
  bool progress = true;                   // only drawn when stderr is a terminal
  bool help = false, version = false;
};

// Throws vidkv::Error(invalid_argument) naming the bad option or value.
BenchOptions parse_options(int argc, const char* const* argv);
std::string usage_text();

}  // namespace vidkv::bench
