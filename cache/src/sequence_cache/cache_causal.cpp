// vidkv::Cache::attention_causal: the queries of a layer's newest tokens, each over the cache up to
// and including its own position, in the dispatches of one attention (GpuAttention::record_vidkv
// with causal queries: workgroup z = query), not one attention per token.
#include <algorithm>
#include <string>

#include "sequence_cache/cache_checks.hpp"
#include "sequence_cache/cache_internal.hpp"

namespace vidkv {

using cache_detail::Layer;

namespace {

constexpr uint32_t kMaxQueries = 65535;  // workgroup z (Vulkan's guaranteed maxComputeWorkGroupCount)

void causal_checks(const Cache::Impl& m, const Layer& l, uint32_t sequence, uint32_t layer, uint32_t tokens,
                   float scale) {
  cache_checks::attention_state(m, l, sequence, layer, scale);
  const std::string where = cache_checks::where(sequence, layer, "attention_causal");
  if (tokens == 0) throw cache_checks::bad(where + ": 0 tokens");
  if (tokens > l.tokens()) {
    throw cache_checks::bad(where + ": " + std::to_string(tokens) + " queries exceed the layer's " +
                            std::to_string(l.tokens()) + " tokens");
  }
  if (tokens > kMaxQueries) {
    throw cache_checks::bad(where + ": " + std::to_string(tokens) + " queries exceed " + std::to_string(kMaxQueries) +
                            " per call");
  }
  if (l.mixed) {
    throw cache_checks::bad(where + ": the layer has per-head policies (full or window heads); causal attention "
                                    "takes layers whose heads all use the preset");
  }
}

void causal_views(const Cache::Impl& m, const rt::BufferView& q, const rt::BufferView& out, uint32_t tokens) {
  const uint64_t bytes = uint64_t(tokens) * m.geometry.q_heads * m.geometry.head_dim * 4;
  cache_checks::view(m, q, bytes, "attention_causal q", " (fp32 [tokens][q_heads][head_dim])");
  cache_checks::view(m, out, bytes, "attention_causal out", " (fp32 [tokens][q_heads][head_dim])");
}

}  // namespace

std::vector<float> Cache::attention_causal(uint32_t sequence, uint32_t layer, const std::vector<float>& q,
                                           uint32_t tokens, float scale) {
  Impl& m = *impl_;
  const Layer& l = m.layer(sequence, layer);
  causal_checks(m, l, sequence, layer, tokens, scale);
  cache_checks::size("attention_causal q", q.size(), uint64_t(tokens) * m.geometry.q_heads * m.geometry.head_dim);
  const uint64_t bytes = q.size() * 4;
  rt::Buffer& qb = m.grow(m.scratch.q, bytes);
  rt::Buffer& out = m.grow(m.scratch.out, bytes);
  qb.upload(q.data(), bytes);
  m.run([&](VkCommandBuffer cmd) {
    m.record_attention(cmd, l, qb.view(0, bytes), out.view(0, bytes), scale, tokens);
  });
  std::vector<float> result(q.size());
  out.download(result.data(), bytes);
  return result;
}

void Cache::attention_causal(uint32_t sequence, uint32_t layer, const rt::BufferView& q, const rt::BufferView& out,
                             uint32_t tokens, float scale) {
  Impl& m = *impl_;
  const Layer& l = m.layer(sequence, layer);
  causal_checks(m, l, sequence, layer, tokens, scale);
  causal_views(m, q, out, tokens);
  m.run([&](VkCommandBuffer cmd) {
    rt::compute_transfer_barrier(cmd);
    m.record_attention(cmd, l, q, out, scale, tokens);
  });
}

void Cache::record_attention_causal(VkCommandBuffer cmd, uint32_t sequence, uint32_t layer, const rt::BufferView& q,
                                    const rt::BufferView& out, uint32_t tokens, float scale) {
  Impl& m = *impl_;
  const Layer& l = m.layer(sequence, layer);
  causal_checks(m, l, sequence, layer, tokens, scale);
  causal_views(m, q, out, tokens);
  if (cmd == VK_NULL_HANDLE) {
    throw Error(ErrorCode::invalid_argument, "cache: record_attention_causal: no command buffer");
  }
  m.begin_recording(cmd);
  m.record_attention(cmd, l, q, out, scale, tokens);
}

}  // namespace vidkv
