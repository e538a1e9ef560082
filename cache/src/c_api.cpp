// The C API (vidkv/vidkv.h): thin wrappers that turn every exception into a status code and a
// thread-local message, so that nothing C++ crosses the boundary.
#include "vidkv/vidkv.h"

#include <cstring>
#include <new>
#include <string>

#include "vidkv/cache.hpp"

struct vidkv_context {
  std::shared_ptr<vidkv::rt::Context> ctx;
};
struct vidkv_cache {
  std::unique_ptr<vidkv::Cache> cache;
};

namespace {

thread_local std::string last_error;

vidkv_status status_of(vidkv::ErrorCode code) {
  using vidkv::ErrorCode;
  switch (code) {
    case ErrorCode::invalid_argument: return VIDKV_ERROR_INVALID_ARGUMENT;
    case ErrorCode::unsupported_bits:
    case ErrorCode::bad_group_size: return VIDKV_ERROR_UNSUPPORTED;
    case ErrorCode::buffer_too_small: return VIDKV_ERROR_BUFFER_TOO_SMALL;
    case ErrorCode::no_device: return VIDKV_ERROR_NO_DEVICE;
    case ErrorCode::out_of_memory: return VIDKV_ERROR_OUT_OF_MEMORY;
    case ErrorCode::missing_feature:
    case ErrorCode::vulkan_error:
    case ErrorCode::device_lost: return VIDKV_ERROR_DEVICE;
    default: return VIDKV_ERROR_INTERNAL;
  }
}

vidkv_status fail(vidkv_status status, const std::string& message) {
  last_error = message;
  return status;
}

// Runs `f`, mapping every exception to a status; clears the message on success.
template <typename F>
vidkv_status guarded(F&& f) {
  try {
    f();
    last_error.clear();
    return VIDKV_OK;
  } catch (const vidkv::Error& e) {
    return fail(status_of(e.code()), e.what());
  } catch (const std::bad_alloc&) {
    return fail(VIDKV_ERROR_OUT_OF_MEMORY, "host memory exhausted");
  } catch (const std::exception& e) {
    return fail(VIDKV_ERROR_INTERNAL, e.what());
  } catch (...) {
    return fail(VIDKV_ERROR_INTERNAL, "unknown exception");
  }
}

#define VIDKV_REQUIRE(ptr)                                                                         \
  do {                                                                                             \
    if ((ptr) == nullptr) return fail(VIDKV_ERROR_INVALID_ARGUMENT, std::string(__func__) + ": " #ptr " is NULL"); \
  } while (0)

size_t token_halves(const vidkv_cache* c) {
  const auto& g = c->cache->geometry();
  return size_t(g.kv_heads) * g.head_dim;
}

}  // namespace

extern "C" {

const char* vidkv_last_error_message(void) { return last_error.c_str(); }

vidkv_status vidkv_context_create(const char* device, vidkv_context** out) {
  VIDKV_REQUIRE(out);
  return guarded([&] {
    auto options = vidkv::rt::ContextOptions::from_environment();
    if (device != nullptr) options.device_selector = device;
    auto handle = std::make_unique<vidkv_context>();
    handle->ctx = vidkv::rt::Context::create(options);
    *out = handle.release();
  });
}

void vidkv_context_destroy(vidkv_context* ctx) { delete ctx; }

vidkv_status vidkv_cache_create(vidkv_context* ctx, uint32_t layers, uint32_t kv_heads, uint32_t q_heads,
                                uint32_t head_dim, const char* settings, uint32_t max_tokens, vidkv_cache** out) {
  VIDKV_REQUIRE(ctx);
  VIDKV_REQUIRE(settings);
  VIDKV_REQUIRE(out);
  return guarded([&] {
    auto handle = std::make_unique<vidkv_cache>();
    handle->cache = std::make_unique<vidkv::Cache>(ctx->ctx, vidkv::CacheGeometry{layers, kv_heads, q_heads, head_dim},
                                                   vidkv::parse_settings(settings), max_tokens);
    *out = handle.release();
  });
}

void vidkv_cache_destroy(vidkv_cache* cache) { delete cache; }

vidkv_status vidkv_sequence_create(vidkv_cache* cache, uint32_t* sequence) {
  VIDKV_REQUIRE(cache);
  VIDKV_REQUIRE(sequence);
  return guarded([&] { *sequence = cache->cache->create_sequence(); });
}

vidkv_status vidkv_sequence_free(vidkv_cache* cache, uint32_t sequence) {
  VIDKV_REQUIRE(cache);
  return guarded([&] { cache->cache->free_sequence(sequence); });
}

vidkv_status vidkv_prefill(vidkv_cache* cache, uint32_t sequence, uint32_t layer, const uint16_t* k,
                           const uint16_t* v, uint32_t tokens) {
  VIDKV_REQUIRE(cache);
  VIDKV_REQUIRE(k);
  VIDKV_REQUIRE(v);
  return guarded([&] {
    const size_t n = size_t(tokens) * token_halves(cache);
    cache->cache->prefill(sequence, layer, std::vector<uint16_t>(k, k + n), std::vector<uint16_t>(v, v + n), tokens);
  });
}

vidkv_status vidkv_append(vidkv_cache* cache, uint32_t sequence, uint32_t layer, const uint16_t* k,
                          const uint16_t* v) {
  VIDKV_REQUIRE(cache);
  VIDKV_REQUIRE(k);
  VIDKV_REQUIRE(v);
  return guarded([&] {
    const size_t n = token_halves(cache);
    cache->cache->append(sequence, layer, std::vector<uint16_t>(k, k + n), std::vector<uint16_t>(v, v + n));
  });
}

vidkv_status vidkv_attention(vidkv_cache* cache, uint32_t sequence, uint32_t layer, const float* q, float scale,
                             float* out) {
  VIDKV_REQUIRE(cache);
  VIDKV_REQUIRE(q);
  VIDKV_REQUIRE(out);
  return guarded([&] {
    const auto& g = cache->cache->geometry();
    const size_t n = size_t(g.q_heads) * g.head_dim;
    const auto result = cache->cache->attention(sequence, layer, std::vector<float>(q, q + n), scale);
    std::memcpy(out, result.data(), n * sizeof(float));
  });
}

vidkv_status vidkv_tokens(vidkv_cache* cache, uint32_t sequence, uint32_t layer, uint32_t* tokens) {
  VIDKV_REQUIRE(cache);
  VIDKV_REQUIRE(tokens);
  return guarded([&] { *tokens = cache->cache->tokens(sequence, layer); });
}

vidkv_status vidkv_dequantize(vidkv_cache* cache, uint32_t sequence, uint32_t layer, uint16_t* k, uint16_t* v,
                              uint32_t capacity_tokens, uint32_t* tokens) {
  VIDKV_REQUIRE(cache);
  VIDKV_REQUIRE(k);
  VIDKV_REQUIRE(v);
  VIDKV_REQUIRE(tokens);
  return guarded([&] {
    const uint32_t held = cache->cache->tokens(sequence, layer);
    if (held > capacity_tokens) {
      throw vidkv::Error(vidkv::ErrorCode::buffer_too_small,
                         "vidkv_dequantize: room for " + std::to_string(capacity_tokens) + " tokens; sequence " +
                             std::to_string(sequence) + " layer " + std::to_string(layer) + " holds " +
                             std::to_string(held));
    }
    std::vector<uint16_t> dk, dv;
    cache->cache->dequantize(sequence, layer, dk, dv);
    std::memcpy(k, dk.data(), dk.size() * 2);
    std::memcpy(v, dv.data(), dv.size() * 2);
    *tokens = held;
  });
}

vidkv_status vidkv_stats_get(vidkv_cache* cache, vidkv_stats* stats) {
  VIDKV_REQUIRE(cache);
  VIDKV_REQUIRE(stats);
  return guarded([&] {
    const vidkv::CacheStats s = cache->cache->stats();
    vidkv_stats o{};
    o.sequences = s.sequences;
    o.segments = s.segments;
    o.tokens = s.tokens;
    o.quantized_tokens = s.quantized_tokens;
    o.residual_tokens = s.residual_tokens;
    o.key_code_bytes = s.keys.codes;
    o.key_scale_bytes = s.keys.scales;
    o.key_min_bytes = s.keys.mins;
    o.key_map_bytes = s.keys.maps;
    o.value_code_bytes = s.values.codes;
    o.value_scale_bytes = s.values.scales;
    o.value_min_bytes = s.values.mins;
    o.value_map_bytes = s.values.maps;
    o.residual_bytes = s.residual_bytes;
    o.residual_capacity_bytes = s.residual_capacity_bytes;
    o.fp16_equivalent_bytes = s.fp16_equivalent_bytes;
    o.key_bits = s.key_bits;
    o.value_bits = s.value_bits;
    *stats = o;
  });
}

}  // extern "C"
