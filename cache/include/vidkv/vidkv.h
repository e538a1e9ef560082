/* The C API of vidkv's KV-cache runtime (vidkv/cache.hpp): opaque handles, status codes, no
 * exceptions. Every function returns VIDKV_OK or an error status; the message of the last error
 * on the calling thread is vidkv_last_error_message(). On error nothing is changed (the cache
 * checks every argument first) and output arguments are left untouched.
 *
 * Shapes: K and V are fp16 halves (uint16_t) [tokens][kv_heads][head_dim]; q and out are float
 * [q_heads][head_dim]. Grouped-query attention: query head h attends over KV head h / ratio, with
 * ratio = q_heads / kv_heads (query heads 0..ratio-1 share KV head 0, and so on), as in
 * transformers' repeat_kv; ratio 1 to 16 (vidkv_cache_create refuses more). The calls on host pointers are synchronous (submit and wait); the
 * record functions at the end record into an engine's command buffer. */
#ifndef VIDKV_VIDKV_H
#define VIDKV_VIDKV_H

#include <stddef.h>
#include <stdint.h>

#include "vidkv/export.hpp" /* plain preprocessor: VIDKV_API */

#ifdef __cplusplus
extern "C" {
#endif

typedef enum vidkv_status {
  VIDKV_OK = 0,
  VIDKV_ERROR_INVALID_ARGUMENT = 1,
  VIDKV_ERROR_UNSUPPORTED = 2,    /* bits, group size, STP, ... not offered */
  VIDKV_ERROR_BUFFER_TOO_SMALL = 3,
  VIDKV_ERROR_NO_DEVICE = 4,
  VIDKV_ERROR_DEVICE = 5,         /* Vulkan error, device lost, missing feature */
  VIDKV_ERROR_OUT_OF_MEMORY = 6,
  VIDKV_ERROR_INTERNAL = 7,       /* anything else */
  VIDKV_ERROR_IO = 8,             /* a file could not be opened, read or written */
  VIDKV_ERROR_CORRUPT_FILE = 9    /* a saved cache is damaged or not a vidkv cache file */
} vidkv_status;

typedef struct vidkv_context vidkv_context;
typedef struct vidkv_cache vidkv_cache;

typedef struct vidkv_stats {
  uint32_t sequences;
  uint32_t segments;
  uint64_t tokens, quantized_tokens, residual_tokens;
  uint64_t key_code_bytes, key_scale_bytes, key_min_bytes, key_map_bytes;
  uint64_t value_code_bytes, value_scale_bytes, value_min_bytes, value_map_bytes;
  uint64_t residual_bytes, residual_capacity_bytes, fp16_equivalent_bytes;
  double key_bits, value_bits; /* effective bits per quantized value (16 for the fp16 preset) */
  uint64_t nonfinite_inputs;   /* NaN/Inf values seen by recorded prefills and appends */
  /* Per head policy (index: VIDKV_POLICY_VIDKV, _FULL, _WINDOW; vidkv::CachePolicyStats): (layer,
   * head) pairs, tokens x heads held, bytes allocated, fp16 bytes of the same tokens. */
  uint32_t policy_heads[3];
  uint64_t policy_tokens[3], policy_bytes[3], policy_fp16_equivalent_bytes[3];
} vidkv_stats;

/* Per-head policies are set in the settings text (keys 'head_policies', 'head_scores',
 * 'sparsity', 'low_policy', 'high_policy', 'window_sink', 'window_recent'; see presets.hpp). */
enum { VIDKV_POLICY_VIDKV = 0, VIDKV_POLICY_FULL = 1, VIDKV_POLICY_WINDOW = 2 };

/* The message of the last failing call on this thread ("" when none). Valid until the next call. */
VIDKV_API const char* vidkv_last_error_message(void);

/* device: index or name substring, or NULL for the VIDKV_DEVICE variable / the default device. */
VIDKV_API vidkv_status vidkv_context_create(const char* device, vidkv_context** out);
VIDKV_API void vidkv_context_destroy(vidkv_context* ctx);

/* The lock vidkv takes around every submission to the context's queue (vkQueueSubmit needs
 * external synchronisation). An engine that submits to the same VkQueue (a wrapped device) from
 * its own threads while vidkv's synchronous calls may run holds it around those submissions. Not
 * recursive: call no synchronous vidkv function while holding it (they take it too). Unlocking
 * a queue that is not locked is VIDKV_ERROR_INVALID_ARGUMENT. */
VIDKV_API vidkv_status vidkv_lock_queue(vidkv_context* ctx);
VIDKV_API vidkv_status vidkv_unlock_queue(vidkv_context* ctx);

/* settings: a preset name ("fp16", "2bit", "kivi", "k1.5-v2", "k1.5-v1.58") or the original's
 * configuration dictionary text. The cache keeps the context alive. */
VIDKV_API vidkv_status vidkv_cache_create(vidkv_context* ctx, uint32_t layers, uint32_t kv_heads, uint32_t q_heads,
                                          uint32_t head_dim, const char* settings, uint32_t max_tokens,
                                          vidkv_cache** out);
VIDKV_API void vidkv_cache_destroy(vidkv_cache* cache);

VIDKV_API vidkv_status vidkv_sequence_create(vidkv_cache* cache, uint32_t* sequence);
VIDKV_API vidkv_status vidkv_sequence_free(vidkv_cache* cache, uint32_t sequence);
/* Fork and truncate (Cache::fork_sequence / truncate_sequence in cache.hpp). fork: *sequence
 * receives a new sequence holding what `source` holds, sharing its quantized segments (freed with
 * their last user) and copying its residual; an unknown or freed source is
 * VIDKV_ERROR_INVALID_ARGUMENT. truncate: keeps the first `tokens` tokens of every layer; more
 * than the sequence's length (the most tokens any layer holds) is VIDKV_ERROR_INVALID_ARGUMENT,
 * equal to it a no-op; a cut inside a quantized segment masks the segment's tail (such a sequence
 * cannot be saved or serialized). Errors change nothing. Synchronous: not while recorded work is
 * pending. */
VIDKV_API vidkv_status vidkv_sequence_fork(vidkv_cache* cache, uint32_t source, uint32_t* sequence);
VIDKV_API vidkv_status vidkv_sequence_truncate(vidkv_cache* cache, uint32_t sequence, uint32_t tokens);

VIDKV_API vidkv_status vidkv_prefill(vidkv_cache* cache, uint32_t sequence, uint32_t layer, const uint16_t* k,
                                     const uint16_t* v, uint32_t tokens);
/* One token: k and v hold kv_heads x head_dim halves each. */
VIDKV_API vidkv_status vidkv_append(vidkv_cache* cache, uint32_t sequence, uint32_t layer, const uint16_t* k,
                                    const uint16_t* v);
/* scale 0: 1 / sqrt(head_dim). */
VIDKV_API vidkv_status vidkv_attention(vidkv_cache* cache, uint32_t sequence, uint32_t layer, const float* q,
                                       float scale, float* out);
/* Many tokens at once, at any time (before or after a prefill, after appends: a follow-up
 * prompt): k and v hold tokens x kv_heads x head_dim halves each. Stores bit for bit what `tokens`
 * appends would, in one submission. Refused (VIDKV_ERROR_INVALID_ARGUMENT, nothing changed) for 0
 * tokens, more than max_tokens in all, NaN/Inf input, and layers with per-head policies. */
VIDKV_API vidkv_status vidkv_extend(vidkv_cache* cache, uint32_t sequence, uint32_t layer, const uint16_t* k,
                                    const uint16_t* v, uint32_t tokens);
/* Causal attention of the layer's newest `tokens` tokens: q and out hold tokens x q_heads x
 * head_dim floats; query i attends over positions 0 .. L - tokens + i (L: the layer's tokens),
 * reading the cache as stored now. 1 <= tokens <= min(L, 65535); not for layers with per-head
 * policies. scale 0: 1 / sqrt(head_dim). */
VIDKV_API vidkv_status vidkv_attention_causal(vidkv_cache* cache, uint32_t sequence, uint32_t layer, const float* q,
                                              uint32_t tokens, float scale, float* out);
/* Batched decode: one step of `count` distinct sequences in one call (one set of dispatches).
 * Entry i belongs to sequences[i]: k and v hold count x kv_heads x head_dim halves, q and out
 * count x q_heads x head_dim floats. Equal to vidkv_append / vidkv_attention per sequence (appends
 * bit for bit, attention within 1e-5 relative). A sequence twice, an unknown id, count 0 or any
 * entry's own error (a full sequence, an empty one, a NaN/Inf, named by its entry) fails the whole
 * call with INVALID_ARGUMENT and changes nothing. */
VIDKV_API vidkv_status vidkv_append_batch(vidkv_cache* cache, uint32_t layer, const uint32_t* sequences,
                                          uint32_t count, const uint16_t* k, const uint16_t* v);
VIDKV_API vidkv_status vidkv_attention_batch(vidkv_cache* cache, uint32_t layer, const uint32_t* sequences,
                                             uint32_t count, const float* q, float scale, float* out);
/* Number of tokens held (for sizing vidkv_dequantize's outputs). */
VIDKV_API vidkv_status vidkv_tokens(vidkv_cache* cache, uint32_t sequence, uint32_t layer, uint32_t* tokens);
/* k and v: room for `capacity_tokens` tokens each; fails with BUFFER_TOO_SMALL when fewer than
 * the tokens held. *tokens receives the count written. */
VIDKV_API vidkv_status vidkv_dequantize(vidkv_cache* cache, uint32_t sequence, uint32_t layer, uint16_t* k,
                                        uint16_t* v, uint32_t capacity_tokens, uint32_t* tokens);
VIDKV_API vidkv_status vidkv_stats_get(vidkv_cache* cache, vidkv_stats* stats);

/* Saved caches (vidkv::Cache::save / load / load_sequences; layout in docs/cache-format.md). A
 * damaged file gives VIDKV_ERROR_CORRUPT_FILE, one whose geometry or settings differ from the
 * cache's VIDKV_ERROR_INVALID_ARGUMENT; nothing is loaded on any error. */
VIDKV_API vidkv_status vidkv_cache_save(vidkv_cache* cache, const char* path);
VIDKV_API vidkv_status vidkv_cache_save_sequence(vidkv_cache* cache, const char* path, uint32_t sequence);
/* A new cache with the file's geometry, settings and max_tokens and all its sequences, under the
 * ids they were saved with (vidkv_sequence_ids lists them). */
VIDKV_API vidkv_status vidkv_cache_load(vidkv_context* ctx, const char* path, vidkv_cache** out);
/* Adds the file's sequences; `ids` has room for `capacity` ids and receives the new ones, `*count`
 * how many. Fails with BUFFER_TOO_SMALL, loading nothing, when the file holds more than `capacity`. */
VIDKV_API vidkv_status vidkv_cache_load_sequences(vidkv_cache* cache, const char* path, uint32_t* ids,
                                                  uint32_t capacity, uint32_t* count);
/* The ids of the sequences held, increasing; same contract as vidkv_cache_load_sequences' ids. */
VIDKV_API vidkv_status vidkv_sequence_ids(vidkv_cache* cache, uint32_t* ids, uint32_t capacity, uint32_t* count);

/* One sequence as bytes in the saved-cache format, to move it between processes or machines.
 * data NULL: *size receives the bytes needed. Otherwise data has room for `capacity` bytes and
 * *size receives the bytes written; fewer than needed gives VIDKV_ERROR_BUFFER_TOO_SMALL, the
 * message naming the size needed. (Each call reads the sequence back from the device.) */
VIDKV_API vidkv_status vidkv_sequence_serialize(vidkv_cache* cache, uint32_t sequence, void* data, size_t capacity,
                                                size_t* size);
/* Adds the sequence those bytes hold (made by vidkv_sequence_serialize of a cache with the same
 * geometry and settings) under a new id. Damaged bytes: VIDKV_ERROR_CORRUPT_FILE; another geometry
 * or settings: VIDKV_ERROR_INVALID_ARGUMENT; nothing is added on any error. */
VIDKV_API vidkv_status vidkv_sequence_deserialize(vidkv_cache* cache, const void* data, size_t size,
                                                  uint32_t* sequence);

/* --- Engine devices, device buffers and recording (vidkv/cache.hpp explains the contract) ---
 * Vulkan handles travel as plain integers and pointers so that this header needs no Vulkan
 * header: dispatchable handles (VkInstance, VkPhysicalDevice, VkDevice, VkQueue,
 * VkCommandBuffer) as void*, VkBuffer as uint64_t. */
typedef struct vidkv_external_device {
  void* get_instance_proc_addr; /* PFN_vkGetInstanceProcAddr of the engine's loader */
  void* instance;
  void* physical_device;
  void* device;                 /* must have VK_KHR_push_descriptor enabled */
  uint32_t queue_family;
  void* queue;
} vidkv_external_device;

/* A range of one of the engine's VkBuffers. Usages the buffer needs: every view STORAGE_BUFFER;
 * prefill, append and extend k, v also TRANSFER_SRC (the residual is filled by copies); dequantize k, v
 * also TRANSFER_DST; attention q needs STORAGE_BUFFER only and out STORAGE_BUFFER only (written by
 * a shader). offset: a multiple of the device's minStorageBufferOffsetAlignment. A view that runs
 * past the memory its VkBuffer needs (vkGetBufferMemoryRequirements) is refused with
 * VIDKV_ERROR_INVALID_ARGUMENT; within that rounding Vulkan cannot tell the buffer's own size, so
 * a view there is trusted to lie inside the buffer. */
typedef struct vidkv_device_buffer {
  uint64_t buffer; /* VkBuffer */
  uint64_t offset;
  uint64_t size;
} vidkv_device_buffer;

/* Semantic token protection of a prefill (cache settings with STP): scores of the visual tokens
 * (visual_tokens floats) or an explicit list of protected positions (protected_count entries). */
typedef struct vidkv_stp_input {
  uint32_t first_visual;
  uint32_t visual_tokens;
  const float* scores;               /* or NULL */
  const uint32_t* protected_tokens;  /* used when scores is NULL */
  uint32_t protected_count;
} vidkv_stp_input;

/* A context on the engine's device; vidkv owns none of the handles. */
VIDKV_API vidkv_status vidkv_context_wrap(const vidkv_external_device* device, vidkv_context** out);
VIDKV_API vidkv_status vidkv_prefill_stp(vidkv_cache* cache, uint32_t sequence, uint32_t layer, const uint16_t* k,
                                         const uint16_t* v, uint32_t tokens, const vidkv_stp_input* stp);
/* Recorded into the engine's VkCommandBuffer (in the recording state); nothing is submitted.
 * fp32: nonzero when k and v hold floats (rounded to fp16 on the device). stp: NULL unless the
 * cache's settings protect tokens. */
VIDKV_API vidkv_status vidkv_record_prefill(vidkv_cache* cache, void* command_buffer, uint32_t sequence,
                                            uint32_t layer, vidkv_device_buffer k, vidkv_device_buffer v, int fp32,
                                            uint32_t tokens, const vidkv_stp_input* stp);
VIDKV_API vidkv_status vidkv_record_append(vidkv_cache* cache, void* command_buffer, uint32_t sequence,
                                           uint32_t layer, vidkv_device_buffer k, vidkv_device_buffer v);
VIDKV_API vidkv_status vidkv_record_attention(vidkv_cache* cache, void* command_buffer, uint32_t sequence,
                                              uint32_t layer, vidkv_device_buffer q, float scale,
                                              vidkv_device_buffer out);
/* Batched decode recorded (layouts as vidkv_append_batch / vidkv_attention_batch, in device
 * buffers): one recorded pass per call, however many sequences. */
VIDKV_API vidkv_status vidkv_record_append_batch(vidkv_cache* cache, void* command_buffer, uint32_t layer,
                                                 const uint32_t* sequences, uint32_t count, vidkv_device_buffer k,
                                                 vidkv_device_buffer v);
VIDKV_API vidkv_status vidkv_record_attention_batch(vidkv_cache* cache, void* command_buffer, uint32_t layer,
                                                    const uint32_t* sequences, uint32_t count,
                                                    vidkv_device_buffer q, float scale, vidkv_device_buffer out);
VIDKV_API vidkv_status vidkv_record_dequantize(vidkv_cache* cache, void* command_buffer, uint32_t sequence,
                                               uint32_t layer, vidkv_device_buffer k, vidkv_device_buffer v);
/* k, v: tokens x kv_heads x head_dim halves (fp32 nonzero: floats), usages as a prefill's. */
VIDKV_API vidkv_status vidkv_record_extend(vidkv_cache* cache, void* command_buffer, uint32_t sequence,
                                           uint32_t layer, vidkv_device_buffer k, vidkv_device_buffer v, int fp32,
                                           uint32_t tokens);
/* q, out: tokens x q_heads x head_dim floats, usages as attention's. */
VIDKV_API vidkv_status vidkv_record_attention_causal(vidkv_cache* cache, void* command_buffer, uint32_t sequence,
                                                     uint32_t layer, vidkv_device_buffer q, uint32_t tokens,
                                                     float scale, vidkv_device_buffer out);
/* Frees scratch that recorded work may have used; call once that work has completed. */
VIDKV_API vidkv_status vidkv_release_retired(vidkv_cache* cache);

#ifdef __cplusplus
}
#endif

#endif /* VIDKV_VIDKV_H */
