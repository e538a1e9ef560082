#pragma once
// The KV-cache runtime (DESIGN sections 2, 3.4, 4, 5): per sequence and layer, quantized segments
// (the prefill's whole groups, then one segment per residual flush) and an fp16 residual, with
// decode attention read straight from the packed segments (GpuAttention).
//
// Storage of one (sequence, layer):
//  - prefill(T tokens): the first T - T % G tokens become one segment; the T % G tail goes to the
//    fp16 residual. The first segment of a layer chooses the VidKV key channels (select = true)
//    and the layer keeps that table for every later segment (select = false): a sequence keeps
//    its prefill's choice. (A prefill shorter than G has no segment; the first flush chooses.)
//  - append(1 token): goes to the residual. When the residual holds residual_length tokens (a
//    multiple of G), all of them are quantized into a NEW segment and the residual is emptied.
//    Old segments are never re-quantized (DESIGN 3.4).
//  - fp16 preset: nothing is quantized; the whole sequence is one fp16 buffer of max_tokens
//    tokens, allocated at the layer's first prefill/append.
//  - prefill is accepted once per (sequence, layer), and only before any append to it.
//
// Every public function checks all of its arguments before it touches any state and throws
// vidkv::Error naming the bad value; after an error the cache is exactly as before (new device
// data is built aside and only committed when everything has succeeded).
//
// Operation is synchronous (each call submits and waits). Recording into a caller's command
// buffer is offered by the building blocks (GpuQuantizer, GpuKeyQuantizer, GpuAttention) but not
// by the cache yet. A Cache is not thread-safe: one caller at a time.
//
// Not supported yet (clear errors): semantic token protection (the k1.5-v1.58-stp preset or
// stp = true), ternary values in 2-bit fields (trits_base3 = false), group sizes other than 32
// for quantized presets (the fused attention reads groups of 32), fp32 device input to prefill.
#include <cstdint>
#include <memory>
#include <vector>

#include "vidkv/export.hpp"
#include "vidkv/gpu_quantizer.hpp"
#include "vidkv/presets.hpp"
#include "vidkv/runtime/buffer.hpp"
#include "vidkv/runtime/context.hpp"
#include "vidkv/vidkv_keys.hpp"

namespace vidkv {

struct CacheGeometry {
  uint32_t layers = 0;
  uint32_t kv_heads = 0;
  uint32_t q_heads = 0;   // a multiple of kv_heads, at most 8 query heads per KV head
  uint32_t head_dim = 0;  // 64, 128 or 256
};

// Bytes of one part (keys or values) of the quantized store, as allocated and used.
struct CachePartBytes {
  uint64_t codes = 0;   // code words (trits 5 per byte for 1.58-bit values)
  uint64_t scales = 0;  // fp16 scales
  uint64_t mins = 0;    // fp16 mins (none for 1-bit streams and ternary values)
  uint64_t maps = 0;    // the uint32 channel table [units][dim] per layer the attention reads
  uint64_t total() const { return codes + scales + mins + maps; }
};

struct CacheStats {
  uint32_t sequences = 0;
  uint64_t tokens = 0;            // all tokens held, summed over sequences and layers
  uint64_t quantized_tokens = 0;  // in segments
  uint64_t residual_tokens = 0;   // fp16 (for the fp16 preset: every token)
  uint32_t segments = 0;
  CachePartBytes keys, values;     // the quantized store, bytes used (DESIGN section 4)
  uint64_t residual_bytes = 0;     // fp16 K + V of the tokens held in residuals
  uint64_t residual_capacity_bytes = 0;  // fp16 K + V allocated for residuals
  // 8 x keys.total() / quantized key values, likewise values; 16 for the fp16 preset; 0 when
  // nothing is quantized yet. The residual is reported apart (residual_bytes).
  double key_bits = 0.0, value_bits = 0.0;
  uint64_t fp16_equivalent_bytes = 0;  // tokens x kv_heads x dim x 2 bytes x 2 (K and V)
};

// One segment read back to the host (tests, tools). trits: the values' packed trits when ternary
// (values.codes then holds the unpacked 2-bit fields and values.mins -1).
struct CacheSegmentHost {
  QuantizedKeys keys;  // spec, shape, splits, anomalous, normal (no ranges or coefficients)
  QuantizedTensor values;
  std::vector<uint8_t> trits;
};

class VIDKV_API Cache {
 public:
  // Throws Error naming the bad value: geometry (zero layers or heads, q_heads not a multiple of
  // kv_heads or more than 8 per KV head, head_dim not 64/128/256), settings (validate() plus the
  // limits above), max_tokens 0.
  Cache(std::shared_ptr<rt::Context> context, const CacheGeometry& geometry, const CacheSettings& settings,
        uint32_t max_tokens);
  ~Cache();
  Cache(const Cache&) = delete;
  Cache& operator=(const Cache&) = delete;

  uint32_t create_sequence();
  void free_sequence(uint32_t sequence);  // releases its device memory
  bool has_sequence(uint32_t sequence) const;
  uint32_t tokens(uint32_t sequence, uint32_t layer) const;

  // K and V: fp16 [tokens][kv_heads][head_dim].
  void prefill(uint32_t sequence, uint32_t layer, const std::vector<uint16_t>& keys,
               const std::vector<uint16_t>& values, uint32_t tokens);
  // Device input, same layout; only ElementType::f16 (f32 is rejected with Error(unsupported_bits)).
  void prefill(uint32_t sequence, uint32_t layer, const rt::BufferView& keys, const rt::BufferView& values,
               ElementType type, uint32_t tokens);
  // One token: fp16 [kv_heads][head_dim] each.
  void append(uint32_t sequence, uint32_t layer, const std::vector<uint16_t>& key, const std::vector<uint16_t>& value);

  // q: fp32 [q_heads][head_dim]; scale 0 means 1 / sqrt(head_dim). Returns fp32 [q_heads][head_dim].
  std::vector<float> attention(uint32_t sequence, uint32_t layer, const std::vector<float>& q, float scale = 0.0f);

  // Decoded K and V, fp16 [tokens][kv_heads][head_dim]: segments in order, then the residual.
  void dequantize(uint32_t sequence, uint32_t layer, std::vector<uint16_t>& keys, std::vector<uint16_t>& values);

  CacheStats stats() const;

  uint32_t segment_count(uint32_t sequence, uint32_t layer) const;
  CacheSegmentHost segment_host(uint32_t sequence, uint32_t layer, uint32_t index) const;
  // The fp16 residual, [residual tokens][kv_heads][head_dim] each.
  void residual_host(uint32_t sequence, uint32_t layer, std::vector<uint16_t>& keys,
                     std::vector<uint16_t>& values) const;

  const CacheGeometry& geometry() const;
  const CacheSettings& settings() const;
  uint32_t max_tokens() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace vidkv
