/* A C program using vidkv through its C API only (vidkv/vidkv.h): a k1.5-v1.58 cache of one layer,
 * a prefill, ten decoded tokens and one attention step, on the default device. Linked with plain
 * gcc and pkg-config, which shows the static library's C++ runtime is named in Libs.private:
 *   gcc examples/c_api/main.c $(pkg-config --cflags --static --libs vidkv) -o c_api */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "vidkv/vidkv.h"

enum { KV_HEADS = 2, Q_HEADS = 8, DIM = 64, TOKENS = 300, DECODED = 10 };

/* fp16 bits of a float in [-2, 2] (normal numbers, rounded toward zero: enough for test data). */
static uint16_t to_half(float x) {
  union { float f; uint32_t u; } v = {x};
  const uint32_t sign = (v.u >> 16) & 0x8000u;
  const int exponent = (int)((v.u >> 23) & 0xff) - 127 + 15;
  if (exponent <= 0) return (uint16_t)sign;
  return (uint16_t)(sign | ((uint32_t)exponent << 10) | ((v.u >> 13) & 0x3ffu));
}

static int check(vidkv_status status, const char* what) {
  if (status == VIDKV_OK) return 0;
  fprintf(stderr, "c_api: %s failed (%d): %s\n", what, (int)status, vidkv_last_error_message());
  return 1;
}

int main(void) {
  const size_t row = (size_t)KV_HEADS * DIM;
  uint16_t* k = malloc(sizeof(uint16_t) * row * (TOKENS + DECODED));
  uint16_t* v = malloc(sizeof(uint16_t) * row * (TOKENS + DECODED));
  float q[Q_HEADS * DIM], out[Q_HEADS * DIM];
  vidkv_context* ctx = NULL;
  vidkv_cache* cache = NULL;
  uint32_t seq = 0, held = 0;
  int failed = 0;
  for (size_t i = 0; i < row * (TOKENS + DECODED); ++i) {
    k[i] = to_half(sinf(0.37f * (float)i));
    v[i] = to_half(cosf(0.11f * (float)i));
  }
  for (size_t i = 0; i < Q_HEADS * DIM; ++i) q[i] = sinf(0.05f * (float)i);

  failed = check(vidkv_context_create(NULL, &ctx), "vidkv_context_create") ||
           check(vidkv_cache_create(ctx, 1, KV_HEADS, Q_HEADS, DIM, "k1.5-v1.58", 1024, &cache), "vidkv_cache_create") ||
           check(vidkv_sequence_create(cache, &seq), "vidkv_sequence_create") ||
           check(vidkv_prefill(cache, seq, 0, k, v, TOKENS), "vidkv_prefill");
  for (uint32_t t = 0; !failed && t < DECODED; ++t) {
    failed = check(vidkv_append(cache, seq, 0, k + (TOKENS + t) * row, v + (TOKENS + t) * row), "vidkv_append");
  }
  failed = failed || check(vidkv_attention(cache, seq, 0, q, 0.0f, out), "vidkv_attention") ||
           check(vidkv_tokens(cache, seq, 0, &held), "vidkv_tokens");
  for (size_t i = 0; !failed && i < Q_HEADS * DIM; ++i) {
    if (!isfinite(out[i])) {
      fprintf(stderr, "c_api: out[%zu] is not finite\n", i);
      failed = 1;
    }
  }
  if (!failed && held != TOKENS + DECODED) {
    fprintf(stderr, "c_api: %u tokens held, %d expected\n", held, TOKENS + DECODED);
    failed = 1;
  }
  if (!failed) printf("c_api example OK: %u tokens, out[0] = %.4f\n", held, out[0]);
  vidkv_cache_destroy(cache);
  vidkv_context_destroy(ctx);
  free(k);
  free(v);
  return failed;
}
