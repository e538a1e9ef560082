#include "bench/stp_input.hpp"

#include "vidkv/error.hpp"
#include "vidkv/fp16.hpp"
#include "vidkv/stp.hpp"

namespace vidkv::bench {

StpLayerInput stp_layer_input(const LayerKv& kv, const WorkloadInfo& info) {
  const uint32_t text_first = info.first_visual + info.visual_tokens;
  if (text_first >= kv.tokens)
    throw Error(ErrorCode::invalid_argument, "STP needs prompt tokens after the video; visual tokens end at " +
                                                 std::to_string(text_first) + " of " + std::to_string(kv.tokens));
  const uint32_t hidden = info.kv_heads * info.head_dim;
  // [tokens][kv_heads][head_dim] is already [tokens][hidden]: each token's heads concatenated.
  auto rows = [&](uint32_t first, uint32_t count) {
    std::vector<float> out(size_t(count) * hidden);
    const uint16_t* src = kv.keys.data() + size_t(first) * hidden;
    for (size_t i = 0; i < out.size(); ++i) out[i] = fp16::to_float(src[i]);
    return out;
  };
  StpLayerInput in;
  in.first_visual = info.first_visual;
  in.visual_tokens = info.visual_tokens;
  in.scores = reference::stp_scores(rows(info.first_visual, info.visual_tokens),
                                    rows(text_first, kv.tokens - text_first), hidden);
  return in;
}

}  // namespace vidkv::bench
