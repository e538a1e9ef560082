/* The C API used from C: compiled as C (not C++) into the test binary; test_c_api.cpp calls
 * vidkv_test_c_api_round_trip from a gtest. Returns 0 on success, else the failing line, with a
 * message in `message`. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "vidkv/vidkv.h"

#define CHECK(cond)                                                                                 \
  do {                                                                                              \
    if (!(cond)) {                                                                                  \
      snprintf(message, size, "%s (last error: %s)", #cond, vidkv_last_error_message());            \
      result = __LINE__;                                                                            \
      goto done;                                                                                    \
    }                                                                                               \
  } while (0)

enum { LAYERS = 2, KV = 2, QH = 8, DIM = 64, TOKENS = 40 };

/* Deterministic finite halves: small integers / 8 as fp16 bit patterns (exact). */
static uint16_t half_of_small(int i) {
  /* fp16 of (i % 9 - 4) / 8: sign, exponent and mantissa built by hand. */
  int v = i % 9 - 4;
  uint16_t sign = v < 0 ? 0x8000 : 0;
  int a = v < 0 ? -v : v;
  if (a == 0) return sign;
  /* a/8 for a in 1..4: 0.125, 0.25, 0.375, 0.5 */
  static const uint16_t mag[5] = {0, 0x3000, 0x3400, 0x3600, 0x3800};
  return (uint16_t)(sign | mag[a]);
}

int vidkv_test_c_api_round_trip(char* message, size_t size) {
  static uint16_t k[TOKENS * KV * DIM], v[TOKENS * KV * DIM], dk[TOKENS * KV * DIM], dv[TOKENS * KV * DIM];
  float q[QH * DIM], out[QH * DIM];
  /* causal queries: room for TOKENS + 1 rows, the count the error case names (the C API reads
   * tokens x q_heads x head_dim floats before the cache refuses the count) */
  static float q2[(TOKENS + 1) * QH * DIM], out2[(TOKENS + 1) * QH * DIM];
  vidkv_context* ctx = NULL;
  vidkv_cache* cache = NULL;
  vidkv_stats stats;
  uint32_t seq = 0, tokens = 0;
  int result = 0, i;
  message[0] = 0;
  for (i = 0; i < TOKENS * KV * DIM; ++i) {
    k[i] = half_of_small(i * 7 + 3);
    v[i] = half_of_small(i * 5 + 1);
  }
  for (i = 0; i < QH * DIM; ++i) q[i] = (float)((i % 11) - 5) * 0.1f;

  CHECK(vidkv_context_create(NULL, &ctx) == VIDKV_OK);
  CHECK(vidkv_cache_create(ctx, LAYERS, KV, QH, DIM, "nonsense", 256, &cache) == VIDKV_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(vidkv_last_error_message(), "nonsense") != NULL);
  CHECK(vidkv_cache_create(ctx, LAYERS, KV, QH, DIM, "k1.5-v1.58", 256, &cache) == VIDKV_OK);
  CHECK(vidkv_sequence_create(cache, &seq) == VIDKV_OK);
  CHECK(vidkv_prefill(cache, seq, 1, k, v, TOKENS - 1) == VIDKV_OK);
  CHECK(vidkv_append(cache, seq, 1, k + (TOKENS - 1) * KV * DIM, v + (TOKENS - 1) * KV * DIM) == VIDKV_OK);
  CHECK(vidkv_attention(cache, seq, 1, q, 0.0f, out) == VIDKV_OK);
  for (i = 0; i < QH * DIM; ++i) CHECK(isfinite(out[i]));
  /* Errors: status, message naming the value, nothing changed. */
  CHECK(vidkv_prefill(cache, 999, 0, k, v, TOKENS) == VIDKV_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(vidkv_last_error_message(), "999") != NULL);
  CHECK(vidkv_attention(cache, seq, 0, q, 0.0f, out) == VIDKV_ERROR_INVALID_ARGUMENT);
  CHECK(vidkv_attention(cache, seq, 1, NULL, 0.0f, out) == VIDKV_ERROR_INVALID_ARGUMENT);
  CHECK(vidkv_tokens(cache, seq, 1, &tokens) == VIDKV_OK && tokens == TOKENS);
  CHECK(vidkv_dequantize(cache, seq, 1, dk, dv, TOKENS - 1, &tokens) == VIDKV_ERROR_BUFFER_TOO_SMALL);
  CHECK(vidkv_dequantize(cache, seq, 1, dk, dv, TOKENS, &tokens) == VIDKV_OK && tokens == TOKENS);
  /* 32 tokens quantized, the last 8 are the fp16 residual, returned as given. */
  CHECK(memcmp(dk + 32 * KV * DIM, k + 32 * KV * DIM, 8 * KV * DIM * 2) == 0);
  CHECK(memcmp(dv + 32 * KV * DIM, v + 32 * KV * DIM, 8 * KV * DIM * 2) == 0);
  CHECK(vidkv_stats_get(cache, &stats) == VIDKV_OK);
  CHECK(stats.sequences == 1 && stats.tokens == TOKENS && stats.quantized_tokens == 32 && stats.residual_tokens == 8);
  CHECK(stats.key_bits > 1.0 && stats.key_bits < 4.0 && stats.value_bits > 1.0 && stats.value_bits < 4.0);
  CHECK(stats.policy_heads[VIDKV_POLICY_VIDKV] == LAYERS * KV && stats.policy_heads[VIDKV_POLICY_WINDOW] == 0);
  /* Many tokens at once on the empty layer 0 (all 40 stay in the 128-token residual, as given),
   * then causal attention of the newest 2: the newest query's row equals a plain attention. */
  CHECK(vidkv_extend(cache, seq, 0, k, v, 0) == VIDKV_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(vidkv_last_error_message(), "0 tokens") != NULL);
  CHECK(vidkv_extend(cache, seq, 0, k, v, TOKENS) == VIDKV_OK);
  CHECK(vidkv_dequantize(cache, seq, 0, dk, dv, TOKENS, &tokens) == VIDKV_OK && tokens == TOKENS);
  CHECK(memcmp(dk, k, sizeof(k)) == 0 && memcmp(dv, v, sizeof(v)) == 0);
  for (i = 0; i < 2 * QH * DIM; ++i) q2[i] = (float)((i % 13) - 6) * 0.1f;
  CHECK(vidkv_attention_causal(cache, seq, 0, q2, TOKENS + 1, 0.0f, out2) == VIDKV_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(vidkv_last_error_message(), "exceed") != NULL);
  CHECK(vidkv_attention_causal(cache, seq, 0, q2, 2, 0.0f, out2) == VIDKV_OK);
  CHECK(vidkv_attention(cache, seq, 0, q2 + QH * DIM, 0.0f, out) == VIDKV_OK);
  for (i = 0; i < QH * DIM; ++i) CHECK(fabsf(out2[QH * DIM + i] - out[i]) <= 1e-5f * (1.0f + fabsf(out[i])));
  for (i = 0; i < QH * DIM; ++i) CHECK(isfinite(out2[i]));
  CHECK(vidkv_sequence_free(cache, seq) == VIDKV_OK);
  CHECK(vidkv_sequence_free(cache, seq) == VIDKV_ERROR_INVALID_ARGUMENT);
  vidkv_cache_destroy(cache);
  cache = NULL;

  /* Per-head policies from the settings text: layer 0 keeps head 0 compressed and a window of
   * 4 + 8 tokens on head 1, layer 1 keeps both heads in full. */
  CHECK(vidkv_cache_create(ctx, LAYERS, KV, QH, DIM,
                           "{'backend': 'QuantizedCacheVLM', 'nbits': [1.5, 1.58], 'head_policies': "
                           "[['vidkv', 'window'], ['full', 'full']], 'window_sink': 4, 'window_recent': 8}",
                           256, &cache) == VIDKV_OK);
  CHECK(vidkv_sequence_create(cache, &seq) == VIDKV_OK);
  CHECK(vidkv_prefill(cache, seq, 0, k, v, TOKENS) == VIDKV_OK);
  CHECK(vidkv_attention(cache, seq, 0, q, 0.0f, out) == VIDKV_OK);
  for (i = 0; i < QH * DIM; ++i) CHECK(isfinite(out[i]));
  CHECK(vidkv_dequantize(cache, seq, 0, dk, dv, TOKENS, &tokens) == VIDKV_OK && tokens == TOKENS);
  /* Head 1 of the newest token is in the window, head 1 of token 20 is not (zeros). */
  CHECK(memcmp(dk + ((TOKENS - 1) * KV + 1) * DIM, k + ((TOKENS - 1) * KV + 1) * DIM, DIM * 2) == 0);
  CHECK(dk[(20 * KV + 1) * DIM] == 0 && dv[(20 * KV + 1) * DIM + 5] == 0);
  CHECK(vidkv_stats_get(cache, &stats) == VIDKV_OK);
  CHECK(stats.policy_heads[VIDKV_POLICY_VIDKV] == 1 && stats.policy_heads[VIDKV_POLICY_WINDOW] == 1 &&
        stats.policy_heads[VIDKV_POLICY_FULL] == 2);
  CHECK(stats.policy_tokens[VIDKV_POLICY_WINDOW] == 12 && stats.policy_bytes[VIDKV_POLICY_WINDOW] == 12 * DIM * 4);
  /* Batched decode: three sequences of different lengths, equal to per-sequence calls on a twin
   * cache (appends bit for bit, checked through dequantize; attention within 1e-5 relative). */
  {
    static uint16_t bk[TOKENS * KV * DIM], bv[TOKENS * KV * DIM];
    static float bq[3 * QH * DIM], bout[3 * QH * DIM], one[QH * DIM];
    vidkv_cache* twin = NULL;
    uint32_t ids[3], twin_ids[3], dup[2];
    int s, step;
    vidkv_cache_destroy(cache);
    cache = NULL;
    CHECK(vidkv_cache_create(ctx, LAYERS, KV, QH, DIM, "k1.5-v1.58", 256, &cache) == VIDKV_OK);
    CHECK(vidkv_cache_create(ctx, LAYERS, KV, QH, DIM, "k1.5-v1.58", 256, &twin) == VIDKV_OK);
    for (s = 0; s < 3; ++s) {
      CHECK(vidkv_sequence_create(cache, &ids[s]) == VIDKV_OK);
      CHECK(vidkv_sequence_create(twin, &twin_ids[s]) == VIDKV_OK);
      CHECK(vidkv_prefill(cache, ids[s], 1, k, v, 10 + 11 * s) == VIDKV_OK);
      CHECK(vidkv_prefill(twin, twin_ids[s], 1, k, v, 10 + 11 * s) == VIDKV_OK);
    }
    for (i = 0; i < 3 * QH * DIM; ++i) bq[i] = (float)((i % 13) - 6) * 0.07f;
    for (step = 0; step < 3; ++step) {
      for (i = 0; i < 3 * KV * DIM; ++i) {
        bk[i] = half_of_small(i * 3 + step);
        bv[i] = half_of_small(i * 11 + step);
      }
      CHECK(vidkv_append_batch(cache, 1, ids, 3, bk, bv) == VIDKV_OK);
      CHECK(vidkv_attention_batch(cache, 1, ids, 3, bq, 0.0f, bout) == VIDKV_OK);
      for (s = 0; s < 3; ++s) {
        CHECK(vidkv_append(twin, twin_ids[s], 1, bk + s * KV * DIM, bv + s * KV * DIM) == VIDKV_OK);
        CHECK(vidkv_attention(twin, twin_ids[s], 1, bq + s * QH * DIM, 0.0f, one) == VIDKV_OK);
        for (i = 0; i < QH * DIM; ++i) {
          CHECK(fabsf(bout[s * QH * DIM + i] - one[i]) <= 1e-5f * fmaxf(1e-3f, fabsf(one[i])));
        }
      }
    }
    for (s = 0; s < 3; ++s) {
      uint32_t got = 0, want = 0;
      CHECK(vidkv_dequantize(cache, ids[s], 1, dk, dv, TOKENS, &got) == VIDKV_OK);
      CHECK(vidkv_dequantize(twin, twin_ids[s], 1, bk, bv, TOKENS, &want) == VIDKV_OK);
      CHECK(got == want && got == 13 + 11 * (uint32_t)s);
      CHECK(memcmp(dk, bk, got * KV * DIM * 2) == 0 && memcmp(dv, bv, got * KV * DIM * 2) == 0);
    }
    /* A sequence twice, count 0: clear errors, nothing changed. */
    dup[0] = ids[1];
    dup[1] = ids[1];
    CHECK(vidkv_append_batch(cache, 1, dup, 2, bk, bv) == VIDKV_ERROR_INVALID_ARGUMENT);
    CHECK(strstr(vidkv_last_error_message(), "twice") != NULL);
    CHECK(vidkv_attention_batch(cache, 1, ids, 0, bq, 0.0f, bout) == VIDKV_ERROR_INVALID_ARGUMENT);
    CHECK(strstr(vidkv_last_error_message(), "0 sequences") != NULL);
    CHECK(vidkv_tokens(cache, ids[1], 1, &tokens) == VIDKV_OK && tokens == 24);
    vidkv_cache_destroy(twin);
  }

  /* Policies that do not fit the geometry: a clear error naming the count. */
  vidkv_cache_destroy(cache);
  cache = NULL;
  CHECK(vidkv_cache_create(ctx, LAYERS, KV, QH, DIM, "{'backend': 'QuantizedCacheVLM', 'nbits': 2, 'head_policies': ['full']}",
                           256, &cache) == VIDKV_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(vidkv_last_error_message(), "head_policies") != NULL || strstr(vidkv_last_error_message(), "4") != NULL);
done:
  vidkv_cache_destroy(cache);
  vidkv_context_destroy(ctx);
  return result;
}

/* Fork and truncate from C: the fork holds what its source holds and outlives it; a cut inside
 * the residual gives back the kept prefix, one inside the quantized segment too (and such a
 * sequence is not serialized); errors (unknown or freed source, a cut beyond the length) name
 * the problem and change nothing. */
int vidkv_test_c_api_fork_truncate(char* message, size_t size) {
  static uint16_t k[TOKENS * KV * DIM], v[TOKENS * KV * DIM], dk[TOKENS * KV * DIM], dv[TOKENS * KV * DIM];
  static uint16_t fk[TOKENS * KV * DIM], fv[TOKENS * KV * DIM];
  float q[QH * DIM], out[QH * DIM], fout[QH * DIM];
  vidkv_context* ctx = NULL;
  vidkv_cache* cache = NULL;
  uint32_t seq = 0, fork = 0, other = 0, tokens = 0, layer;
  size_t bytes = 0;
  int result = 0, i;
  message[0] = 0;
  for (i = 0; i < TOKENS * KV * DIM; ++i) {
    k[i] = half_of_small(i * 7 + 3);
    v[i] = half_of_small(i * 5 + 1);
  }
  for (i = 0; i < QH * DIM; ++i) q[i] = (float)((i % 11) - 5) * 0.1f;

  CHECK(vidkv_context_create(NULL, &ctx) == VIDKV_OK);
  CHECK(vidkv_cache_create(ctx, LAYERS, KV, QH, DIM, "k1.5-v1.58", 256, &cache) == VIDKV_OK);
  CHECK(vidkv_sequence_create(cache, &seq) == VIDKV_OK);
  /* 40 tokens per layer: a segment of 32 and 8 in the residual. */
  for (layer = 0; layer < LAYERS; ++layer) CHECK(vidkv_prefill(cache, seq, layer, k, v, TOKENS) == VIDKV_OK);
  CHECK(vidkv_sequence_fork(cache, seq, &fork) == VIDKV_OK && fork != seq);
  CHECK(vidkv_attention(cache, seq, 1, q, 0.0f, out) == VIDKV_OK);
  CHECK(vidkv_dequantize(cache, seq, 1, dk, dv, TOKENS, &tokens) == VIDKV_OK && tokens == TOKENS);
  CHECK(vidkv_sequence_free(cache, seq) == VIDKV_OK);
  CHECK(vidkv_attention(cache, fork, 1, q, 0.0f, fout) == VIDKV_OK);
  CHECK(memcmp(out, fout, sizeof out) == 0);
  CHECK(vidkv_dequantize(cache, fork, 1, fk, fv, TOKENS, &tokens) == VIDKV_OK && tokens == TOKENS);
  CHECK(memcmp(dk, fk, sizeof dk) == 0 && memcmp(dv, fv, sizeof dv) == 0);

  /* Errors: a freed source, an unknown one, a cut beyond the length; nothing changes. */
  CHECK(vidkv_sequence_fork(cache, seq, &other) == VIDKV_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(vidkv_last_error_message(), "unknown sequence") != NULL);
  CHECK(vidkv_sequence_fork(cache, fork, NULL) == VIDKV_ERROR_INVALID_ARGUMENT);
  CHECK(vidkv_sequence_truncate(cache, 999, 1) == VIDKV_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(vidkv_last_error_message(), "999") != NULL);
  CHECK(vidkv_sequence_truncate(cache, fork, TOKENS + 1) == VIDKV_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(vidkv_last_error_message(), "longest layer") != NULL);
  CHECK(vidkv_sequence_truncate(cache, fork, TOKENS) == VIDKV_OK); /* the length: a no-op */
  CHECK(vidkv_tokens(cache, fork, 0, &tokens) == VIDKV_OK && tokens == TOKENS);

  /* Inside the residual: the kept prefix; still serializable. */
  CHECK(vidkv_sequence_truncate(cache, fork, 36) == VIDKV_OK);
  CHECK(vidkv_dequantize(cache, fork, 1, fk, fv, TOKENS, &tokens) == VIDKV_OK && tokens == 36);
  CHECK(memcmp(dk, fk, 36 * KV * DIM * 2) == 0 && memcmp(dv, fv, 36 * KV * DIM * 2) == 0);
  CHECK(vidkv_sequence_serialize(cache, fork, NULL, 0, &bytes) == VIDKV_OK && bytes > 0);
  /* Inside the segment: the kept prefix; serializing it is refused. */
  CHECK(vidkv_sequence_truncate(cache, fork, 20) == VIDKV_OK);
  CHECK(vidkv_dequantize(cache, fork, 0, fk, fv, TOKENS, &tokens) == VIDKV_OK && tokens == 20);
  CHECK(vidkv_attention(cache, fork, 0, q, 0.0f, fout) == VIDKV_OK);
  for (i = 0; i < QH * DIM; ++i) CHECK(isfinite(fout[i]));
  CHECK(vidkv_sequence_serialize(cache, fork, NULL, 0, &bytes) == VIDKV_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(vidkv_last_error_message(), "masked segment") != NULL);
  /* Appends go on after the cut. */
  CHECK(vidkv_append(cache, fork, 0, k, v) == VIDKV_OK);
  CHECK(vidkv_tokens(cache, fork, 0, &tokens) == VIDKV_OK && tokens == 21);
done:
  vidkv_cache_destroy(cache);
  vidkv_context_destroy(ctx);
  return result;
}
