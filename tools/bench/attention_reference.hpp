#pragma once
// The bench's ground truth for attention error: random queries per sampled layer and the float64
// attention output over the layer's unquantized K/V (vidkv::reference::attention), computed once
// per layer and shared by every preset.
#include <cstdint>
#include <vector>

#include "bench/workload.hpp"

namespace vidkv::bench {

struct LayerReference {
  uint32_t layer = 0;
  // [q_heads][head_dim] each: N(0, 1) entries, each head scaled so that its logits over the layer
  // have standard deviation 2.
  std::vector<std::vector<float>> queries;
  std::vector<std::vector<double>> outputs;  // [q_heads][head_dim] each
};

// `count` layers spread evenly over `layers` (all when count is 0 or >= layers), increasing.
std::vector<uint32_t> sample_layers(uint32_t layers, uint32_t count);

// Queries are a function of (seed, layer, index). The queries run on up to two threads: the
// device is idle meanwhile.
LayerReference attention_reference(const LayerKv& kv, const WorkloadInfo& info, uint32_t layer, uint32_t queries,
                                   uint64_t seed);

// Relative L2 error accumulated over several tensors: sqrt(sum |a - b|^2 / sum |b|^2).
struct ErrorSum {
  double diff2 = 0, ref2 = 0;
  void add_halves(const std::vector<uint16_t>& got, const std::vector<uint16_t>& want);
  // Returns this pair's own relative error as well.
  double add(const std::vector<float>& got, const std::vector<double>& want);
  double relative() const;
};

}  // namespace vidkv::bench
