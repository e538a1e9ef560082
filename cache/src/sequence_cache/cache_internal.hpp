#pragma once
// Internal state of vidkv::Cache, shared by cache.cpp (public API and argument checks),
// cache_record.cpp (the device-buffer and recording entry points), cache_layer.cpp (quantizing
// segments, residual, attention, decode), cache_input.cpp (fp32 conversion, NaN/Inf scan) and
// cache_stats.cpp (stats, reads).
//
// Every operation that changes a layer runs in three steps: prepare (checks are done; allocate
// what the layer will own, so an allocation failure changes nothing), record (into vidkv's own
// command buffer, submitted and waited for, or into the caller's), commit (move the new buffers
// and counts into the layer). A synchronous operation commits only after its submission has
// completed and its input passed the NaN/Inf check.
#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels/gpu_packed_io.hpp"
#include "vidkv/cache.hpp"
#include "vidkv/gpu_attention.hpp"
#include "vidkv/gpu_keys.hpp"
#include "vidkv/gpu_quantizer.hpp"
#include "vidkv/runtime/commands.hpp"
#include "vidkv/runtime/pipeline.hpp"
#include "vidkv/stp.hpp"

namespace vidkv::cache_detail {

// One quantized segment on the device. Only the arrays the attention reads are kept: the 1-bit
// streams' mins and the ternary values' mins and 2-bit fields are scratch of the quantization
// (Scratch), and the segment holds 16-byte placeholders in their place.
struct Segment {
  uint32_t tokens = 0;
  uint32_t heads = 0;  // KV heads it holds: all of them, or a mixed layer's preset heads
  gpu::DevicePacked key_anomalous;  // 2-bit keys: all channels, in channel order
  gpu::DevicePacked key_normal;     // mins: a placeholder
  gpu::DevicePacked values;         // ternary: codes hold trits 5 per byte, mins a placeholder
  // Semantic token protection (a prefill segment of an STP cache): `values` holds the other
  // tokens' trits (gathered, increasing position), `values_high` the protected tokens' 2-bit
  // values (gathered), `token_map` per token of the segment its index in its part, bit 31 set for
  // protected tokens (what the attention reads); `split` is the same on the host.
  bool stp = false;
  gpu::DevicePacked values_high;
  std::unique_ptr<rt::Buffer> token_map;
  TokenSplit split;
  CachePartBytes key_bytes, value_bytes;  // used bytes (the channel table apart, per layer)
};

// A layer's use of a segment. A segment never changes once written, so forked sequences share it
// (freed with its last user, cache_fork.cpp); truncation masks its tail instead of re-quantizing
// it: the layer holds only the segment's first `visible` tokens, and attention and dequantize
// read only those.
struct SegmentRef {
  std::shared_ptr<const Segment> data;
  uint32_t visible = 0;  // 1 .. data->tokens
  const Segment& operator*() const { return *data; }
  const Segment* operator->() const { return data.get(); }
  bool masked() const { return visible < data->tokens; }
};

struct Layer {
  bool prefilled = false;
  bool appended = false;
  // uint32 [units][dim]; null until the first segment. Shared by forks (never written once set).
  std::shared_ptr<rt::Buffer> channels;
  std::vector<SegmentRef> segments;
  std::unique_ptr<rt::Buffer> residual_keys, residual_values;  // null until first used
  uint32_t quantized = 0;  // tokens in segments (their visible tokens)
  uint32_t residual = 0;   // tokens in the residual
  // Per-head policies (head_policy.hpp), when this layer's heads do not all take the preset: the
  // segments and residual above (the "preset part") hold only the layer's preset heads, gathered
  // in increasing head order ([tokens][preset_heads][dim]); `full_*` hold the full heads'
  // tokens [max_tokens][full heads][dim], `window_*` the window heads' [sink + recent][window
  // heads][dim] slots (Impl::window_slot). All null until first written.
  bool mixed = false;
  uint32_t index = 0;         // mixed layers: which layer of the sequence (its HeadRoute)
  uint32_t preset_heads = 0;  // mixed layers only (may be 0)
  uint32_t count = 0;         // mixed layers: tokens written to the layer
  std::unique_ptr<rt::Buffer> full_keys, full_values, window_keys, window_values;
  uint32_t tokens() const { return mixed ? count : quantized + residual; }
};

struct Sequence {
  std::vector<Layer> layers;
};

struct JointFlush;  // cache_batch_flush.cpp

// A segment about to be added, and the channel table it chooses when the layer has none.
struct PendingSegment {
  Segment segment;
  std::unique_ptr<rt::Buffer> new_channels;
};

// Where a prefill's protected tokens are (positions within the prefill); empty when not STP.
struct StpPlan {
  bool active = false;
  TokenSplit split;
};

// What a prefill or an append will commit to its layer.
struct PendingWrite {
  std::vector<PendingSegment> segments;                        // 0 or 1
  std::unique_ptr<rt::Buffer> residual_keys, residual_values;  // when the layer has none yet
  uint32_t quantized = 0, residual = 0;                        // the layer's counts afterwards
  // Mixed layers: the full and window stores when the layer has none yet, the count afterwards.
  std::unique_ptr<rt::Buffer> full_keys, full_values, window_keys, window_values;
  uint32_t count = 0;
};

// The KV heads of one layer by policy, each list increasing.
struct HeadRoute {
  std::vector<uint32_t> preset, full, window;
  bool mixed() const { return !full.empty() || !window.empty(); }
};

// Device scratch shared by all layers and sequences. Operations reuse it one after another: each
// recorded operation opens with a barrier, so work recorded in order and submitted in order on
// one queue never overlaps its use.
struct Scratch {
  std::unique_ptr<KeyWorkspace> keys;  // key quantization and decode
  // Quantization intermediates, sized for the largest segment: the values' 2-bit fields (before
  // trit packing) and mins, the 1-bit streams' mins.
  std::unique_ptr<rt::Buffer> value_fields, value_mins, stream_mins;
  std::unique_ptr<rt::Buffer> convert_keys, convert_values;  // fp32 input rounded to fp16
  std::unique_ptr<rt::Buffer> stp_dense;  // STP: both parts' tokens gathered, protected first
  std::unique_ptr<rt::Buffer> check;           // NaN/Inf scan of a synchronous call
  std::unique_ptr<rt::Buffer> recorded_check;  // the same, accumulated over recorded calls
  std::unique_ptr<rt::Buffer> q, out, partials, decoded_keys, decoded_values;
  std::unique_ptr<rt::Buffer> batch_keys, batch_values;  // host input of append_batch
  std::shared_ptr<JointFlush> joint;                      // batched flushes (cache_batch_flush.cpp)
  std::vector<std::shared_ptr<JointFlush>> retired_joint;  // outgrown, released with `retired`
  // Mixed layers: one token's K and V (host appends), the preset heads' K and V gathered out of
  // the input (prefill) or decoded (dequantize), the query and output rows of each policy's pass.
  std::unique_ptr<rt::Buffer> route_token, route_keys, route_values, route_rows;
  // Dequantize of a truncated layer: a masked segment decoded whole before its visible prefix
  // is copied out.
  std::unique_ptr<rt::Buffer> masked_keys, masked_values;
  // Extend: the tokens its residual flushes quantize, gathered (the old residual's, then the input's).
  std::unique_ptr<rt::Buffer> extend_keys, extend_values;
  // Buffers replaced by larger ones while recorded work may still read them: released by
  // Cache::release_retired(), or at once by synchronous calls when nothing was recorded.
  std::vector<std::unique_ptr<rt::Buffer>> retired;
  bool recorded = false;  // some operation was recorded since the last release_retired()
};

// A device buffer of at least `bytes`: whole 32-bit words (the shaders read words) and never empty
// (Vulkan allows no zero-sized buffer). Every buffer the cache holds is made here, so a loaded cache
// allocates exactly what a written one does.
inline std::unique_ptr<rt::Buffer> new_buffer(const std::shared_ptr<rt::Context>& ctx, uint64_t bytes) {
  return std::make_unique<rt::Buffer>(ctx, std::max<uint64_t>((bytes + 3) / 4 * 4, 16));
}

// The NaN/Inf scan's result buffer: {first flat index, count} for keys, then for values.
struct CheckResult {
  uint32_t first_key = ~0u, key_count = 0, first_value = ~0u, value_count = 0;
};

}  // namespace vidkv::cache_detail

namespace vidkv {

struct Cache::Impl {
  Impl(std::shared_ptr<rt::Context> ctx, const CacheGeometry& g, const CacheSettings& s, uint32_t max_tokens);

  std::shared_ptr<rt::Context> ctx;
  CacheGeometry geometry;
  CacheSettings settings;
  uint32_t max_tokens = 0;
  GpuQuantizer quantizer;
  GpuKeyQuantizer keys;
  GpuAttention attention;
  rt::PipelineSet pipelines;  // cache_input.cpp's shaders
  rt::CommandRunner runner;
  cache_detail::Scratch scratch;
  std::map<uint32_t, cache_detail::Sequence> sequences;
  uint32_t next_id = 1;
  std::vector<cache_detail::HeadRoute> routes;  // per layer, from settings.head_policies

  bool fp16() const { return settings.key_mode == CacheSettings::KeyMode::fp16; }
  uint64_t token_halves() const { return uint64_t(geometry.kv_heads) * geometry.head_dim; }
  uint64_t token_bytes() const { return token_halves() * 2; }
  uint32_t residual_capacity() const { return fp16() ? max_tokens : settings.residual_length; }
  // KV heads of a layer's preset part (all of them unless the layer is mixed), and the bytes of
  // one of its tokens' K (or V).
  uint32_t part_heads(const cache_detail::Layer& layer) const {
    return layer.mixed ? layer.preset_heads : geometry.kv_heads;
  }
  uint64_t part_token_bytes(const cache_detail::Layer& layer) const {
    return uint64_t(part_heads(layer)) * geometry.head_dim * 2;
  }
  // KV heads of a segment (0 means all of them; segments made by the cache or loaded from a
  // saved one set it).
  uint32_t seg_heads(const cache_detail::Segment& s) const { return s.heads ? s.heads : geometry.kv_heads; }
  // A new sequence's layers, each knowing its route.
  cache_detail::Sequence make_sequence() const;
  // The most tokens one segment can hold: a whole prefill or one residual flush.
  uint32_t max_segment_tokens() const;
  // The key spec the attention reads: settings.keys for VidKV keys, nbits 2 (every channel
  // anomalous, identity table) for plain 2-bit keys.
  KeySpec key_spec() const;
  QuantSpec value_spec() const;
  ValueFormat value_format() const;

  // Lookups that throw Error(invalid_argument) naming the id / layer.
  cache_detail::Sequence& sequence(uint32_t id);
  const cache_detail::Sequence& sequence(uint32_t id) const;
  cache_detail::Layer& layer(uint32_t id, uint32_t layer);
  const cache_detail::Layer& layer(uint32_t id, uint32_t layer) const;

  // --- cache_layer.cpp: preparing, recording and committing writes ---
  cache_detail::PendingWrite prepare_prefill(const cache_detail::Layer& layer, uint32_t tokens, ElementType type,
                                             const cache_detail::StpPlan& stp);
  // `keys`/`values`: the caller's [tokens][kv_heads][head_dim] input of `type`.
  void record_prefill(VkCommandBuffer cmd, const cache_detail::Layer& layer, cache_detail::PendingWrite& pending,
                      const rt::BufferView& keys, const rt::BufferView& values, ElementType type, uint32_t tokens,
                      const rt::BufferView& check);
  cache_detail::PendingWrite prepare_append(const cache_detail::Layer& layer);
  // `keys`/`values`: one fp16 token each, copied into the residual; empty views when the token
  // is already in place (the host path uploads it there first).
  void record_append(VkCommandBuffer cmd, const cache_detail::Layer& layer, cache_detail::PendingWrite& pending,
                     const rt::BufferView& key, const rt::BufferView& value, const rt::BufferView& check);
  void commit(cache_detail::Layer& layer, cache_detail::PendingWrite& pending, bool prefill);
  // An append's flush alone (its token already in the residual): quantizes the residual into the
  // pending segment (cache_batch.cpp's appends copy their tokens first, all together).
  void record_flush(VkCommandBuffer cmd, const cache_detail::Layer& layer, cache_detail::PendingWrite& pending);
  // The flushes of a batched append (cache_batch_flush.cpp): those that can, quantized together.
  void record_flushes(VkCommandBuffer cmd, const std::vector<cache_detail::Layer*>& layers,
                      std::vector<cache_detail::PendingWrite>& pending);
  // The residual buffers a write uses: the layer's, or the pending new ones.
  rt::BufferView residual_view(const cache_detail::Layer& layer, const cache_detail::PendingWrite& pending,
                               bool keys) const;

  // --- cache_layer.cpp: reads ---
  // The device buffers of a layer's preset part as the attention reads them (no segment: the
  // residual alone, the fp16 path).
  QuantizedLayerBuffers layer_buffers(const cache_detail::Layer& layer) const;
  // causal > 0: q and out hold that many queries, the layer's newest tokens, each attending over
  // the positions up to its own (GpuAttention::record_vidkv); not for mixed layers.
  void record_attention(VkCommandBuffer cmd, const cache_detail::Layer& layer, const rt::BufferView& q,
                        const rt::BufferView& out, float scale, uint32_t causal = 0);
  void record_dequantize(VkCommandBuffer cmd, const cache_detail::Layer& layer, const rt::BufferView& keys,
                         const rt::BufferView& values);
  // The same over the preset part only ([tokens][part_heads][dim]; q and out of its query heads).
  void record_part_attention(VkCommandBuffer cmd, const cache_detail::Layer& layer, const AttentionGeometry& geometry,
                             const rt::BufferView& q, const rt::BufferView& out, uint32_t causal = 0);
  void record_part_dequantize(VkCommandBuffer cmd, const cache_detail::Layer& layer, const rt::BufferView& keys,
                              const rt::BufferView& values);

  // --- cache_heads.cpp: mixed layers (per-head policies) ---
  uint32_t window_capacity() const { return settings.head_policies.sink + settings.head_policies.recent; }
  // The window slot of token `position` (sink slots first, then a ring of `recent` slots).
  uint32_t window_slot(uint32_t position) const;
  // The token a window slot holds when the layer holds `count` tokens (slot < min(count, capacity)).
  uint32_t window_position(uint32_t slot, uint32_t count) const;
  void prepare_routes(const cache_detail::Layer& layer, cache_detail::PendingWrite& pending, uint32_t count);
  // Prefill of a mixed layer from fp16 `keys`/`values` [tokens][kv_heads][dim]: gathers the
  // preset heads into the route scratch (returned, for the preset part) and writes the full and
  // window stores.
  std::pair<rt::BufferView, rt::BufferView> record_route_prefill(VkCommandBuffer cmd, const cache_detail::Layer& layer,
                                                                 cache_detail::PendingWrite& pending,
                                                                 const rt::BufferView& keys,
                                                                 const rt::BufferView& values, uint32_t tokens);
  // Append to a mixed layer: copies one token [kv_heads][dim] to each policy's store.
  void record_route_append(VkCommandBuffer cmd, const cache_detail::Layer& layer,
                           cache_detail::PendingWrite& pending, const rt::BufferView& key, const rt::BufferView& value);
  void record_route_attention(VkCommandBuffer cmd, const cache_detail::Layer& layer,
                              const rt::BufferView& q, const rt::BufferView& out, float scale);
  void record_route_dequantize(VkCommandBuffer cmd, const cache_detail::Layer& layer,
                               const rt::BufferView& keys, const rt::BufferView& values);
  // Capacity of one of a mixed layer's full stores (keys or values: max_tokens slots of its full
  // heads, like the fp16 preset's) and window stores (sink + recent slots of its window heads).
  uint64_t full_store_bytes(const cache_detail::Layer& layer) const {
    return uint64_t(max_tokens) * routes[layer.index].full.size() * geometry.head_dim * 2;
  }
  uint64_t window_store_bytes(const cache_detail::Layer& layer) const {
    return uint64_t(window_capacity()) * routes[layer.index].window.size() * geometry.head_dim * 2;
  }
  // Bytes a mixed layer holds in its full and window stores (K and V, as allocated).
  uint64_t full_bytes(const cache_detail::Layer& layer) const;
  uint64_t window_bytes(const cache_detail::Layer& layer) const;

  // --- cache_stp.cpp ---
  // The split of a prefill of `tokens` tokens (checked: visual span inside the quantized part,
  // scores finite, list valid); inactive when the settings have no STP. Throws naming the problem.
  cache_detail::StpPlan plan_stp(uint32_t tokens, const CacheStpInput* input) const;
  // Allocates the protected part and the token map of an STP segment (segment.values is then
  // the other tokens' part).
  void prepare_stp_values(cache_detail::Segment& segment, const TokenSplit& split);
  // Gathers each part's tokens out of fp16 `values` [T][H][D] and quantizes them.
  void record_stp_values(VkCommandBuffer cmd, cache_detail::Segment& segment, const rt::BufferView& values);
  // Decodes both parts and scatters them to their positions in fp16 `out` [T][H][D].
  void record_stp_decode(VkCommandBuffer cmd, const cache_detail::Segment& segment, const rt::BufferView& out);
  // A device copy of a token list, kept (retired) until the work that reads it has completed.
  rt::BufferView transient_list(const std::vector<uint32_t>& tokens);

  // --- cache_input.cpp ---
  // fp32 -> fp16 of `halves` elements (into the conversion scratch when `type` is f32); returns
  // the fp16 views the quantization reads.
  std::pair<rt::BufferView, rt::BufferView> record_convert(VkCommandBuffer cmd, const rt::BufferView& keys,
                                                           const rt::BufferView& values, ElementType type,
                                                           uint64_t halves);
  // Scans `halves` fp16 elements of each input for NaN/Inf into `check` (CheckResult layout).
  void record_scan(VkCommandBuffer cmd, const rt::BufferView& keys, const rt::BufferView& values, uint64_t halves,
                   const rt::BufferView& check);
  // Synchronous calls: reset the check buffer, then after the run throw Error(invalid_argument)
  // naming the first non-finite position (`first_token`: the position of the input's token 0).
  rt::BufferView begin_check();
  void finish_check(const std::string& what, uint32_t first_token) const;
  rt::BufferView recorded_check();
  uint64_t recorded_nonfinite() const;

  // --- scratch ---
  void ensure_quantize_scratch();
  void ensure_convert_scratch();
  // A scratch buffer of at least `bytes`, replaced (and the old one retired) when smaller.
  rt::Buffer& grow(std::unique_ptr<rt::Buffer>& buffer, uint64_t bytes);
  // Runs `record` synchronously (submit and wait), then frees retired scratch when no recorded
  // work can still refer to it.
  void run(const std::function<void(VkCommandBuffer)>& record);
  // Marks the start of an operation recorded into a caller's command buffer.
  void begin_recording(VkCommandBuffer cmd);

  // --- cache_extend.cpp: many tokens at once ---
  cache_detail::PendingWrite prepare_extend(const cache_detail::Layer& layer, uint32_t tokens, ElementType type);
  // `keys`/`values`: the caller's [tokens][kv_heads][head_dim] input of `type`.
  void record_extend(VkCommandBuffer cmd, const cache_detail::Layer& layer, cache_detail::PendingWrite& pending,
                     const rt::BufferView& keys, const rt::BufferView& values, ElementType type, uint32_t tokens,
                     const rt::BufferView& check);
  // commit() for an extend: a residual it replaced is retired (recorded work may still read it).
  void commit_extend(cache_detail::Layer& layer, cache_detail::PendingWrite& pending);
};

}  // namespace vidkv

namespace vidkv::cache_detail {

// A new segment of `tokens` tokens of the layer's preset part (cache_layer.cpp); it chooses the
// layer's channel table (new_channels) when `choose_channels`.
PendingSegment prepare_segment(Cache::Impl& m, const Layer& layer, uint32_t tokens, const TokenSplit* stp,
                               bool choose_channels);
// Records the quantization of `tokens` fp16 tokens [T][H][D] of `k`/`v` into `p`, with the channel
// table p chooses, else `chosen` (an earlier pending segment's), else the layer's.
void record_segment(Cache::Impl& m, VkCommandBuffer cmd, const Layer& layer, PendingSegment& p,
                    const rt::BufferView& k, const rt::BufferView& v, uint32_t tokens,
                    const rt::Buffer* chosen = nullptr);

}  // namespace vidkv::cache_detail
