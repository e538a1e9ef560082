#pragma once
// Internal: what the gpu_attention*.cpp files share: the shaders' fixed sizes, push constants and
// small geometry helpers.
#include <cmath>
#include <cstdint>
#include <string>

#include "vidkv/gpu_attention.hpp"

namespace vidkv {

// VALUE_MODE of attention_vidkv*.comp for a segment of this format with that many protected tokens.
uint32_t value_mode(ValueFormat format, uint32_t protected_tokens);

// Throws Error naming `name` when the view has no buffer or fewer than `bytes` bytes.
void attention_check_view(const rt::BufferView& view, uint64_t bytes, const std::string& name);

namespace attention_detail {

constexpr uint32_t kBlock = 32;  // tokens the shaders walk at a time (groups are 1, 2 or 4 blocks)
// Query heads per KV head. A workgroup keeps at most kChunkHeads of them in registers and shared
// memory (what every attention kernel was sized for); more are served by ceil(ratio / kChunkHeads)
// workgroups per KV head, each taking an equal chunk (attention_heads.glsl).
constexpr uint32_t kMaxRatio = 16;
constexpr uint32_t kChunkHeads = 8;
constexpr uint32_t kReduceBlock = 32;  // channels per attention_reduce.comp workgroup (its BLOCK)
constexpr uint32_t kMaxCausalQueries = 65535;  // workgroup z: Vulkan's guaranteed maxComputeWorkGroupCount[2]

// limit, query_slots: causal queries (gpu_attention.hpp): query z (workgroup z) sees the
// dispatch's tokens t < limit + z, and its partial slots start at z * query_slots.
constexpr int32_t kAllVisible = 0x7fffffff;
struct Fp16Push {
  uint32_t kv_heads, tokens, head_stride, token_stride, slot_base;
  float scale;
  int32_t limit;
  uint32_t query_slots;
};
struct VidkvPush {
  uint32_t kv_heads, tokens, slot_base, protected_tokens;
  float scale;  // the portable shader transforms the query itself; the sg8 one ignores it
  uint32_t visible;  // tokens attended (QuantizedSegmentBuffers::visible, or all)
  int32_t limit;
  uint32_t query_slots;
};
constexpr uint32_t kVidkvBindings = 14;          // attention_vidkv_sg8.comp
constexpr uint32_t kVidkvPortableBindings = 15;  // attention_vidkv.comp: + the channel table
struct ReducePush {
  uint32_t q_heads, slots, batched;
};
struct QueryPush {
  float scale;
  uint32_t channel_stride, prepared_stride;  // per workgroup z (attention_query.comp)
};

inline std::string str(uint64_t v) { return std::to_string(v); }

inline void check_view(const rt::BufferView& view, uint64_t bytes, const std::string& name) {
  attention_check_view(view, bytes, name);
}

inline uint64_t words(uint64_t bytes) { return (bytes + 3) / 4 * 4; }

inline float scale_of(const AttentionGeometry& g) {
  return g.scale != 0.0f ? g.scale : 1.0f / std::sqrt(float(g.dim));
}
inline uint32_t ratio_of(const AttentionGeometry& g) { return g.q_heads / g.kv_heads; }
// Workgroups per KV head and split, and the query heads each serves (RATIO of the attention
// shaders; ratio 12: 2 x 6, 9: 2 x 5 with one surplus head masked). Ratios up to 8: 1 x ratio.
inline uint32_t chunks_of(const AttentionGeometry& g) { return (ratio_of(g) + kChunkHeads - 1) / kChunkHeads; }
inline uint32_t chunk_ratio(const AttentionGeometry& g) { return (ratio_of(g) + chunks_of(g) - 1) / chunks_of(g); }

}  // namespace attention_detail

}  // namespace vidkv
