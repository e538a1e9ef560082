/* The C API of vidkv's KV-cache runtime (vidkv/cache.hpp): opaque handles, status codes, no
 * exceptions. Every function returns VIDKV_OK or an error status; the message of the last error
 * on the calling thread is vidkv_last_error_message(). On error nothing is changed (the cache
 * checks every argument first) and output arguments are left untouched.
 *
 * Shapes: K and V are fp16 halves (uint16_t) [tokens][kv_heads][head_dim]; q and out are float
 * [q_heads][head_dim]. Calls are synchronous (submit and wait). */
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
  VIDKV_ERROR_INTERNAL = 7        /* anything else */
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
} vidkv_stats;

/* The message of the last failing call on this thread ("" when none). Valid until the next call. */
VIDKV_API const char* vidkv_last_error_message(void);

/* device: index or name substring, or NULL for the VIDKV_DEVICE variable / the default device. */
VIDKV_API vidkv_status vidkv_context_create(const char* device, vidkv_context** out);
VIDKV_API void vidkv_context_destroy(vidkv_context* ctx);

/* settings: a preset name ("fp16", "2bit", "kivi", "k1.5-v2", "k1.5-v1.58") or the original's
 * configuration dictionary text. The cache keeps the context alive. */
VIDKV_API vidkv_status vidkv_cache_create(vidkv_context* ctx, uint32_t layers, uint32_t kv_heads, uint32_t q_heads,
                                          uint32_t head_dim, const char* settings, uint32_t max_tokens,
                                          vidkv_cache** out);
VIDKV_API void vidkv_cache_destroy(vidkv_cache* cache);

VIDKV_API vidkv_status vidkv_sequence_create(vidkv_cache* cache, uint32_t* sequence);
VIDKV_API vidkv_status vidkv_sequence_free(vidkv_cache* cache, uint32_t sequence);

VIDKV_API vidkv_status vidkv_prefill(vidkv_cache* cache, uint32_t sequence, uint32_t layer, const uint16_t* k,
                                     const uint16_t* v, uint32_t tokens);
/* One token: k and v hold kv_heads x head_dim halves each. */
VIDKV_API vidkv_status vidkv_append(vidkv_cache* cache, uint32_t sequence, uint32_t layer, const uint16_t* k,
                                    const uint16_t* v);
/* scale 0: 1 / sqrt(head_dim). */
VIDKV_API vidkv_status vidkv_attention(vidkv_cache* cache, uint32_t sequence, uint32_t layer, const float* q,
                                       float scale, float* out);
/* Number of tokens held (for sizing vidkv_dequantize's outputs). */
VIDKV_API vidkv_status vidkv_tokens(vidkv_cache* cache, uint32_t sequence, uint32_t layer, uint32_t* tokens);
/* k and v: room for `capacity_tokens` tokens each; fails with BUFFER_TOO_SMALL when fewer than
 * the tokens held. *tokens receives the count written. */
VIDKV_API vidkv_status vidkv_dequantize(vidkv_cache* cache, uint32_t sequence, uint32_t layer, uint16_t* k,
                                        uint16_t* v, uint32_t capacity_tokens, uint32_t* tokens);
VIDKV_API vidkv_status vidkv_stats_get(vidkv_cache* cache, vidkv_stats* stats);

#ifdef __cplusplus
}
#endif

#endif /* VIDKV_VIDKV_H */
