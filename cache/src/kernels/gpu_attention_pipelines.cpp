// The pipelines of decode attention (gpu_attention.hpp): their descriptions (*_desc, which the
// record functions and prepare_pipelines* both use, so what is prepared is what a step runs), the
// portable shaders' shared memory and the split that keeps it within the device's, and
// prepare_pipelines*: every pipeline of a decode step made without buffers or dispatches.
#include <algorithm>
#include <string>

#include "kernels/gpu_attention_internal.hpp"
#include "kernels/gpu_common.hpp"
#include "vidkv/gpu_attention.hpp"
#include "vidkv/runtime/pipeline.hpp"

namespace vidkv {

using namespace attention_detail;

namespace {

// The attention_vidkv label of a value mode: what the shader's VALUE_MODE selects.
const char* mode_label(uint32_t mode) {
  switch (mode) {
    case 0: return "trits";
    case 1: return "b2_channel";
    case 2: return "b2_token";
    case 3: return "stp";
  }
  return "?";
}

}  // namespace

// Shared memory of attention.glsl: scores, reductions, statistics (split 0: split_tokens()).
uint64_t GpuAttention::shared_common(uint32_t ratio, uint32_t split) const {
  const uint64_t stats = (ratio + 3) / 4 * 4;  // stat_m, stat_l: padded to whole vec4s
  return 4ull * ratio * ((split != 0 ? split : split_tokens()) + gpu::kWorkgroupSize) + 8 * stats;
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
  auto whole_vec4s = [](uint64_t words) { return (words + 3) / 4 * 4; };  // every array 16-byte aligned
  const uint64_t stage = whole_vec4s(std::max({st_query, st_keys, st_v}) + 1);  // + the TRASH word
  // big: the key coefficients (64 key indices folded per pass), and in the value phase STP's part
  // slots followed by the value arrays (p rows for KIVI, subset-sum tables for per-channel codes)
  const bool trits = mode == 0 || mode == 3;
  const uint64_t coef = cg * (64 * rv + 1), slots = mode == 3 ? (uint64_t(ratio) * (split + 3 * kBlock) + 3) / 4 : 0;
  const uint64_t rows = mode == 2 ? cg * kBlock * rv : 0, tables = mode != 2 ? cg * (kBlock / 4) * 16 * rv : 0;
  const uint64_t big = std::max(coef, slots + std::max(rows, tables));
  const uint64_t digit_bits = trits ? 256 : 4;  // the byte -> digit bits table (unused: one vec4)
  const uint64_t vec4s = big + cg * rv * cparts;
  const uint64_t qk = whole_vec4s(uint64_t(ratio) * ks + 1);  // + its trash slot
  return shared_common(ratio, split) + 4 * (qk + stage + digit_bits) + 16 * vec4s;
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

std::vector<GpuAttention::PreparedPipeline> GpuAttention::prepare_pipelines_fp16(const AttentionGeometry& g) {
  check_geometry(g);
  std::vector<PreparedPipeline> out;
  for (const rt::PipelineDesc& desc : {fp16_desc(g), reduce_desc(g)}) out.push_back(pipelines_.prepare(desc.shader->name, desc));
  return out;
}

std::vector<GpuAttention::PreparedPipeline> GpuAttention::prepare_pipelines(const AttentionGeometry& g,
                                                                           const KeySpec& keys, ValueFormat values,
                                                                           uint32_t value_group_size) {
  check_geometry(g);
  validate(keys, {g.kv_heads, keys.group_size, g.dim});
  const uint32_t vg = value_group_size != 0 ? value_group_size : keys.group_size;
  check_group_sizes(keys.group_size, vg);
  std::vector<PreparedPipeline> out;
  auto add = [&](const std::string& label, const rt::PipelineDesc& desc) { out.push_back(pipelines_.prepare(label, desc)); };
  // Keys decide the query transform's and the attention's shape: k anomalous channels, S streams.
  const uint32_t k = anomalous_channel_count(keys, g.dim), S = coefficient_streams(keys.fft, g.dim - k);
  // (appended piecewise: GCC 12 warns falsely, -Wrestrict, on "k" + std::to_string(k) here)
  std::string key_part = "k";
  key_part += str(k) + " s" + str(S);
  // Only the subgroup-of-8 path transforms the query in a dispatch of its own.
  if (subgroup8_path()) add("attention_query[" + key_part + "]", query_desc(g, keys));
  // An STP layer also holds segments without protected tokens (the residual's flushes).
  std::vector<uint32_t> modes = {value_mode(values, 1)};
  if (values == ValueFormat::ternary_stp) modes.push_back(value_mode(values, 0));
  for (uint32_t mode : modes) {
    const rt::PipelineDesc desc = vidkv_desc(g, keys, mode, mode_split(g, keys, mode, vg), vg);
    add(std::string(desc.shader->name) + "[" + mode_label(mode) + ", " + key_part + "]", desc);
  }
  add(fp16_desc(g).shader->name + std::string("[residual]"), fp16_desc(g));
  add(reduce_desc(g).shader->name, reduce_desc(g));
  return out;
}

}  // namespace vidkv
