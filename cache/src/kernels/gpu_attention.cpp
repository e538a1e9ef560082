// Decode attention: settings, sizes and recording (gpu_attention.hpp). Argument checks are in
// gpu_attention_checks.cpp, pipeline descriptions and shared-memory sizing in
// gpu_attention_pipelines.cpp, batches in gpu_attention_batch.cpp, host round trips in
// gpu_attention_host.cpp.
#include "vidkv/gpu_attention.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "kernels/gpu_attention_internal.hpp"
#include "kernels/gpu_common.hpp"
#include "vidkv/ternary_pack.hpp"
#include "vk.hpp"

namespace vidkv {

using namespace attention_detail;

// VALUE_MODE of attention_vidkv*.comp for a segment: an STP segment with no protected token reads
// exactly like ternary trits.
uint32_t value_mode(ValueFormat f, uint32_t protected_tokens) {
  switch (f) {
    case ValueFormat::ternary_trits: return 0;
    case ValueFormat::b2_channel: return 1;
    case ValueFormat::b2_token: return 2;
    case ValueFormat::ternary_stp: return protected_tokens > 0 ? 3 : 0;
  }
  return 0;
}

const char* value_format_name(ValueFormat format) noexcept {
  switch (format) {
    case ValueFormat::ternary_trits: return "ternary_trits";
    case ValueFormat::b2_channel: return "b2_channel";
    case ValueFormat::b2_token: return "b2_token";
    case ValueFormat::ternary_stp: return "ternary_stp";
  }
  return "?";
}

std::vector<uint32_t> attention_channel_table(const QuantizedKeys& keys) {
  const uint32_t units = keys.spec.scope == ChannelScope::layer ? 1 : keys.shape.heads;
  if (keys.splits.size() < units) throw Error(ErrorCode::invalid_argument, "keys have no channel split per head");
  std::vector<uint32_t> table;
  for (uint32_t u = 0; u < units; ++u) {
    const ChannelSplit& s = keys.splits[u];
    if (s.anomalous.size() + s.normal.size() != keys.shape.dim) {
      throw Error(ErrorCode::invalid_argument, "channel split of head " + str(u) + " does not cover dim " +
                                                   str(keys.shape.dim));
    }
    table.insert(table.end(), s.anomalous.begin(), s.anomalous.end());
    table.insert(table.end(), s.normal.begin(), s.normal.end());
  }
  return table;
}

// The subgroup-of-8 shaders (attention_*_sg8.comp) need every compute subgroup to be exactly 8
// invocations and subgroup shuffles; they only pay off where a workgroup is one CPU task, so the
// device must also be a CPU (gpu_attention.hpp says why a GPU with 8-wide subgroups is left out).
bool GpuAttention::subgroup8_rule(rt::DeviceType type, uint32_t effective_subgroup_size,
                                  bool compute_shuffles) noexcept {
  return type == rt::DeviceType::cpu && effective_subgroup_size == 8 && compute_shuffles;
}

bool GpuAttention::subgroup8_default(const rt::Context& ctx) {
  VkPhysicalDeviceSubgroupProperties subgroup{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
  VkPhysicalDeviceProperties2 props{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
  props.pNext = &subgroup;
  vkGetPhysicalDeviceProperties2(ctx.physical_device(), &props);
  const bool shuffles = (subgroup.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                        (subgroup.supportedOperations & VK_SUBGROUP_FEATURE_BASIC_BIT) &&
                        (subgroup.supportedOperations & VK_SUBGROUP_FEATURE_SHUFFLE_BIT);
  return subgroup8_rule(ctx.info().type, ctx.effective_subgroup_size(), shuffles);
}

// Subgroup arithmetic in compute: attention.glsl's reductions may then start within subgroups.
bool GpuAttention::subgroup_reductions_default(const rt::Context& ctx) {
  VkPhysicalDeviceSubgroupProperties subgroup{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
  VkPhysicalDeviceProperties2 props{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
  props.pNext = &subgroup;
  vkGetPhysicalDeviceProperties2(ctx.physical_device(), &props);
  return (subgroup.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
         (subgroup.supportedOperations & VK_SUBGROUP_FEATURE_BASIC_BIT) &&
         (subgroup.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
}

uint32_t GpuAttention::portable_split_rule(uint32_t compute_units) noexcept {
  if (compute_units == 0) return 256;
  for (uint32_t split : {512u, 256u}) {
    if (8192 / split * 4 >= 2 * compute_units) return split;
  }
  return 128;
}

GpuAttention::GpuAttention(std::shared_ptr<rt::Context> context)
    : context_(context),
      pipelines_(context),
      runner_(context),
      sg8_(subgroup8_default(*context)),
      subgroup_reductions_(subgroup_reductions_default(*context)) {}
GpuAttention::~GpuAttention() = default;

void GpuAttention::set_subgroup_reductions(bool on) {
  // The subgroup variant declares GroupNonUniformArithmetic: creating it elsewhere is invalid.
  if (on && !subgroup_reductions_default(*context_)) {
    throw Error(ErrorCode::missing_feature, "subgroup reductions need subgroup arithmetic in compute shaders, "
                                            "which this device does not offer");
  }
  subgroup_reductions_ = on;
}

void GpuAttention::set_split_tokens(uint32_t tokens) {
  if (tokens < 64 || tokens > 1024 || tokens % 64 != 0) {
    throw Error(ErrorCode::invalid_argument, "split tokens " + str(tokens) + " is not a multiple of 64 in 64..1024");
  }
  split_ = tokens;
}

void GpuAttention::check_common(const AttentionGeometry& g, const rt::BufferView& q, const rt::BufferView& out,
                                uint32_t causal) const {
  check_geometry(g);
  if (causal > kMaxCausalQueries) {
    throw Error(ErrorCode::invalid_argument, "causal queries " + str(causal) + " exceed " + str(kMaxCausalQueries));
  }
  const uint64_t bytes = uint64_t(g.q_heads) * g.dim * 4 * std::max(causal, 1u);
  check_view(q, bytes, "q");
  check_view(out, bytes, "out");
}

uint64_t GpuAttention::partial_bytes_fp16(const AttentionGeometry& g, uint32_t tokens, uint32_t causal) const {
  return uint64_t(splits_of(tokens)) * g.q_heads * (g.dim + 2) * 4 * std::max(causal, 1u);
}

uint64_t GpuAttention::slot_bytes(const AttentionGeometry& g, const QuantizedLayerBuffers& layer) const {
  return uint64_t(slot_count(g, layer)) * g.q_heads * (g.dim + 2) * 4;
}

uint64_t GpuAttention::prepared_bytes(const AttentionGeometry& g, const QuantizedLayerBuffers& layer,
                                      uint32_t causal) const {
  if (layer.segments.empty() || g.dim == 0) return 0;
  const uint32_t k = anomalous_channel_count(layer.keys, g.dim);
  return uint64_t(g.q_heads) * (k + coefficient_streams(layer.keys.fft, g.dim - k)) * 4 * std::max(causal, 1u);
}

// The transformed query lives behind the partial slots, at an offset the device accepts.
uint64_t GpuAttention::prepared_offset(const rt::BufferView& partials, uint64_t slots) const {
  const uint64_t align = std::max<uint64_t>(context_->info().min_storage_buffer_offset_alignment, 16);
  return (partials.offset + slots + align - 1) / align * align;
}

uint64_t GpuAttention::partial_bytes(const AttentionGeometry& g, const QuantizedLayerBuffers& layer,
                                     uint32_t causal) const {
  const uint64_t prepared = prepared_bytes(g, layer, causal);
  const uint64_t slots = slot_bytes(g, layer) * std::max(causal, 1u);
  if (prepared == 0) return slots;
  const uint64_t align = std::max<uint64_t>(context_->info().min_storage_buffer_offset_alignment, 16);
  return slots + align + prepared;
}

// Causal queries: query z stands at position total - causal + z and sees positions up to its own;
// a dispatch whose first token is at position `at` shows it its tokens t < limit + z.
static int32_t causal_limit(uint64_t total, uint32_t causal, uint64_t at) {
  if (causal == 0) return kAllVisible;
  return int32_t(int64_t(total) - int64_t(causal) + 1 - int64_t(at));
}

void GpuAttention::record_fp16_splits(VkCommandBuffer cmd, const AttentionGeometry& g, const Fp16KvBuffers& kv,
                                      const rt::BufferView& q, const rt::BufferView& partials, uint32_t slot_base,
                                      int32_t limit, uint32_t query_slots, uint32_t queries) {
  const Fp16Push pc{g.kv_heads, kv.tokens, g.dim, g.kv_heads * g.dim, slot_base, scale_of(g), limit, query_slots};
  const auto& p = pipelines_.get(fp16_desc(g));
  const rt::BufferView views[] = {q, kv.keys, kv.values, partials};
  p.dispatch(cmd, views, &pc, splits_of(kv.tokens), g.kv_heads * chunks_of(g), queries);
}

void GpuAttention::record_reduce(VkCommandBuffer cmd, const AttentionGeometry& g, uint32_t slots,
                                 const rt::BufferView& partials, const rt::BufferView& out, uint32_t queries) {
  rt::compute_to_compute_barrier(cmd);
  const ReducePush pc{g.q_heads, slots, 0};
  const auto& p = pipelines_.get(reduce_desc(g));
  const rt::BufferView views[] = {partials, out, partials};  // partials stand in for the unread ranges
  p.dispatch(cmd, views, &pc, g.q_heads, reduce_blocks(g), queries);
}

void GpuAttention::record_reduce_batch(VkCommandBuffer cmd, const AttentionGeometry& g, uint32_t layers,
                                       const rt::BufferView& partials, const rt::BufferView& ranges,
                                       const rt::BufferView& out) {
  rt::compute_to_compute_barrier(cmd);
  const ReducePush pc{g.q_heads, 0, 1};
  const auto& p = pipelines_.get(reduce_desc(g));
  const rt::BufferView views[] = {partials, out, ranges};
  p.dispatch(cmd, views, &pc, layers * g.q_heads, reduce_blocks(g));
}

void GpuAttention::record_fp16(VkCommandBuffer cmd, const AttentionGeometry& g, const Fp16KvBuffers& kv,
                               const rt::BufferView& q, const rt::BufferView& partials, const rt::BufferView& out,
                               uint32_t causal) {
  check_common(g, q, out, causal);
  if (kv.tokens == 0) throw Error(ErrorCode::invalid_argument, "the KV cache is empty (tokens 0)");
  if (causal > kv.tokens) {
    throw Error(ErrorCode::invalid_argument, "causal queries " + str(causal) + " exceed the cache's " + str(kv.tokens) + " tokens");
  }
  check_fp16(g, kv, "fp16");
  check_view(partials, partial_bytes_fp16(g, kv.tokens, causal), "partials");
  const uint64_t ratio = chunk_ratio(g);
  if (!subgroup8_path()) check_shared_memory(shared_common(ratio) + 4ull * ratio * g.dim, "attention_fp16");
  const uint32_t queries = std::max(causal, 1u);
  record_fp16_splits(cmd, g, kv, q, partials, 0, causal_limit(kv.tokens, causal, 0), splits_of(kv.tokens), queries);
  record_reduce(cmd, g, splits_of(kv.tokens), partials, out, queries);
}

// The subgroup-of-8 shader reads a query transformed once by attention_query; the portable one
// transforms it inside each workgroup (nothing to record).
void GpuAttention::record_query(VkCommandBuffer cmd, const AttentionGeometry& g, const QuantizedLayerBuffers& layer,
                                const rt::BufferView& q, const rt::BufferView& prepared, uint32_t queries) {
  if (layer.segments.empty() || !subgroup8_path()) return;
  // causal: every query z reads the one channel table
  const QueryPush pc{scale_of(g), 0, uint32_t(prepared_bytes(g, layer) / 4)};
  const rt::BufferView qviews[] = {q, layer.channels, prepared};
  pipelines_.get(query_desc(g, layer.keys)).dispatch(cmd, qviews, &pc, g.q_heads, 1, queries);
}

void GpuAttention::record_query_batch(VkCommandBuffer cmd, const AttentionGeometry& g, const KeySpec& keys,
                                      uint32_t layers, const rt::BufferView& q, const rt::BufferView& tables,
                                      uint32_t table_uints, const rt::BufferView& prepared,
                                      uint64_t prepared_stride_bytes) {
  const QueryPush pc{scale_of(g), table_uints, uint32_t(prepared_stride_bytes / 4)};
  const rt::BufferView qviews[] = {q, tables, prepared};
  pipelines_.get(query_desc(g, keys)).dispatch(cmd, qviews, &pc, g.q_heads, 1, layers);
}

uint32_t GpuAttention::slot_count(const AttentionGeometry& g, const QuantizedLayerBuffers& layer) const {
  uint32_t slots = splits_of(layer.residual.tokens);
  for (const auto& s : layer.segments) {
    const uint32_t split = segment_split(g, layer, s);
    slots += (attended_tokens(s) + split - 1) / split;
  }
  return slots;
}

// Every segment's and the residual's splits, writing partial slots slot_base, slot_base + 1, ...
// of `slots`; no barrier between them (each writes its own slots). Returns the slots written.
uint32_t GpuAttention::record_passes(VkCommandBuffer cmd, const AttentionGeometry& g,
                                     const QuantizedLayerBuffers& layer, const rt::BufferView& q,
                                     const rt::BufferView& slots, const rt::BufferView& prepared,
                                     uint32_t slot_base, uint32_t causal, uint32_t query_slots) {
  const KeySpec& ks = layer.keys;
  const uint32_t H = g.kv_heads, D = g.dim;
  const bool sg8 = subgroup8_path();
  // Parts a configuration does not have (no anomalous channels at nbits 1, no streams at 2, no
  // protected tokens) still need a valid binding: q stands in, never read.
  auto or_q = [&](const rt::BufferView& v, bool used) { return used ? v : q; };
  uint32_t slot = slot_base;
  const float scale = scale_of(g);
  const uint32_t k = layer.segments.empty() ? 0 : anomalous_channel_count(ks, D);
  const uint32_t S = layer.segments.empty() ? 0 : coefficient_streams(ks.fft, D - k);
  // causal: `causal` queries, query z's slots from z * query_slots
  const uint32_t queries = std::max(causal, 1u);
  if (query_slots == 0) query_slots = slot_count(g, layer);
  uint64_t total = layer.residual.tokens;
  for (const QuantizedSegmentBuffers& seg : layer.segments) total += visible_tokens(seg);
  uint64_t at = 0;  // position of the dispatch's first token
  for (const QuantizedSegmentBuffers& seg : layer.segments) {
    const uint32_t mode = value_mode(layer.values, seg.protected_tokens);
    const bool stp = mode == 3, trits = mode == 0 || (stp && seg.protected_tokens < seg.tokens);
    const VidkvPush pc{H, seg.tokens, slot, stp ? seg.protected_tokens : 0, scale,
                       seg.visible != 0 ? seg.visible : seg.tokens, causal_limit(total, causal, at), query_slots};
    // Splits over the groups holding visible tokens only (a masked tail's whole groups get none).
    const uint32_t split = segment_split(g, layer, seg), splits = (attended_tokens(seg) + split - 1) / split;
    const auto& pipeline = pipelines_.get(vidkv_desc(g, ks, mode, split, value_group_of(layer)));
    const bool mins = mode == 1 || mode == 2;
    // the sg8 shader reads the transformed query (binding 0), the portable one q and the channels
    const rt::BufferView views[kVidkvPortableBindings] = {sg8 ? prepared : q,
                                                  or_q(seg.key_anomalous.codes, k > 0),
                                                  or_q(seg.key_anomalous.scales, k > 0),
                                                  or_q(seg.key_anomalous.mins, k > 0),
                                                  or_q(seg.key_normal.codes, S > 0),
                                                  or_q(seg.key_normal.scales, S > 0),
                                                  or_q(seg.values.codes, trits || mins),
                                                  or_q(seg.values.scales, trits || mins),
                                                  or_q(seg.values.mins, mins),
                                                  slots,
                                                  or_q(seg.values_high.codes, stp),
                                                  or_q(seg.values_high.scales, stp),
                                                  or_q(seg.values_high.mins, stp),
                                                  or_q(seg.token_map, stp),
                                                  layer.segments.empty() ? q : layer.channels};
    pipeline.dispatch(cmd, std::span(views, sg8 ? kVidkvBindings : kVidkvPortableBindings), &pc, splits,
                      H * chunks_of(g), queries);
    slot += splits;
    at += visible_tokens(seg);
  }
  if (layer.residual.tokens > 0) {
    record_fp16_splits(cmd, g, layer.residual, q, slots, slot, causal_limit(total, causal, at), query_slots, queries);
    slot += splits_of(layer.residual.tokens);
  }
  return slot - slot_base;
}

void GpuAttention::record_vidkv(VkCommandBuffer cmd, const AttentionGeometry& g, const QuantizedLayerBuffers& layer,
                                const rt::BufferView& q, const rt::BufferView& partials, const rt::BufferView& out,
                                uint32_t causal) {
  check_vidkv(g, layer, q, out, true, causal);
  check_view(partials, partial_bytes(g, layer, causal), "partials");
  const uint32_t queries = std::max(causal, 1u), query_slots = slot_count(g, layer);
  const rt::BufferView slots{partials.buffer, partials.offset, slot_bytes(g, layer) * queries};
  const uint64_t prepared_at = prepared_offset(partials, slots.size);
  const rt::BufferView prepared{partials.buffer, prepared_at, std::max<uint64_t>(prepared_bytes(g, layer, causal), 4)};
  if (!layer.segments.empty() && subgroup8_path()) {
    record_query(cmd, g, layer, q, prepared, queries);
    rt::compute_to_compute_barrier(cmd);
  }
  const uint32_t written = record_passes(cmd, g, layer, q, slots, prepared, 0, causal, query_slots);
  record_reduce(cmd, g, written, slots, out, queries);
}

void GpuAttention::run_fp16(const AttentionGeometry& g, const Fp16KvBuffers& kv, const rt::BufferView& q,
                            const rt::BufferView& partials, const rt::BufferView& out, uint32_t causal) {
  runner_.run([&](VkCommandBuffer cmd) { record_fp16(cmd, g, kv, q, partials, out, causal); });
}

void GpuAttention::run_vidkv(const AttentionGeometry& g, const QuantizedLayerBuffers& layer, const rt::BufferView& q,
                             const rt::BufferView& partials, const rt::BufferView& out, uint32_t causal) {
  runner_.run([&](VkCommandBuffer cmd) { record_vidkv(cmd, g, layer, q, partials, out, causal); });
}

}  // namespace vidkv
