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
//  - extend(T tokens): exactly T appends (flushes included), in one operation; attention_causal
//    reads the newest tokens' queries against the cache as stored, each up to its own position.
//  - prefill is accepted once per (sequence, layer), and only before any append or extend to it.
//  - per-head policies (settings.head_policies, head_policy.hpp): a layer whose KV heads do not
//    all take the preset keeps the preset heads as above (gathered) and the others in fp16:
//    `full` heads every token, `window` heads the first sink and the newest recent tokens only
//    (the oldest of those is overwritten as each token arrives). Attention runs one pass per
//    policy in the layer over its heads' query heads. dequantize() returns zeros for the tokens a
//    window head no longer holds. Saved caches keep the policies and every store (bit-exact).
//
// Every public function checks all of its arguments before it touches any state and throws
// vidkv::Error naming the bad value; after an error the cache is exactly as before (new device
// data is built aside and only committed when everything has succeeded).
//
// Input values must be finite: a synchronous prefill or append whose K or V holds a NaN or Inf
// (after rounding fp32 input to fp16) is rejected with the first position (token, head, channel)
// and changes nothing. Recorded operations cannot see their data; they count such values on the
// device instead (stats().nonfinite_inputs), and the groups holding them decode to unspecified
// values.
//
// Synchronous and recorded operation. Each operation exists synchronously (vidkv records into its
// own command buffer, submits on the context's queue and waits) and, taking device buffers, as
// record_* into the caller's command buffer, submitting nothing. For recorded operations:
//  - the cache's host-side state (tokens, segments, stats) changes at record time, describing the
//    cache as it will be once the work has executed; the caller submits recorded work in the order
//    it was recorded, on one queue (or otherwise executes it in that order), and does not call a
//    synchronous operation, free_sequence(), or destroy the cache while recorded work is pending;
//  - before the recorded work, the caller makes its writes of the inputs visible to
//    COMPUTE_SHADER and TRANSFER reads (prefill and append copy part of their input); after it,
//    a barrier from COMPUTE_SHADER and TRANSFER writes to the caller's own reads of the outputs
//    (attention writes `out` in a shader; dequantize copies the residual);
//  - each recorded operation opens with its own barrier against earlier compute and transfer work
//    (vidkv's scratch is shared by operations), so several may go into one command buffer;
//  - scratch buffers outgrown while recorded work may still read them are kept until
//    release_retired(), which the caller calls once all recorded work has completed.
// If a record_* call throws part-way (a pipeline or allocation failure), the cache is unchanged but
// the command buffer may hold part of the work: reset it rather than submitting it.
//
// Threads. Separate Cache objects may be used from separate threads at the same time, whether
// they share one rt::Context or each have their own: the context's queue submissions are locked
// (Context::submit; VkFFT's plan setup takes the same lock), its pipeline cache is internally
// synchronized, and every Cache has its own pipelines, FFT plans, command buffer and scratch. One
// Cache is used by one thread at a time (calls on one Cache, const ones included, must not
// overlap); the C API's thread-local error message follows the calling thread. With an engine's
// device (Context::wrap), the engine's own submissions to that queue must not overlap vidkv's:
// hold Context::lock_queue() around them.
//
// Not supported yet (clear errors): ternary values in 2-bit fields (trits_base3 = false), group
// sizes other than 32, 64 and 128 for quantized presets (the fused attention reads no other).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vidkv/export.hpp"
#include "vidkv/gpu_quantizer.hpp"
#include "vidkv/presets.hpp"
#include "vidkv/runtime/buffer.hpp"
#include "vidkv/runtime/context.hpp"
#include "vidkv/stp.hpp"
#include "vidkv/vidkv_keys.hpp"

namespace vidkv {

struct CacheGeometry {
  uint32_t layers = 0;
  uint32_t kv_heads = 0;
  uint32_t q_heads = 0;   // a multiple of kv_heads, at most 16 query heads per KV head
  uint32_t head_dim = 0;  // a multiple of 16 from 64 to 256 (80, 96, 112 included)
};

// Bytes of one part (keys or values) of the quantized store, as allocated and used.
struct CachePartBytes {
  uint64_t codes = 0;   // code words (trits 5 per byte for 1.58-bit values)
  uint64_t scales = 0;  // fp16 scales
  uint64_t mins = 0;    // fp16 mins (none for 1-bit streams and ternary values)
  uint64_t maps = 0;    // the uint32 channel table [units][dim] per layer the attention reads
  uint64_t total() const { return codes + scales + mins + maps; }
};

// Device memory of one per-head policy (head_policy.hpp), summed over sequences.
struct CachePolicyStats {
  uint32_t heads = 0;             // (layer, KV head) pairs with this policy, in the cache's geometry
  uint64_t tokens = 0;            // tokens held x heads holding them, summed over sequences
  uint64_t bytes = 0;             // allocated for them: vidkv the quantized store + its residual
                                  // buffers, full max_tokens fp16 slots, window sink + recent slots
  uint64_t fp16_equivalent_bytes = 0;  // what their tokens would take as fp16 K + V
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
  uint64_t nonfinite_inputs = 0;  // NaN/Inf values seen by recorded prefills and appends
  // Per head policy, indexed by HeadPolicy (vidkv, full, window). Without per-head policies every
  // head is `vidkv`. The parts above (keys, values, residual) describe the vidkv heads' store.
  CachePolicyStats policies[3];
};

// Semantic token protection input of a prefill (settings.stp): the visual tokens whose values
// stay at 2 bits are the protected_count(p, visual_tokens) highest `scores` (stp.hpp: rounded to
// whole groups, ties to the lower position), or exactly `protected_tokens`. Positions count from
// the prefill's first token; all protected tokens lie in the prefill's quantized part (its first
// tokens - tokens % group_size tokens), whose other tokens take 1.58 bits. Tokens appended later
// are never protected.
struct CacheStpInput {
  uint32_t first_visual = 0;   // position of the first visual token
  uint32_t visual_tokens = 0;  // how many follow it (the span the scores describe)
  std::vector<float> scores;   // one per visual token (mean dot product with the prompt), or empty
  std::vector<uint32_t> protected_tokens;  // explicit positions (increasing), used when scores is empty
};

// One segment read back to the host (tests, tools). trits: the values' packed trits when ternary
// (values.codes then holds the unpacked 2-bit fields and values.mins -1).
struct CacheSegmentHost {
  QuantizedKeys keys;  // spec, shape, splits, anomalous, normal (no ranges or coefficients)
  QuantizedTensor values;
  std::vector<uint8_t> trits;
  // STP segments: values (and trits) hold the other tokens, gathered; values_high the protected
  // tokens' 2-bit values; split which is which. Empty otherwise.
  TokenSplit split;
  QuantizedTensor values_high;
};

struct CacheFileContents;  // cache_file.hpp

class VIDKV_API Cache {
 public:
  // Throws Error naming the bad value: geometry (zero layers or heads, q_heads not a multiple of
  // kv_heads or more than 16 per KV head, head_dim not a multiple of 16 in 64..256), settings (validate() plus the
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

  // Fork and truncate (beam search, speculative decoding, several questions over one prefix).
  // fork_sequence returns a new sequence holding what `source` holds: it shares the source's
  // quantized segments and channel tables (they never change; freed with their last user, so
  // freeing either sequence leaves the other intact; stats() counts them once) and copies the
  // residual and a mixed layer's full and window stores on the device. The two then take
  // appends independently. Throws Error(invalid_argument) for an unknown or freed source.
  // truncate_sequence keeps the first `tokens` tokens of every layer (rolls back rejected
  // speculative tokens). The sequence's length is the most tokens any of its layers holds (layers
  // written one after another in a step may differ); `tokens` above it is an error, equal to it a
  // no-op, and a layer holding no more than `tokens` is left as it is. A cut inside the residual
  // shrinks it (the layer is then bit for bit one fed that many tokens); a cut inside a quantized
  // segment drops the later segments, empties the residual and masks the segment's tail (not
  // re-quantized): attention and dequantize read only its first tokens, later appends fill a new
  // residual and the next flush makes a new segment. A cut to 0 tokens also drops the layer's
  // channel table (its next first segment chooses again); prefill stays refused where it was.
  // A mixed layer's window heads cannot give back tokens their ring has overwritten: a cut is an
  // error there once the layer holds more than sink + recent tokens, unless it keeps at most the
  // sink. A sequence with a masked segment cannot be saved or serialized (Error(invalid_argument):
  // the format holds whole segments). Errors name the problem and change nothing. Both are
  // synchronous operations (not while recorded work is pending: a dropped segment may be freed).
  uint32_t fork_sequence(uint32_t source);
  void truncate_sequence(uint32_t sequence, uint32_t tokens);

  // K and V: fp16 [tokens][kv_heads][head_dim].
  void prefill(uint32_t sequence, uint32_t layer, const std::vector<uint16_t>& keys,
               const std::vector<uint16_t>& values, uint32_t tokens);
  // Device input, same layout, ElementType::f16 or f32 (rounded to fp16 on the device, to nearest
  // even, first: the result equals the fp16 prefill of the rounded values). Views at offsets the
  // device can bind (minStorageBufferOffsetAlignment).
  void prefill(uint32_t sequence, uint32_t layer, const rt::BufferView& keys, const rt::BufferView& values,
               ElementType type, uint32_t tokens);
  // With semantic token protection (required exactly when settings().stp).
  void prefill(uint32_t sequence, uint32_t layer, const std::vector<uint16_t>& keys,
               const std::vector<uint16_t>& values, uint32_t tokens, const CacheStpInput& stp);
  void prefill(uint32_t sequence, uint32_t layer, const rt::BufferView& keys, const rt::BufferView& values,
               ElementType type, uint32_t tokens, const CacheStpInput& stp);
  // One token: fp16 [kv_heads][head_dim] each, from the host or in device buffers.
  void append(uint32_t sequence, uint32_t layer, const std::vector<uint16_t>& key, const std::vector<uint16_t>& value);
  void append(uint32_t sequence, uint32_t layer, const rt::BufferView& key, const rt::BufferView& value);
  // Many tokens at once, at any time (before or after a prefill, after appends: a follow-up
  // prompt): K and V fp16 [tokens][kv_heads][head_dim] from the host, or device views of
  // ElementType f16 or f32 (rounded to fp16 first, as a prefill's). Stores bit for bit what
  // `tokens` appends would, flushes in the middle included (each residual_length tokens quantized
  // as one new segment, exactly as append's flush), in one submission. Counts as an append (a
  // prefill is refused afterwards). Throws for 0 tokens, more than max_tokens in all, and layers
  // with per-head policies (full or window heads: append token by token there).
  void extend(uint32_t sequence, uint32_t layer, const std::vector<uint16_t>& keys,
              const std::vector<uint16_t>& values, uint32_t tokens);
  void extend(uint32_t sequence, uint32_t layer, const rt::BufferView& keys, const rt::BufferView& values,
              ElementType type, uint32_t tokens);

  // q: fp32 [q_heads][head_dim]; scale 0 means 1 / sqrt(head_dim). Returns fp32 [q_heads][head_dim].
  std::vector<float> attention(uint32_t sequence, uint32_t layer, const std::vector<float>& q, float scale = 0.0f);
  // The same with q and out in device buffers (fp32 [q_heads][head_dim] each).
  void attention(uint32_t sequence, uint32_t layer, const rt::BufferView& q, const rt::BufferView& out,
                 float scale = 0.0f);
  // Causal attention of the layer's newest `tokens` tokens (chunked prefill, a follow-up prompt,
  // speculative verification): q and out fp32 [tokens][q_heads][head_dim]; query i stands at
  // position L - tokens + i (L = tokens(sequence, layer)) and attends over positions 0 .. L - tokens
  // + i, reading the cache as it is stored now (tokens a flush has quantized are read quantized).
  // One set of dispatches for all queries. Throws for 0 tokens, more than L or 65535, and layers
  // with per-head policies.
  std::vector<float> attention_causal(uint32_t sequence, uint32_t layer, const std::vector<float>& q,
                                      uint32_t tokens, float scale = 0.0f);
  void attention_causal(uint32_t sequence, uint32_t layer, const rt::BufferView& q, const rt::BufferView& out,
                        uint32_t tokens, float scale = 0.0f);

  // Batched decode (cache_batch.cpp): one step of many sequences in one call and one pass.
  // `sequences`: distinct ids (at least one, at most 8192); entry i of keys/values/q/out belongs to
  // sequences[i]. append_batch: K and V fp16 [count][kv_heads][head_dim]; every token copied in one
  // pass, then the sequences whose residual fills are quantized together, as one tensor of
  // (sequence, KV head) units (a sequence's first flush, which chooses its channels, alone).
  // attention_batch: q and out fp32
  // [count][q_heads][head_dim]; all the sequences' segment and residual passes with no barrier
  // between them, then one reduction. Results equal the per-sequence calls in order: appends bit
  // for bit, attention bit for bit too (the same passes; the contract is 1e-5 relative). Checks are
  // those of append/attention for every entry, plus: no sequence twice, count > 0; any error
  // changes nothing (a NaN/Inf names its batch entry as the token). In a layer with per-head
  // policies the sequences run one after another (each as append/attention).
  void append_batch(uint32_t layer, const std::vector<uint32_t>& sequences, const std::vector<uint16_t>& keys,
                    const std::vector<uint16_t>& values);
  void append_batch(uint32_t layer, const std::vector<uint32_t>& sequences, const rt::BufferView& keys,
                    const rt::BufferView& values);
  std::vector<float> attention_batch(uint32_t layer, const std::vector<uint32_t>& sequences,
                                     const std::vector<float>& q, float scale = 0.0f);
  void attention_batch(uint32_t layer, const std::vector<uint32_t>& sequences, const rt::BufferView& q,
                       const rt::BufferView& out, float scale = 0.0f);
  void record_append_batch(VkCommandBuffer cmd, uint32_t layer, const std::vector<uint32_t>& sequences,
                           const rt::BufferView& keys, const rt::BufferView& values);
  void record_attention_batch(VkCommandBuffer cmd, uint32_t layer, const std::vector<uint32_t>& sequences,
                              const rt::BufferView& q, const rt::BufferView& out, float scale = 0.0f);

  // Decoded K and V, fp16 [tokens][kv_heads][head_dim]: segments in order, then the residual.
  void dequantize(uint32_t sequence, uint32_t layer, std::vector<uint16_t>& keys, std::vector<uint16_t>& values);
  void dequantize(uint32_t sequence, uint32_t layer, const rt::BufferView& keys, const rt::BufferView& values);

  // Recorded into the caller's command buffer (see "Synchronous and recorded operation" above);
  // arguments as the synchronous forms with device buffers.
  void record_prefill(VkCommandBuffer cmd, uint32_t sequence, uint32_t layer, const rt::BufferView& keys,
                      const rt::BufferView& values, ElementType type, uint32_t tokens);
  void record_prefill(VkCommandBuffer cmd, uint32_t sequence, uint32_t layer, const rt::BufferView& keys,
                      const rt::BufferView& values, ElementType type, uint32_t tokens, const CacheStpInput& stp);
  void record_append(VkCommandBuffer cmd, uint32_t sequence, uint32_t layer, const rt::BufferView& key,
                     const rt::BufferView& value);
  void record_attention(VkCommandBuffer cmd, uint32_t sequence, uint32_t layer, const rt::BufferView& q,
                        const rt::BufferView& out, float scale = 0.0f);
  void record_extend(VkCommandBuffer cmd, uint32_t sequence, uint32_t layer, const rt::BufferView& keys,
                     const rt::BufferView& values, ElementType type, uint32_t tokens);
  void record_attention_causal(VkCommandBuffer cmd, uint32_t sequence, uint32_t layer, const rt::BufferView& q,
                               const rt::BufferView& out, uint32_t tokens, float scale = 0.0f);
  void record_dequantize(VkCommandBuffer cmd, uint32_t sequence, uint32_t layer, const rt::BufferView& keys,
                         const rt::BufferView& values);
  // Frees scratch buffers that recorded work may have referred to; call once it has completed.
  void release_retired();

  CacheStats stats() const;

  // Segments and residual as stored; in a layer with per-head policies they hold only the layer's
  // `vidkv` heads (in increasing head order), the full and window heads being fp16 apart. A
  // segment whose tail truncate_sequence masked is returned whole, as stored.
  uint32_t segment_count(uint32_t sequence, uint32_t layer) const;
  CacheSegmentHost segment_host(uint32_t sequence, uint32_t layer, uint32_t index) const;
  // The fp16 residual, [residual tokens][kv_heads][head_dim] each.
  void residual_host(uint32_t sequence, uint32_t layer, std::vector<uint16_t>& keys,
                     std::vector<uint16_t>& values) const;

  const CacheGeometry& geometry() const;
  const CacheSettings& settings() const;
  uint32_t max_tokens() const;
  // Attention on the portable shaders even where the subgroup-of-8 ones apply
  // (GpuAttention::set_portable): tests cover the GPU path on a CPU driver with it.
  void set_portable_attention(bool portable);

  // Saved caches (cache_file.hpp; the layout is docs/cache-format.md). save writes every sequence,
  // or one, with the geometry, settings and max_tokens; the file is written beside `path` and
  // renamed over it when complete. load makes a new cache with the file's geometry, settings and
  // max_tokens holding all its sequences under their saved ids. load_sequences adds the file's
  // sequences to this cache, whose geometry and settings must equal the file's (every layer within
  // this cache's max_tokens), and returns their new ids in file order. A damaged file throws
  // Error(corrupt_data) naming the problem (wrong magic, format version, truncation, checksum,
  // counts against geometry), one that does not fit throws Error(invalid_argument), an unreadable
  // one Error(io_error); the whole file is checked before anything is uploaded, and nothing is
  // added on any error. Saved and loaded segments and residuals are bit-identical. All four are
  // synchronous operations (not while recorded work is pending).
  void save(const std::string& path) const;
  void save(const std::string& path, uint32_t sequence) const;
  static std::unique_ptr<Cache> load(const std::string& path, std::shared_ptr<rt::Context> context);
  std::vector<uint32_t> load_sequences(const std::string& path);
  // One sequence as bytes, in the saved-cache format (a file that save(path, sequence) would write:
  // geometry, settings, max_tokens and the sequence), to move it between processes or machines
  // (disaggregated prefill and decode). deserialize_sequence adds such bytes' sequence to this
  // cache under a new id and returns it; the checks and errors are load_sequences' (corrupt_data
  // for damaged bytes, invalid_argument for another geometry, other settings, more tokens than
  // max_tokens or bytes holding other than one sequence); nothing is added on any error.
  std::vector<uint8_t> serialize_sequence(uint32_t sequence) const;
  uint32_t deserialize_sequence(const uint8_t* bytes, size_t size);
  // The ids of the sequences held, increasing.
  std::vector<uint32_t> sequence_ids() const;

  struct Impl;

 private:
  std::vector<uint32_t> add_sequences(const CacheFileContents& contents, const std::string& source);

  std::unique_ptr<Impl> impl_;
};

}  // namespace vidkv
