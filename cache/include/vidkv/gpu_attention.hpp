#pragma once
// Decode attention for one new token over one layer's KV cache (DESIGN section 5), on a Vulkan
// device, reading the packed VidKV cache directly (never decoding it to fp16 in memory).
//
// A layer is any number of quantized segments (the prefill, then blocks appended later, each with
// its own token count and the same channel lists) followed by the fp16 residual (the newest
// tokens). Every segment and the residual are cut into splits of split_tokens() tokens; each split
// is one workgroup per KV head that serves all q_heads / kv_heads query heads of that KV head
// (GQA: query head i reads KV head i / ratio; beyond 8 query heads per KV head, ceil(ratio / 8)
// workgroups per KV head share them out, each reading the split once), and writes an unnormalised partial softmax into its
// own slot of the `partials` scratch buffer; one reduction then combines all slots, so the whole
// layer is one softmax. The fp16 baseline is the same with no segments.
//
// Recording (record_*) checks every argument first and throws vidkv::Error naming the bad value
// without recording anything; it records its own barriers between its dispatches, and the caller
// owes the barriers of vidkv/runtime/commands.hpp around it. run_* submit and wait.
#include <memory>
#include <string>
#include <vector>

#include "vidkv/attention_reference.hpp"
#include "vidkv/export.hpp"
#include "vidkv/gpu_quantizer.hpp"
#include "vidkv/vidkv_keys.hpp"

namespace vidkv {

struct AttentionGeometry {
  uint32_t kv_heads = 0;
  uint32_t q_heads = 0;  // a multiple of kv_heads, at most 16 query heads per KV head
  uint32_t dim = 0;      // a multiple of 16 from 64 to 256
  float scale = 0.0f;    // softmax scale; 0 means 1 / sqrt(dim)
};

// fp16 K and V, both [tokens][kv_heads][dim] (TensorLayout::thd), halves.
struct Fp16KvBuffers {
  uint32_t tokens = 0;
  rt::BufferView keys;
  rt::BufferView values;
};

// How a segment's values are stored (group size G = QuantizedLayerBuffers' value group: 32, 64 or 128).
enum class ValueFormat {
  ternary_trits,  // 1.58-bit per channel, trits 5 per byte (ternary_pack.hpp); scales only
  b2_channel,     // 2-bit per channel: codes [h][c][T/16], scales and mins [h][c][T/G]
  b2_token,       // 2-bit per token (KIVI): codes [h][t][D/16], scales and mins [h][t][D/G]
  // Semantic token protection (stp.hpp): per segment, the n protected tokens' values at 2 bits
  // per channel (values_high, as b2_channel over {H, n, D}) and the other T - n tokens' as
  // ternary_trits over {H, T - n, D} (values), both gathered in increasing position, with a
  // token_map. A segment with n = 0 (the blocks that residual flushes append: decode tokens are
  // not protected) is plain ternary_trits and needs neither values_high nor token_map.
  ternary_stp,
};
VIDKV_API const char* value_format_name(ValueFormat format) noexcept;

// One quantized segment on the device, in the layouts QuantizedKeys / QuantizedTensor use.
struct QuantizedSegmentBuffers {
  uint32_t tokens = 0;           // a multiple of the layer's key and value group sizes
  PackedBuffers key_anomalous;   // 2-bit part, shape {kv_heads, tokens, k}; ignored when k = 0
  PackedBuffers key_normal;      // 1-bit streams {kv_heads, tokens, streams}; mins ignored; ignored when k = dim
  PackedBuffers values;          // codes hold the trit bytes for ternary_trits (and ternary_stp); mins ignored then
  // ValueFormat::ternary_stp only (ignored otherwise and when protected_tokens is 0):
  uint32_t protected_tokens = 0;  // n, a multiple of the value group size, at most tokens
  PackedBuffers values_high;      // 2-bit per channel over the protected tokens, shape {kv_heads, n, dim}
  // uint32 [tokens]: for token t, its index among the protected tokens with bit 31 set, or its
  // index among the others. Both parts keep sequence order, so it is a bijection onto the two
  // index ranges; the shaders clamp what they read, so a wrong map gives wrong results, not
  // out-of-bounds accesses.
  rt::BufferView token_map;
  // Only the first `visible` tokens are attended (a truncated cache masks a segment's tail without
  // re-quantizing it); 0 means all `tokens`.
  uint32_t visible = 0;
};

struct QuantizedLayerBuffers {
  KeySpec keys;                  // group_size 32, 64 or 128
  ValueFormat values = ValueFormat::ternary_trits;
  // Group size of the values (tokens per group; KIVI: channels per group): 32, 64 or 128; 0 means
  // keys.group_size. The kernels walk 32 tokens at a time whatever the group sizes.
  uint32_t value_group_size = 0;
  // uint32 [units][dim]: per unit the k anomalous channels, then the dim - k normal channels, each
  // list increasing; units = kv_heads (ChannelScope::head) or 1 (ChannelScope::layer).
  rt::BufferView channels;
  std::vector<QuantizedSegmentBuffers> segments;
  Fp16KvBuffers residual;        // tokens may be 0
};

// Host-side segment for the convenience functions (attention_reference.hpp); trits are packed
// from the values when not given. A segment with an STP split makes the layer ternary_stp; plain
// ternary segments in such a layer are its segments with n = 0.
using HostSegment = AttentionSegment;

// The channel table of QuantizedLayerBuffers::channels for these keys' channel splits.
VIDKV_API std::vector<uint32_t> attention_channel_table(const QuantizedKeys& keys);

class VIDKV_API GpuAttention {
 public:
  explicit GpuAttention(std::shared_ptr<rt::Context> context);
  ~GpuAttention();

  // Tokens per split (a multiple of 64, 64..1024). Default: 1024 on the subgroup-of-8 path (a
  // split is one CPU task; fewer, longer ones amortize its setup); on the portable one
  // portable_split_rule(the device's compute units), enough workgroups for a GPU. On the
  // subgroup-of-8 path an STP segment's splits are shortened where its part slots would not fit
  // shared memory.
  void set_split_tokens(uint32_t tokens);
  uint32_t split_tokens() const {
    return split_ != 0 ? split_ : (subgroup8_path() ? 1024 : portable_split_rule(context_->info().compute_units));
  }
  // The portable path's default split for a device with `compute_units` (rt::DeviceInfo; 0 when
  // unknown): the largest of 512, 256, 128 with which an 8192-token context of 4 KV heads still
  // gives every compute unit at least 2 workgroups (8192 / split * 4 >= 2 * compute_units), else
  // 128; 256 when the count is unknown. Shorter splits would add partials (m, l, out per query
  // head: ~5% of the fp16 bytes a 256-token split reads) and reduction work.
  static uint32_t portable_split_rule(uint32_t compute_units) noexcept;

  // Whether the portable shaders reduce within subgroups first (subgroupMax / subgroupAdd) or
  // through shared memory only. Default: subgroup_reductions_default(context).
  static bool subgroup_reductions_default(const rt::Context& context);
  // true on a device without subgroup arithmetic in compute throws Error(missing_feature).
  void set_subgroup_reductions(bool on);
  bool subgroup_reductions() const { return subgroup_reductions_; }

  // Bytes the `partials` scratch buffer needs (the VidKV one also holds the transformed query), for
  // `causal` queries (below; 0 and 1 need the same).
  uint64_t partial_bytes_fp16(const AttentionGeometry& geometry, uint32_t tokens, uint32_t causal = 0) const;
  uint64_t partial_bytes(const AttentionGeometry& geometry, const QuantizedLayerBuffers& layer,
                         uint32_t causal = 0) const;

  // q: fp32 [q_heads][dim]; out: fp32 [q_heads][dim].
  // Causal queries (causal > 0, at most 65535 and at most the layer's tokens): q and out hold
  // [causal][q_heads][dim]; query z stands at position tokens - causal + z of the layer (segments in
  // order, then the residual) and attends over positions 0 .. its own. The same dispatches run with
  // workgroup z = query: each has its own partial slots (z * slots ..) and is reduced on its own;
  // the tokens past its position score -3e38 where scores are produced, so they weigh 0.
  void record_fp16(VkCommandBuffer cmd, const AttentionGeometry& geometry, const Fp16KvBuffers& kv,
                   const rt::BufferView& q, const rt::BufferView& partials, const rt::BufferView& out,
                   uint32_t causal = 0);
  void record_vidkv(VkCommandBuffer cmd, const AttentionGeometry& geometry, const QuantizedLayerBuffers& layer,
                    const rt::BufferView& q, const rt::BufferView& partials, const rt::BufferView& out,
                    uint32_t causal = 0);
  void run_fp16(const AttentionGeometry& geometry, const Fp16KvBuffers& kv, const rt::BufferView& q,
                const rt::BufferView& partials, const rt::BufferView& out, uint32_t causal = 0);

  // A batch (gpu_attention_batch.cpp): one decode step of many sequences' layers, each as
  // record_vidkv takes it (a layer with no segment is read by its residual alone, as the fp16
  // baseline reads it; `keys` is then unread). q and out: fp32 [layers][q_heads][dim]. Records the
  // query transforms (subgroup-of-8 path), then every layer's segment and residual passes with no
  // barrier between them (each writes its own partial slots), then one reduction over every
  // (layer, query head), each reading its layer's slot range. Results equal record_vidkv's (or
  // record_fp16's) for each layer alone, bit for bit: the same passes and the same reduction order.
  uint64_t partial_bytes_batch(const AttentionGeometry& geometry, const std::vector<QuantizedLayerBuffers>& layers) const;
  void record_batch(VkCommandBuffer cmd, const AttentionGeometry& geometry,
                    const std::vector<QuantizedLayerBuffers>& layers, const rt::BufferView& q,
                    const rt::BufferView& partials, const rt::BufferView& out);
  void run_vidkv(const AttentionGeometry& geometry, const QuantizedLayerBuffers& layer, const rt::BufferView& q,
                 const rt::BufferView& partials, const rt::BufferView& out, uint32_t causal = 0);

  // Host round trips (tests, tools). K/V halves [tokens][kv_heads][dim]; q [q_heads][dim], or
  // [causal][q_heads][dim] for causal queries (record_vidkv).
  std::vector<float> fp16_host(const AttentionGeometry& geometry, const std::vector<float>& q,
                               const std::vector<uint16_t>& keys, const std::vector<uint16_t>& values,
                               uint32_t tokens, uint32_t causal = 0);
  // Segments in order, then the residual (residual_tokens may be 0).
  std::vector<float> vidkv_host(const AttentionGeometry& geometry, const std::vector<float>& q,
                                const std::vector<HostSegment>& segments, const std::vector<uint16_t>& residual_keys,
                                const std::vector<uint16_t>& residual_values, uint32_t residual_tokens,
                                uint32_t causal = 0);

  // A batch of host layers (record_batch's round trip): q and the result [layers][q_heads][dim].
  struct HostLayer {
    std::vector<HostSegment> segments;
    std::vector<uint16_t> residual_keys, residual_values;
    uint32_t residual_tokens = 0;
  };
  std::vector<float> batch_host(const AttentionGeometry& geometry, const std::vector<float>& q,
                                const std::vector<HostLayer>& layers);

  // Which shader path a device takes by default. The subgroup-of-8 shaders (attention_*_sg8.comp)
  // run each split as one workgroup of a single 8-lane subgroup: made for CPU drivers (lavapipe),
  // where a workgroup is one CPU task and few, long ones are fastest. On a GPU the same few small
  // workgroups would leave most of it idle, so a GPU takes the portable shaders even when its
  // subgroups are 8 wide (Intel at SIMD8). The rule: the device type is
  // VK_PHYSICAL_DEVICE_TYPE_CPU, every compute subgroup is exactly 8 invocations (the context's
  // effective_subgroup_size(): its required size, or the device's only one) and compute supports
  // subgroup shuffles.
  static bool subgroup8_rule(rt::DeviceType type, uint32_t effective_subgroup_size, bool compute_shuffles) noexcept;
  // subgroup8_rule applied to `context`'s device: what subgroup8_path() is there unless
  // set_portable(true). Tools use it to know which attention shaders a context will run.
  static bool subgroup8_default(const rt::Context& context);

  // Use the portable shader path even where the subgroup-of-8 path applies (tests cover both).
  void set_portable(bool portable) { portable_ = portable; }
  // Whether dispatches take the subgroup-of-8 shaders: subgroup8_default(context) and not
  // set_portable(true).
  bool subgroup8_path() const { return sg8_ && !portable_; }

  // Byte every output and scratch buffer of the host functions is filled with first (tests).
  void set_poison(uint8_t byte_value) { poison_ = byte_value; }

  const std::shared_ptr<rt::Context>& context() const { return context_; }

  // Pipeline preparation without any buffer or dispatch (gpu_attention_pipelines.cpp): creates
  // every pipeline the record functions would use for `geometry` and returns what it made, so
  // that vidkv-info --pipelines can read their statistics from Context::pipeline_records() (also
  // on devices that have no memory, such as RADV's null devices). Checks the geometry as record_*
  // does.
  using PreparedPipeline = rt::PreparedPipeline;
  // The fp16 baseline: attention_fp16 and attention_reduce.
  std::vector<PreparedPipeline> prepare_pipelines_fp16(const AttentionGeometry& geometry);
  // A VidKV layer with these keys and values: attention_query, attention_vidkv for each value
  // mode the format takes (ternary_stp: with and without protected tokens), attention_fp16 for
  // the residual and attention_reduce.
  // value_group_size 0: keys.group_size (as in QuantizedLayerBuffers).
  std::vector<PreparedPipeline> prepare_pipelines(const AttentionGeometry& geometry, const KeySpec& keys,
                                                  ValueFormat values, uint32_t value_group_size = 0);

 private:
  void check_geometry(const AttentionGeometry& geometry) const;
  void check_common(const AttentionGeometry& geometry, const rt::BufferView& q, const rt::BufferView& out,
                    uint32_t causal = 0) const;
  void check_fp16(const AttentionGeometry& geometry, const Fp16KvBuffers& kv, const char* what) const;
  void check_shared_memory(uint64_t bytes, const char* what) const;
  uint64_t shared_common(uint32_t ratio, uint32_t split = 0) const;
  uint64_t shared_vidkv(uint32_t ratio, uint32_t dim, uint32_t k, uint32_t streams, uint32_t mode,
                       uint32_t split, uint32_t value_group) const;
  // The key and value group sizes of a layer (checked: 32, 64 or 128).
  static uint32_t value_group_of(const QuantizedLayerBuffers& layer) {
    return layer.value_group_size != 0 ? layer.value_group_size : layer.keys.group_size;
  }
  static void check_group_sizes(uint32_t key_group, uint32_t value_group);
  void check_segment(const AttentionGeometry& geometry, const QuantizedLayerBuffers& layer, size_t index) const;
  void record_fp16_splits(VkCommandBuffer cmd, const AttentionGeometry& geometry, const Fp16KvBuffers& kv,
                          const rt::BufferView& q, const rt::BufferView& partials, uint32_t slot_base, int32_t limit,
                          uint32_t query_slots, uint32_t queries);
  void record_reduce(VkCommandBuffer cmd, const AttentionGeometry& geometry, uint32_t slots,
                     const rt::BufferView& partials, const rt::BufferView& out, uint32_t queries);
  // `rows` = layers x q_heads output rows, layer i's slots from `ranges` (uint32 {first, count}).
  void record_reduce_batch(VkCommandBuffer cmd, const AttentionGeometry& geometry, uint32_t layers,
                           const rt::BufferView& partials, const rt::BufferView& ranges, const rt::BufferView& out);
  void check_vidkv(const AttentionGeometry& geometry, const QuantizedLayerBuffers& layer, const rt::BufferView& q,
                   const rt::BufferView& out, bool keys_always, uint32_t causal = 0) const;
  void record_query(VkCommandBuffer cmd, const AttentionGeometry& geometry, const QuantizedLayerBuffers& layer,
                    const rt::BufferView& q, const rt::BufferView& prepared, uint32_t queries = 1);
  // One query transform for `layers` batch layers of one key configuration: their channel tables
  // side by side in `tables` (table_uints each), their transformed queries prepared_stride_bytes apart.
  void record_query_batch(VkCommandBuffer cmd, const AttentionGeometry& geometry, const KeySpec& keys,
                          uint32_t layers, const rt::BufferView& q, const rt::BufferView& tables,
                          uint32_t table_uints, const rt::BufferView& prepared, uint64_t prepared_stride_bytes);
  // Where record_batch puts its scratch (gpu_attention_batch.cpp).
  struct BatchLayout;
  BatchLayout batch_layout(const AttentionGeometry& geometry, const std::vector<QuantizedLayerBuffers>& layers) const;
  // causal: query z's slots from z * query_slots (0: slot_count of the layer).
  uint32_t record_passes(VkCommandBuffer cmd, const AttentionGeometry& geometry, const QuantizedLayerBuffers& layer,
                         const rt::BufferView& q, const rt::BufferView& slots, const rt::BufferView& prepared,
                         uint32_t slot_base, uint32_t causal = 0, uint32_t query_slots = 0);
  // Partial slots of one query (bytes, count).
  uint64_t slot_bytes(const AttentionGeometry& geometry, const QuantizedLayerBuffers& layer) const;
  uint32_t slot_count(const AttentionGeometry& geometry, const QuantizedLayerBuffers& layer) const;
  uint64_t prepared_bytes(const AttentionGeometry& geometry, const QuantizedLayerBuffers& layer,
                          uint32_t causal = 0) const;
  uint64_t prepared_offset(const rt::BufferView& partials, uint64_t slot_bytes) const;
  uint32_t splits_of(uint32_t tokens) const { return (tokens + split_tokens() - 1) / split_tokens(); }
  uint32_t mode_split(const AttentionGeometry& geometry, const KeySpec& keys, uint32_t mode,
                      uint32_t value_group) const;
  // The tokens a segment holds for attention: its visible ones (a truncated cache), else all.
  static uint32_t visible_tokens(const QuantizedSegmentBuffers& segment) {
    return segment.visible != 0 ? segment.visible : segment.tokens;
  }
  // The tokens of a segment's groups that hold visible tokens (its splits cover these).
  static uint32_t attended_tokens(const QuantizedSegmentBuffers& segment) {
    return segment.visible != 0 ? (segment.visible + 31) / 32 * 32 : segment.tokens;
  }
  uint32_t segment_split(const AttentionGeometry& geometry, const QuantizedLayerBuffers& layer,
                         const QuantizedSegmentBuffers& segment) const;
  // The pipeline of each kernel: the one place that builds its description, used by both the
  // record functions and prepare_pipelines (a kernel rewrite re-points only these).
  rt::PipelineDesc fp16_desc(const AttentionGeometry& geometry) const;
  rt::PipelineDesc reduce_desc(const AttentionGeometry& geometry) const;
  uint32_t reduce_blocks(const AttentionGeometry& geometry) const;
  rt::PipelineDesc query_desc(const AttentionGeometry& geometry, const KeySpec& keys) const;
  rt::PipelineDesc vidkv_desc(const AttentionGeometry& geometry, const KeySpec& keys, uint32_t value_mode,
                              uint32_t split, uint32_t value_group) const;

  std::shared_ptr<rt::Context> context_;
  rt::PipelineSet pipelines_;
  rt::CommandRunner runner_;
  uint32_t split_ = 0;  // 0: the path's default
  uint8_t poison_ = 0xff;
  bool sg8_ = false;  // subgroup8_default(*context_)
  bool portable_ = false;
  bool subgroup_reductions_ = false;  // subgroup_reductions_default(*context_)
};

}  // namespace vidkv
