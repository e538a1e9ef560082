// vidkv::Cache operations recorded into the caller's command buffer (record_*), and dequantize,
// whose synchronous form runs the same recording into buffers of the cache's own. The argument
// checks are cache.cpp's; here the order of a recorded operation: check, prepare (allocate),
// record, commit. A recorded operation commits at once: the cache's host-side state (token
// counts, segments) describes the cache as it will be once the caller's work has executed.
#include <algorithm>
#include <string>

#include "sequence_cache/cache_checks.hpp"
#include "sequence_cache/cache_internal.hpp"

namespace vidkv {

using cache_detail::Layer;

namespace {

void record_prefill_impl(Cache::Impl& m, VkCommandBuffer cmd, uint32_t sequence, uint32_t layer,
                         const rt::BufferView& keys, const rt::BufferView& values, ElementType type, uint32_t tokens,
                         const CacheStpInput* stp) {
  Layer& l = m.layer(sequence, layer);
  cache_checks::prefill_state(m, l, sequence, layer, tokens);
  cache_checks::input_views(m, keys, values, type, tokens, "prefill");
  if (cmd == VK_NULL_HANDLE) throw Error(ErrorCode::invalid_argument, "cache: record_prefill: no command buffer");
  const cache_detail::StpPlan plan = m.plan_stp(tokens, stp);
  cache_detail::PendingWrite p = m.prepare_prefill(l, tokens, type, plan);
  const rt::BufferView check = m.recorded_check();
  m.begin_recording(cmd);
  m.record_prefill(cmd, l, p, keys, values, type, tokens, check);
  m.commit(l, p, true);
}

}  // namespace

void Cache::record_prefill(VkCommandBuffer cmd, uint32_t sequence, uint32_t layer, const rt::BufferView& keys,
                           const rt::BufferView& values, ElementType type, uint32_t tokens) {
  record_prefill_impl(*impl_, cmd, sequence, layer, keys, values, type, tokens, nullptr);
}

void Cache::record_prefill(VkCommandBuffer cmd, uint32_t sequence, uint32_t layer, const rt::BufferView& keys,
                           const rt::BufferView& values, ElementType type, uint32_t tokens,
                           const CacheStpInput& stp) {
  record_prefill_impl(*impl_, cmd, sequence, layer, keys, values, type, tokens, &stp);
}

void Cache::record_append(VkCommandBuffer cmd, uint32_t sequence, uint32_t layer, const rt::BufferView& key,
                          const rt::BufferView& value) {
  Impl& m = *impl_;
  Layer& l = m.layer(sequence, layer);
  cache_checks::input_views(m, key, value, ElementType::f16, 1, "append");
  cache_checks::append_state(m, l, sequence, layer);
  if (cmd == VK_NULL_HANDLE) throw Error(ErrorCode::invalid_argument, "cache: record_append: no command buffer");
  cache_detail::PendingWrite p = m.prepare_append(l);
  const rt::BufferView check = m.recorded_check();
  m.begin_recording(cmd);
  m.record_append(cmd, l, p, key, value, check);
  m.commit(l, p, false);
}

void Cache::record_attention(VkCommandBuffer cmd, uint32_t sequence, uint32_t layer, const rt::BufferView& q,
                             const rt::BufferView& out, float scale) {
  Impl& m = *impl_;
  const Layer& l = m.layer(sequence, layer);
  cache_checks::attention_state(m, l, sequence, layer, scale);
  cache_checks::query_views(m, q, out);
  if (cmd == VK_NULL_HANDLE) throw Error(ErrorCode::invalid_argument, "cache: record_attention: no command buffer");
  m.begin_recording(cmd);
  m.record_attention(cmd, l, q, out, scale);
}

void Cache::record_dequantize(VkCommandBuffer cmd, uint32_t sequence, uint32_t layer, const rt::BufferView& keys,
                              const rt::BufferView& values) {
  Impl& m = *impl_;
  const Layer& l = m.layer(sequence, layer);
  cache_checks::output_views(m, keys, values, l.tokens(), "dequantize");
  if (cmd == VK_NULL_HANDLE) throw Error(ErrorCode::invalid_argument, "cache: record_dequantize: no command buffer");
  m.begin_recording(cmd);
  m.record_dequantize(cmd, l, keys, values);
}

void Cache::dequantize(uint32_t sequence, uint32_t layer, std::vector<uint16_t>& keys, std::vector<uint16_t>& values) {
  Impl& m = *impl_;
  const Layer& l = m.layer(sequence, layer);
  const uint64_t halves = uint64_t(l.tokens()) * m.token_halves();
  std::vector<uint16_t> k(halves), v(halves);
  if (halves > 0) {
    rt::Buffer& kb = m.grow(m.scratch.decoded_keys, halves * 2);
    rt::Buffer& vb = m.grow(m.scratch.decoded_values, halves * 2);
    m.run([&](VkCommandBuffer cmd) { m.record_dequantize(cmd, l, kb.view(0, halves * 2), vb.view(0, halves * 2)); });
    kb.download(k.data(), halves * 2);
    vb.download(v.data(), halves * 2);
  }
  keys = std::move(k);
  values = std::move(v);
}

void Cache::dequantize(uint32_t sequence, uint32_t layer, const rt::BufferView& keys, const rt::BufferView& values) {
  Impl& m = *impl_;
  const Layer& l = m.layer(sequence, layer);
  cache_checks::output_views(m, keys, values, l.tokens(), "dequantize");
  m.run([&](VkCommandBuffer cmd) {
    rt::compute_transfer_barrier(cmd);
    m.record_dequantize(cmd, l, keys, values);
  });
}

void Cache::release_retired() {
  impl_->scratch.retired.clear();
  impl_->scratch.retired_joint.clear();
  impl_->scratch.recorded = false;
}

}  // namespace vidkv
