// Decode attention: argument checks and recording (gpu_attention.hpp). Host round trips are in
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

namespace {

constexpr uint32_t kBlock = 32;     // tokens the shaders walk at a time (groups are 1, 2 or 4 blocks)
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

std::string str(uint64_t v) { return std::to_string(v); }

}  // namespace

void attention_check_view(const rt::BufferView& view, uint64_t bytes, const std::string& name) {
  if (view.buffer == VK_NULL_HANDLE) throw Error(ErrorCode::invalid_argument, name + " has no buffer");
  if (view.size < bytes) {
    throw Error(ErrorCode::buffer_too_small, name + " holds " + str(view.size) + " bytes; " + str(bytes) + " needed");
  }
}

namespace {

void check_view(const rt::BufferView& view, uint64_t bytes, const std::string& name) {
  attention_check_view(view, bytes, name);
}

uint64_t words(uint64_t bytes) { return (bytes + 3) / 4 * 4; }

float scale_of(const AttentionGeometry& g) { return g.scale != 0.0f ? g.scale : 1.0f / std::sqrt(float(g.dim)); }
uint32_t ratio_of(const AttentionGeometry& g) { return g.q_heads / g.kv_heads; }
// Workgroups per KV head and split, and the query heads each serves (RATIO of the attention
// shaders; ratio 12: 2 x 6, 9: 2 x 5 with one surplus head masked). Ratios up to 8: 1 x ratio.
uint32_t chunks_of(const AttentionGeometry& g) { return (ratio_of(g) + kChunkHeads - 1) / kChunkHeads; }
uint32_t chunk_ratio(const AttentionGeometry& g) { return (ratio_of(g) + chunks_of(g) - 1) / chunks_of(g); }

}  // namespace

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

void GpuAttention::check_geometry(const AttentionGeometry& g) const {
  if (g.dim < 64 || g.dim > 256 || g.dim % 16 != 0) {
    throw Error(ErrorCode::invalid_argument, "head dim " + str(g.dim) + " is not a multiple of 16 from 64 to 256");
  }
  if (g.kv_heads == 0 || g.q_heads == 0 || g.q_heads % g.kv_heads != 0) {
    throw Error(ErrorCode::invalid_argument, "q_heads " + str(g.q_heads) + " is not a positive multiple of kv_heads " +
                                                 str(g.kv_heads));
  }
  if (ratio_of(g) > kMaxRatio) {
    throw Error(ErrorCode::invalid_argument, "q_heads / kv_heads = " + str(ratio_of(g)) + " exceeds " +
                                                 str(kMaxRatio) + " query heads per KV head");
  }
  // workgroup y: KV head x chunk; Vulkan guarantees 65535
  if (uint64_t(g.kv_heads) * chunks_of(g) > 65535) {
    throw Error(ErrorCode::invalid_argument, "kv_heads " + str(g.kv_heads) + " x " + str(chunks_of(g)) +
                                                 " head chunks exceed 65535 workgroups");
  }
  if (!std::isfinite(g.scale) || g.scale < 0.0f) {
    throw Error(ErrorCode::invalid_argument, "scale " + std::to_string(g.scale) + " is not finite and >= 0");
  }
}

// The shaders address groups of 1, 2 or 4 blocks; the portable one stages a chunk's span of a
// value group's trit block, whose size grows with the group (so no larger groups).
void GpuAttention::check_group_sizes(uint32_t key_group, uint32_t value_group) {
  for (const auto& [what, size] : {std::pair{"key", key_group}, std::pair{"value", value_group}}) {
    if (size != 32 && size != 64 && size != 128) {
      throw Error(ErrorCode::bad_group_size, std::string(what) + " group size " + str(size) +
                                                 " is not 32, 64 or 128 (the fused attention reads no other)");
    }
  }
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

void GpuAttention::check_fp16(const AttentionGeometry& g, const Fp16KvBuffers& kv, const char* what) const {
  const uint64_t bytes = uint64_t(kv.tokens) * g.kv_heads * g.dim * 2;
  if (kv.tokens == 0) return;
  check_view(kv.keys, bytes, std::string(what) + " keys");
  check_view(kv.values, bytes, std::string(what) + " values");
}

// Shared memory of attention.glsl: scores, reductions, statistics (split 0: split_tokens()).
uint64_t GpuAttention::shared_common(uint32_t ratio, uint32_t split) const {
  return 4ull * ratio * ((split != 0 ? split : split_tokens()) + gpu::kWorkgroupSize + 2);
}

// Shared memory of attention_vidkv.comp (portable) for one segment in value mode `mode`: the
// common parts and the shader's own arrays, sized as its constants size them (CG = 2 blocks per
// chunk, CP = 64 key indices per pass, heads padded to vec4s; TS: the trit stage, which for value
// groups above 32 spans a group block from the chunk's first trit to the last channel's).
uint64_t GpuAttention::shared_vidkv(uint32_t ratio, uint32_t dim, uint32_t k, uint32_t streams, uint32_t mode,
                                   uint32_t split, uint32_t vg) const {
  const uint64_t wg = gpu::kWorkgroupSize, cg = 2, ct = cg * kBlock, ks = k + streams, normal = dim - k;
  const uint64_t rv = (ratio + 3) / 4, cparts = wg / (cg * 8), block = (dim * kBlock + 4) / 5;
  const uint64_t st_query = ratio * normal + 2 * normal, st_keys = 6 * k + 4 * streams;
  const uint64_t ts = vg == kBlock ? (cg * block + 3) / 4 + 3 : (3 + (uint64_t(dim - 1) * vg + ct) / 5 + 1) / 4 + 3;
  const uint64_t st_trits = ts + dim * cg, st_b2 = 3 * dim * cg;
  const uint64_t st_kivi = ct * dim / 16 + ct * std::max<uint64_t>(dim / vg, 1);  // (the shader's KSG)
  const uint64_t st_v = mode == 0 ? st_trits : mode == 1 ? st_b2 : mode == 2 ? st_kivi : std::max(st_trits, st_b2);
  const uint64_t stage = std::max({st_query, st_keys, st_v}) + 1;  // + the TRASH word
  // big: the key coefficients (64 key indices folded per pass), and in the value phase STP's part
  // slots followed by the value arrays (p rows for 2 bits and KIVI, subset-sum tables for trits)
  const bool trits = mode == 0 || mode == 3;
  const uint64_t coef = cg * (64 * rv + 1), slots = mode == 3 ? (uint64_t(ratio) * (split + 3 * kBlock) + 3) / 4 : 0;
  const uint64_t rows = mode == 0 ? 0 : cg * kBlock * rv, tables = trits ? cg * (kBlock / 4) * 16 * rv : 0;
  const uint64_t big = std::max(coef, slots + std::max(rows, tables));
  const uint64_t digit_bits = trits ? 256 : 1;  // the byte -> digit bits table
  const uint64_t vec4s = big + cg * rv * cparts;
  return shared_common(ratio, split) + 4 * (uint64_t(ratio) * ks + 1 + stage + digit_bits) + 16 * vec4s;  // qk + its trash slot
}

// Tokens per split of a segment in value mode `mode`: split_tokens(), shortened (in steps of 64)
// where the shader's shared memory would not fit the device: on the portable path the largest split
// whose shared_vidkv fits (STP segments and GQA 7-8 at head_dim 256 on 32 KB devices such as
// lavapipe; GPUs with 48 KB or more keep the default at the benchmark geometry); on the
// subgroup-of-8 path an STP segment's scores by part slot (ratio x (split + 96) floats, its only
// shared memory).
uint32_t GpuAttention::mode_split(const AttentionGeometry& g, const KeySpec& ks, uint32_t mode, uint32_t vg) const {
  const uint64_t limit = context_->info().max_shared_memory;
  if (!subgroup8_path()) {
    const uint32_t k = anomalous_channel_count(ks, g.dim), S = coefficient_streams(ks.fft, g.dim - k);
    uint32_t split = split_tokens();
    while (split > 64 && shared_vidkv(chunk_ratio(g), g.dim, k, S, mode, split, vg) > limit) split -= 64;
    return split;
  }
  if (mode != 3) return split_tokens();
  const uint64_t slots = limit / (4ull * chunk_ratio(g));
  const uint64_t fit = slots > 3 * kBlock + 64 ? (slots - 3 * kBlock) / 64 * 64 : 64;
  return uint32_t(std::min<uint64_t>(split_tokens(), fit));
}

uint32_t GpuAttention::segment_split(const AttentionGeometry& g, const QuantizedLayerBuffers& layer,
                                     const QuantizedSegmentBuffers& seg) const {
  return mode_split(g, layer.keys, value_mode(layer.values, seg.protected_tokens), value_group_of(layer));
}

void GpuAttention::check_shared_memory(uint64_t bytes, const char* what) const {
  if (bytes > context_->info().max_shared_memory) {
    throw Error(ErrorCode::invalid_argument, std::string(what) + " needs " + str(bytes) +
                                                 " bytes of shared memory; the device has " +
                                                 str(context_->info().max_shared_memory) +
                                                 " (use fewer split tokens or query heads per KV head)");
  }
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

rt::PipelineDesc GpuAttention::fp16_desc(const AttentionGeometry& g) const {
  // Every attention shader's last constant: Q_PER_KV, the full ratio (attention_heads.glsl).
  if (subgroup8_path()) {
    return gpu::pipeline("attention_fp16_sg8", {g.dim, chunk_ratio(g), split_tokens(), ratio_of(g)}, 4,
                         sizeof(Fp16Push));
  }
  // The portable shader's constant 4: reductions within subgroups first (attention.glsl). Only the
  // build variant made for that declares subgroup arithmetic, so a device without it never sees
  // the capability; both variants name their pipelines attention_fp16.
  const char* variant = subgroup_reductions_ ? "attention_fp16.subgroup" : "attention_fp16";
  return gpu::pipeline(variant, {g.dim, chunk_ratio(g), split_tokens(), uint32_t(subgroup_reductions_), ratio_of(g)},
                       4, sizeof(Fp16Push));
}

// Workgroups per output row of the reduction: the portable shader's channel blocks, or one.
uint32_t GpuAttention::reduce_blocks(const AttentionGeometry& g) const {
  return subgroup8_path() ? 1u : (g.dim + kReduceBlock - 1) / kReduceBlock;
}

rt::PipelineDesc GpuAttention::reduce_desc(const AttentionGeometry& g) const {
  // The subgroup-of-8 path reduces a whole row per 8-lane workgroup (attention_reduce_sg8.comp).
  if (subgroup8_path()) return gpu::pipeline("attention_reduce_sg8", {g.dim}, 3, sizeof(ReducePush));
  return gpu::pipeline("attention_reduce", {g.dim}, 3, sizeof(ReducePush));
}

rt::PipelineDesc GpuAttention::query_desc(const AttentionGeometry& g, const KeySpec& ks) const {
  const uint32_t k = anomalous_channel_count(ks, g.dim), S = coefficient_streams(ks.fft, g.dim - k);
  const uint32_t scope_layer = ks.scope == ChannelScope::layer ? 1u : 0u;
  rt::PipelineDesc desc = gpu::pipeline(
      "attention_query", {g.dim, ratio_of(g), k, S, uint32_t(ks.fft == FftLayout::full), scope_layer}, 3, sizeof(QueryPush));
  // Only the subgroup-of-8 path runs it: one 8-lane subgroup per workgroup, for a CPU driver's
  // sake (there 64 invocations with a barrier cost several microseconds of task switching).
  desc.specialization[0] = 8;
  return desc;
}

rt::PipelineDesc GpuAttention::vidkv_desc(const AttentionGeometry& g, const KeySpec& ks, uint32_t mode,
                                          uint32_t split, uint32_t vg) const {
  const uint32_t k = anomalous_channel_count(ks, g.dim), S = coefficient_streams(ks.fft, g.dim - k);
  if (subgroup8_path()) {
    // constants 7: the full ratio (attention_heads.glsl), 8 and 9: key and value group sizes
    return gpu::pipeline("attention_vidkv_sg8", {g.dim, chunk_ratio(g), split, k, S, mode, ratio_of(g), ks.group_size, vg},
                         kVidkvBindings, sizeof(VidkvPush));
  }
  // The portable shader transforms the query itself: it needs the spectrum layout and channel scope.
  const uint32_t fft_full = ks.fft == FftLayout::full ? 1u : 0u;
  const uint32_t scope_layer = ks.scope == ChannelScope::layer ? 1u : 0u;
  return gpu::pipeline("attention_vidkv",
                       // constants 9: the full ratio, 10 and 11: key and value group sizes
                       {g.dim, chunk_ratio(g), split, k, S, mode, fft_full, scope_layer, ratio_of(g), ks.group_size, vg},
                       kVidkvPortableBindings, sizeof(VidkvPush));
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

// Sizes of segment `index`'s buffers against its token count and the layer's formats.
void GpuAttention::check_segment(const AttentionGeometry& g, const QuantizedLayerBuffers& layer, size_t index) const {
  const QuantizedSegmentBuffers& seg = layer.segments[index];
  const std::string name = "segment " + str(index);
  const uint32_t H = g.kv_heads, D = g.dim;
  const uint32_t k = anomalous_channel_count(layer.keys, D), S = coefficient_streams(layer.keys.fft, D - k);
  const uint32_t kg = layer.keys.group_size, vg = value_group_of(layer);
  // KIVI groups channels, not tokens
  const uint32_t token_group = layer.values == ValueFormat::b2_token ? kg : std::max(kg, vg);
  if (seg.tokens == 0 || seg.tokens % token_group != 0) {
    throw Error(ErrorCode::bad_group_size, name + " tokens " + str(seg.tokens) + " is not a positive multiple of " +
                                               str(token_group) + " (the layer's group size)");
  }
  if (seg.visible > seg.tokens) {
    throw Error(ErrorCode::invalid_argument,
                name + " visible tokens " + str(seg.visible) + " exceed its " + str(seg.tokens) + " tokens");
  }
  if (k > 0) {
    const PackedBytes b = packed_bytes({QuantBits::b2, QuantAxis::channel, kg}, {H, seg.tokens, k});
    check_view(seg.key_anomalous.codes, b.codes, name + " anomalous key codes");
    check_view(seg.key_anomalous.scales, b.scales, name + " anomalous key scales");
    check_view(seg.key_anomalous.mins, b.mins, name + " anomalous key mins");
  }
  if (S > 0) {
    const PackedBytes b = packed_bytes({QuantBits::b1, QuantAxis::channel, kg}, {H, seg.tokens, S});
    check_view(seg.key_normal.codes, b.codes, name + " key stream codes");
    check_view(seg.key_normal.scales, b.scales, name + " key stream scales");
  }
  uint32_t trit_tokens = seg.tokens;  // tokens whose values are trits
  if (layer.values == ValueFormat::ternary_stp && seg.protected_tokens > 0) {
    const uint32_t n = seg.protected_tokens;
    if (n % vg != 0 || n > seg.tokens) {
      throw Error(ErrorCode::bad_group_size, name + " protected tokens " + str(n) + " is not a multiple of " +
                                                 str(vg) + " in 0.." + str(seg.tokens));
    }
    const PackedBytes b = packed_bytes({QuantBits::b2, QuantAxis::channel, vg}, {H, n, D});
    check_view(seg.values_high.codes, b.codes, name + " protected value codes");
    check_view(seg.values_high.scales, b.scales, name + " protected value scales");
    check_view(seg.values_high.mins, b.mins, name + " protected value mins");
    check_view(seg.token_map, uint64_t(seg.tokens) * 4, name + " token map");
    trit_tokens = seg.tokens - n;
  }
  if (layer.values == ValueFormat::ternary_trits || layer.values == ValueFormat::ternary_stp) {
    if (trit_tokens == 0) return;  // every token protected: no trits
    const TensorShape shape{H, trit_tokens, D};
    check_view(seg.values.codes, words(trit_packed_bytes(shape, vg)), name + " value trits");
    check_view(seg.values.scales, packed_bytes({QuantBits::b1_58, QuantAxis::channel, vg}, shape).scales,
               name + " value scales");
  } else {
    const QuantAxis axis = layer.values == ValueFormat::b2_token ? QuantAxis::token : QuantAxis::channel;
    const PackedBytes b = packed_bytes({QuantBits::b2, axis, vg}, {H, seg.tokens, D});
    check_view(seg.values.codes, b.codes, name + " value codes");
    check_view(seg.values.scales, b.scales, name + " value scales");
    check_view(seg.values.mins, b.mins, name + " value mins");
  }
}

// Everything of one layer but the partials: geometry, q and out (causal: `causal` rows), keys,
// segments, residual, shared memory.
void GpuAttention::check_vidkv(const AttentionGeometry& g, const QuantizedLayerBuffers& layer,
                               const rt::BufferView& q, const rt::BufferView& out, bool keys_always,
                               uint32_t causal) const {
  check_common(g, q, out, causal);
  const KeySpec& ks = layer.keys;
  if (keys_always || !layer.segments.empty()) {
    validate(ks, {g.kv_heads, ks.group_size, g.dim});  // nbits and group size
    check_group_sizes(ks.group_size, value_group_of(layer));
    if (layer.values == ValueFormat::b2_token && g.dim % value_group_of(layer) != 0) {
      throw Error(ErrorCode::bad_group_size, "value group size " + str(value_group_of(layer)) +
                                                 " does not divide head dim " + str(g.dim) + " (b2_token values)");
    }
  }
  const uint32_t H = g.kv_heads, D = g.dim, ratio = chunk_ratio(g);
  uint64_t total = layer.residual.tokens;
  for (size_t i = 0; i < layer.segments.size(); ++i) {
    check_segment(g, layer, i);
    total += visible_tokens(layer.segments[i]);  // a truncated segment holds its visible ones
  }
  if (total == 0) throw Error(ErrorCode::invalid_argument, "the KV cache is empty (no segment and no residual tokens)");
  if (causal > total) {
    throw Error(ErrorCode::invalid_argument, "causal queries " + str(causal) + " exceed the cache's " + str(total) + " tokens");
  }
  check_fp16(g, layer.residual, "residual");
  if (layer.segments.empty()) {
    if (!subgroup8_path()) check_shared_memory(shared_common(ratio) + 4ull * ratio * D, "attention_fp16");
    return;
  }
  const uint32_t k = anomalous_channel_count(ks, D), N = D - k, S = coefficient_streams(ks.fft, N);
  const uint32_t units = ks.scope == ChannelScope::layer ? 1 : H;
  check_view(layer.channels, uint64_t(units) * D * 4, "channels");
  if (!subgroup8_path()) {
    for (const QuantizedSegmentBuffers& seg : layer.segments) {
      check_shared_memory(shared_vidkv(ratio, D, k, S, value_mode(layer.values, seg.protected_tokens),
                                       segment_split(g, layer, seg), value_group_of(layer)),
                          "attention_vidkv");
    }
    if (layer.residual.tokens > 0) check_shared_memory(shared_common(ratio) + 4ull * ratio * D, "attention_fp16");
  }
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
