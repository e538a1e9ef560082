#pragma once
// Internal state of vidkv::Cache, shared by cache.cpp (public API and argument checks),
// cache_layer.cpp (quantizing segments, residual, attention) and cache_stats.cpp (stats, reads).
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gpu_packed_io.hpp"
#include "vidkv/cache.hpp"
#include "vidkv/gpu_attention.hpp"
#include "vidkv/gpu_keys.hpp"
#include "vidkv/gpu_quantizer.hpp"
#include "vidkv/runtime/commands.hpp"

namespace vidkv::cache_detail {

// One quantized segment on the device. Only the arrays the attention reads are kept: the 1-bit
// streams' mins and the ternary values' mins and 2-bit fields are scratch of the quantization.
struct Segment {
  uint32_t tokens = 0;
  gpu::DevicePacked key_anomalous;  // 2-bit keys: all channels, in channel order
  gpu::DevicePacked key_normal;     // mins: a 16-byte placeholder
  gpu::DevicePacked values;         // ternary: codes hold trits 5 per byte, mins a placeholder
  CachePartBytes key_bytes, value_bytes;  // used bytes (maps apart, per layer)
};

struct Layer {
  bool prefilled = false;
  bool appended = false;
  std::unique_ptr<rt::Buffer> channels;  // uint32 [units][dim]; null until the first segment
  std::vector<Segment> segments;
  std::unique_ptr<rt::Buffer> residual_keys, residual_values;  // null until first used
  uint32_t quantized = 0;  // tokens in segments
  uint32_t residual = 0;   // tokens in the residual
  uint32_t tokens() const { return quantized + residual; }
};

struct Sequence {
  std::vector<Layer> layers;
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
  rt::CommandRunner runner;
  std::unique_ptr<KeyWorkspace> workspace;  // sized for max_tokens, made on first key quantization
  std::map<uint32_t, cache_detail::Sequence> sequences;
  uint32_t next_id = 1;
  // Attention scratch, grown as needed and reused across calls.
  std::unique_ptr<rt::Buffer> q_buffer, out_buffer, partials;

  bool fp16() const { return settings.key_mode == CacheSettings::KeyMode::fp16; }
  uint64_t token_halves() const { return uint64_t(geometry.kv_heads) * geometry.head_dim; }
  uint32_t residual_capacity() const { return fp16() ? max_tokens : settings.residual_length; }
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

  // cache_layer.cpp. `input_k`/`input_v` hold at least `tokens` fp16 tokens [T][H][D] from token
  // 0; quantizes them as one new segment (tokens a multiple of G). When the layer has no channel
  // table yet, the new one is returned in `new_channels` (select = true); nothing of `layer` is
  // modified.
  cache_detail::Segment quantize_segment(const cache_detail::Layer& layer, const rt::BufferView& input_k,
                                         const rt::BufferView& input_v, uint32_t tokens,
                                         std::unique_ptr<rt::Buffer>& new_channels);
  void ensure_residual(cache_detail::Layer& layer);
  // Prefill from device fp16 views (checked by the caller).
  void prefill_device(cache_detail::Layer& layer, const rt::BufferView& k, const rt::BufferView& v, uint32_t tokens);
  void append_token(cache_detail::Layer& layer, const std::vector<uint16_t>& k, const std::vector<uint16_t>& v);
  std::vector<float> attend(const cache_detail::Layer& layer, const std::vector<float>& q, float scale);
};

}  // namespace vidkv
