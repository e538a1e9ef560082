#pragma once
// --head-scores: the bench's per-head cache policies (RLKV, vidkv/head_policy.hpp). Scores come
// from a file (vidkv::read_head_scores) or, for demos without one, are made up ("synthetic");
// each sparsity then gives the cache a HeadPolicySpec. Header-only: small, and used by main (the
// checks before any device work) and measure (the caches).
#include <cstdint>
#include <string>
#include <vector>

#include "bench/options.hpp"
#include "bench/random.hpp"
#include "vidkv/head_policy.hpp"

namespace vidkv::bench {

// One score per (layer, KV head), uniform in [0, 1), a function of the seed only: the same seed
// gives the same assignment on every platform (the bench's own Rng, not <random>).
inline std::vector<HeadScore> synthetic_head_scores(uint32_t layers, uint32_t kv_heads, uint64_t seed) {
  Rng rng(seed, {0x4eadu});
  std::vector<HeadScore> scores;
  scores.reserve(size_t(layers) * kv_heads);
  for (uint32_t l = 0; l < layers; ++l)
    for (uint32_t h = 0; h < kv_heads; ++h) scores.push_back({l, h, rng.uniform()});
  return scores;
}

// The options' policies for a workload of this geometry, sparsity 0 (each run sets its own). The
// scores are checked against the geometry at every sparsity asked for, so that a file made for
// another model fails before minutes of work; throws vidkv::Error naming the file and the problem.
inline HeadPolicySpec head_policy_spec(const BenchOptions& o, uint32_t layers, uint32_t kv_heads) {
  HeadPolicySpec spec;
  if (o.head_scores == "synthetic") {
    spec.scores = synthetic_head_scores(layers, kv_heads, o.seed);
    spec.score_source = "synthetic (seed " + std::to_string(o.seed) + ")";
  } else {
    spec.scores = read_head_scores(o.head_scores);
    spec.score_source = o.head_scores;
  }
  spec.low = parse_head_policy(o.low_policy);
  spec.high = parse_head_policy(o.high_policy);
  spec.sink = o.window_sink;
  spec.recent = o.window_recent;
  for (double s : o.sparsity) {
    spec.sparsity = s;
    (void)resolve_head_policies(spec, layers, kv_heads);
  }
  spec.sparsity = 0.0;
  return spec;
}

// Layer `layer`'s policies as an explicit list for a one-layer cache (the decode timing's): the
// same heads take the same policies as in the whole cache.
inline HeadPolicySpec layer_policy_spec(const HeadPolicySpec& spec, uint32_t layers, uint32_t kv_heads,
                                        uint32_t layer) {
  const std::vector<HeadPolicy> all = resolve_head_policies(spec, layers, kv_heads);
  HeadPolicySpec one = spec;
  one.scores.clear();
  one.sparsity = 0.0;
  one.heads.assign(all.begin() + size_t(layer) * kv_heads, all.begin() + size_t(layer + 1) * kv_heads);
  return one;
}

}  // namespace vidkv::bench
