#pragma once
// Semantic token protection's input for one layer, computed from the workload itself: the score of
// each visual token is the mean dot product of its keys (all KV heads concatenated) with the
// prompt tokens' keys (vidkv::reference::stp_scores, DESIGN section 2). The prompt is the tokens
// after the video.
#include <cstdint>
#include <vector>

#include "bench/workload.hpp"

namespace vidkv::bench {

struct StpLayerInput {
  uint32_t first_visual = 0;
  uint32_t visual_tokens = 0;
  std::vector<float> scores;  // one per visual token
};

// Throws vidkv::Error(invalid_argument) when the workload has no prompt tokens after the video.
StpLayerInput stp_layer_input(const LayerKv& kv, const WorkloadInfo& info);

}  // namespace vidkv::bench
