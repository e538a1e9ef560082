// The C API (vidkv/vidkv.h): thin wrappers that turn every exception into a status code and a
// thread-local message, so that nothing C++ crosses the boundary.
#include "vidkv/vidkv.h"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <new>
#include <string>

#include "vidkv/cache.hpp"
#include "vidkv/cache_file.hpp"

struct vidkv_context {
  std::shared_ptr<vidkv::rt::Context> ctx;
  // The queue mutex while vidkv_lock_queue holds it (written only by the holder, read by it before
  // it unlocks, so no two threads touch it at once).
  std::mutex* held_queue = nullptr;
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
    case ErrorCode::io_error: return VIDKV_ERROR_IO;
    case ErrorCode::corrupt_data: return VIDKV_ERROR_CORRUPT_FILE;
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

vidkv::rt::BufferView view_of(const vidkv_device_buffer& b) {
  return {reinterpret_cast<VkBuffer>(static_cast<uintptr_t>(b.buffer)), b.offset, b.size};
}

vidkv::CacheStpInput stp_input(const vidkv_stp_input& in) {
  vidkv::CacheStpInput out;
  out.first_visual = in.first_visual;
  out.visual_tokens = in.visual_tokens;
  if (in.scores) out.scores.assign(in.scores, in.scores + in.visual_tokens);
  if (in.protected_tokens) out.protected_tokens.assign(in.protected_tokens, in.protected_tokens + in.protected_count);
  return out;
}

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

vidkv_status vidkv_lock_queue(vidkv_context* ctx) {
  VIDKV_REQUIRE(ctx);
  return guarded([&] { ctx->held_queue = ctx->ctx->lock_queue().release(); });
}

vidkv_status vidkv_unlock_queue(vidkv_context* ctx) {
  VIDKV_REQUIRE(ctx);
  std::mutex* held = ctx->held_queue;
  if (held == nullptr) return fail(VIDKV_ERROR_INVALID_ARGUMENT, "vidkv_unlock_queue: the queue is not locked");
  ctx->held_queue = nullptr;
  held->unlock();
  last_error.clear();
  return VIDKV_OK;
}

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

vidkv_status vidkv_sequence_fork(vidkv_cache* cache, uint32_t source, uint32_t* sequence) {
  VIDKV_REQUIRE(cache);
  VIDKV_REQUIRE(sequence);
  return guarded([&] { *sequence = cache->cache->fork_sequence(source); });
}

vidkv_status vidkv_sequence_truncate(vidkv_cache* cache, uint32_t sequence, uint32_t tokens) {
  VIDKV_REQUIRE(cache);
  return guarded([&] { cache->cache->truncate_sequence(sequence, tokens); });
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

vidkv_status vidkv_extend(vidkv_cache* cache, uint32_t sequence, uint32_t layer, const uint16_t* k,
                          const uint16_t* v, uint32_t tokens) {
  VIDKV_REQUIRE(cache);
  VIDKV_REQUIRE(k);
  VIDKV_REQUIRE(v);
  return guarded([&] {
    const size_t n = size_t(tokens) * token_halves(cache);
    cache->cache->extend(sequence, layer, std::vector<uint16_t>(k, k + n), std::vector<uint16_t>(v, v + n), tokens);
  });
}

vidkv_status vidkv_attention_causal(vidkv_cache* cache, uint32_t sequence, uint32_t layer, const float* q,
                                    uint32_t tokens, float scale, float* out) {
  VIDKV_REQUIRE(cache);
  VIDKV_REQUIRE(q);
  VIDKV_REQUIRE(out);
  return guarded([&] {
    const auto& g = cache->cache->geometry();
    const size_t n = size_t(tokens) * g.q_heads * g.head_dim;
    const auto result = cache->cache->attention_causal(sequence, layer, std::vector<float>(q, q + n), tokens, scale);
    std::memcpy(out, result.data(), n * sizeof(float));
  });
}

namespace {

// The ids of a batch; count 0 reaches the cache, which names it.
std::vector<uint32_t> batch_ids(const uint32_t* sequences, uint32_t count) {
  return count == 0 ? std::vector<uint32_t>{} : std::vector<uint32_t>(sequences, sequences + count);
}

}  // namespace

vidkv_status vidkv_append_batch(vidkv_cache* cache, uint32_t layer, const uint32_t* sequences, uint32_t count,
                                const uint16_t* k, const uint16_t* v) {
  VIDKV_REQUIRE(cache);
  if (count > 0) {
    VIDKV_REQUIRE(sequences);
    VIDKV_REQUIRE(k);
    VIDKV_REQUIRE(v);
  }
  return guarded([&] {
    const size_t n = token_halves(cache) * count;
    cache->cache->append_batch(layer, batch_ids(sequences, count), std::vector<uint16_t>(k, k + n),
                               std::vector<uint16_t>(v, v + n));
  });
}

vidkv_status vidkv_attention_batch(vidkv_cache* cache, uint32_t layer, const uint32_t* sequences, uint32_t count,
                                   const float* q, float scale, float* out) {
  VIDKV_REQUIRE(cache);
  if (count > 0) {
    VIDKV_REQUIRE(sequences);
    VIDKV_REQUIRE(q);
    VIDKV_REQUIRE(out);
  }
  return guarded([&] {
    const auto& g = cache->cache->geometry();
    const size_t n = size_t(g.q_heads) * g.head_dim * count;
    const auto result = cache->cache->attention_batch(layer, batch_ids(sequences, count),
                                                      std::vector<float>(q, q + n), scale);
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
    o.nonfinite_inputs = s.nonfinite_inputs;
    for (int i = 0; i < 3; ++i) {
      o.policy_heads[i] = s.policies[i].heads;
      o.policy_tokens[i] = s.policies[i].tokens;
      o.policy_bytes[i] = s.policies[i].bytes;
      o.policy_fp16_equivalent_bytes[i] = s.policies[i].fp16_equivalent_bytes;
    }
    *stats = o;
  });
}

vidkv_status vidkv_cache_save(vidkv_cache* cache, const char* path) {
  VIDKV_REQUIRE(cache);
  VIDKV_REQUIRE(path);
  return guarded([&] { cache->cache->save(path); });
}

vidkv_status vidkv_cache_save_sequence(vidkv_cache* cache, const char* path, uint32_t sequence) {
  VIDKV_REQUIRE(cache);
  VIDKV_REQUIRE(path);
  return guarded([&] { cache->cache->save(path, sequence); });
}

vidkv_status vidkv_cache_load(vidkv_context* ctx, const char* path, vidkv_cache** out) {
  VIDKV_REQUIRE(ctx);
  VIDKV_REQUIRE(path);
  VIDKV_REQUIRE(out);
  return guarded([&] {
    auto handle = std::make_unique<vidkv_cache>();
    handle->cache = vidkv::Cache::load(path, ctx->ctx);
    *out = handle.release();
  });
}

vidkv_status vidkv_cache_load_sequences(vidkv_cache* cache, const char* path, uint32_t* ids, uint32_t capacity,
                                        uint32_t* count) {
  VIDKV_REQUIRE(cache);
  VIDKV_REQUIRE(path);
  VIDKV_REQUIRE(count);
  if (capacity > 0) VIDKV_REQUIRE(ids);
  return guarded([&] {
    // The count is checked on the host before anything is uploaded.
    const size_t held = vidkv::read_cache_file(path).sequences.size();
    if (held > capacity) {
      throw vidkv::Error(vidkv::ErrorCode::buffer_too_small, "vidkv_cache_load_sequences: room for " +
                                                                 std::to_string(capacity) + " ids; '" + path +
                                                                 "' holds " + std::to_string(held) + " sequences");
    }
    std::vector<uint32_t> loaded = cache->cache->load_sequences(path);
    if (loaded.size() > capacity) {  // the file changed in between: undo
      for (uint32_t id : loaded) cache->cache->free_sequence(id);
      throw vidkv::Error(vidkv::ErrorCode::buffer_too_small,
                         "vidkv_cache_load_sequences: '" + std::string(path) + "' changed while it was loaded");
    }
    std::copy(loaded.begin(), loaded.end(), ids);
    *count = uint32_t(loaded.size());
  });
}

vidkv_status vidkv_sequence_ids(vidkv_cache* cache, uint32_t* ids, uint32_t capacity, uint32_t* count) {
  VIDKV_REQUIRE(cache);
  VIDKV_REQUIRE(count);
  if (capacity > 0) VIDKV_REQUIRE(ids);
  return guarded([&] {
    const std::vector<uint32_t> held = cache->cache->sequence_ids();
    if (held.size() > capacity) {
      throw vidkv::Error(vidkv::ErrorCode::buffer_too_small, "vidkv_sequence_ids: room for " +
                                                                 std::to_string(capacity) + " ids; the cache holds " +
                                                                 std::to_string(held.size()) + " sequences");
    }
    std::copy(held.begin(), held.end(), ids);
    *count = uint32_t(held.size());
  });
}

// --- engine devices, device buffers, recording, STP ---

vidkv_status vidkv_context_wrap(const vidkv_external_device* device, vidkv_context** out) {
  VIDKV_REQUIRE(device);
  VIDKV_REQUIRE(out);
  return guarded([&] {
    vidkv::rt::ExternalDevice e;
    e.get_instance_proc_addr = reinterpret_cast<PFN_vkGetInstanceProcAddr>(device->get_instance_proc_addr);
    e.instance = static_cast<VkInstance>(device->instance);
    e.physical_device = static_cast<VkPhysicalDevice>(device->physical_device);
    e.device = static_cast<VkDevice>(device->device);
    e.queue_family = device->queue_family;
    e.queue = static_cast<VkQueue>(device->queue);
    auto handle = std::make_unique<vidkv_context>();
    handle->ctx = vidkv::rt::Context::wrap(e);
    *out = handle.release();
  });
}

vidkv_status vidkv_prefill_stp(vidkv_cache* cache, uint32_t sequence, uint32_t layer, const uint16_t* k,
                               const uint16_t* v, uint32_t tokens, const vidkv_stp_input* stp) {
  VIDKV_REQUIRE(cache);
  VIDKV_REQUIRE(k);
  VIDKV_REQUIRE(v);
  VIDKV_REQUIRE(stp);
  if (stp->scores == nullptr && stp->protected_tokens == nullptr) {
    return fail(VIDKV_ERROR_INVALID_ARGUMENT, "vidkv_prefill_stp: neither scores nor protected_tokens given");
  }
  return guarded([&] {
    vidkv::CacheStpInput in = stp_input(*stp);
    const size_t n = size_t(tokens) * token_halves(cache);
    cache->cache->prefill(sequence, layer, std::vector<uint16_t>(k, k + n), std::vector<uint16_t>(v, v + n), tokens,
                          in);
  });
}

vidkv_status vidkv_sequence_serialize(vidkv_cache* cache, uint32_t sequence, void* data, size_t capacity,
                                      size_t* size) {
  VIDKV_REQUIRE(cache);
  VIDKV_REQUIRE(size);
  return guarded([&] {
    const std::vector<uint8_t> bytes = cache->cache->serialize_sequence(sequence);
    if (data != nullptr) {
      if (capacity < bytes.size()) {
        throw vidkv::Error(vidkv::ErrorCode::buffer_too_small,
                           "vidkv_sequence_serialize: sequence " + std::to_string(sequence) + " needs " +
                               std::to_string(bytes.size()) + " bytes; capacity is " + std::to_string(capacity));
      }
      std::memcpy(data, bytes.data(), bytes.size());
    }
    *size = bytes.size();
  });
}

vidkv_status vidkv_sequence_deserialize(vidkv_cache* cache, const void* data, size_t size, uint32_t* sequence) {
  VIDKV_REQUIRE(cache);
  VIDKV_REQUIRE(data);
  VIDKV_REQUIRE(sequence);
  return guarded([&] { *sequence = cache->cache->deserialize_sequence(static_cast<const uint8_t*>(data), size); });
}

vidkv_status vidkv_record_prefill(vidkv_cache* cache, void* command_buffer, uint32_t sequence, uint32_t layer,
                                  vidkv_device_buffer k, vidkv_device_buffer v, int fp32, uint32_t tokens,
                                  const vidkv_stp_input* stp) {
  VIDKV_REQUIRE(cache);
  VIDKV_REQUIRE(command_buffer);
  return guarded([&] {
    const auto type = fp32 ? vidkv::ElementType::f32 : vidkv::ElementType::f16;
    const auto cmd = static_cast<VkCommandBuffer>(command_buffer);
    if (stp) {
      cache->cache->record_prefill(cmd, sequence, layer, view_of(k), view_of(v), type, tokens, stp_input(*stp));
    } else {
      cache->cache->record_prefill(cmd, sequence, layer, view_of(k), view_of(v), type, tokens);
    }
  });
}

vidkv_status vidkv_record_append(vidkv_cache* cache, void* command_buffer, uint32_t sequence, uint32_t layer,
                                 vidkv_device_buffer k, vidkv_device_buffer v) {
  VIDKV_REQUIRE(cache);
  VIDKV_REQUIRE(command_buffer);
  return guarded([&] {
    cache->cache->record_append(static_cast<VkCommandBuffer>(command_buffer), sequence, layer, view_of(k), view_of(v));
  });
}

vidkv_status vidkv_record_attention(vidkv_cache* cache, void* command_buffer, uint32_t sequence, uint32_t layer,
                                    vidkv_device_buffer q, float scale, vidkv_device_buffer out) {
  VIDKV_REQUIRE(cache);
  VIDKV_REQUIRE(command_buffer);
  return guarded([&] {
    cache->cache->record_attention(static_cast<VkCommandBuffer>(command_buffer), sequence, layer, view_of(q),
                                   view_of(out), scale);
  });
}

vidkv_status vidkv_record_append_batch(vidkv_cache* cache, void* command_buffer, uint32_t layer,
                                       const uint32_t* sequences, uint32_t count, vidkv_device_buffer k,
                                       vidkv_device_buffer v) {
  VIDKV_REQUIRE(cache);
  VIDKV_REQUIRE(command_buffer);
  if (count > 0) VIDKV_REQUIRE(sequences);
  return guarded([&] {
    cache->cache->record_append_batch(static_cast<VkCommandBuffer>(command_buffer), layer,
                                      batch_ids(sequences, count), view_of(k), view_of(v));
  });
}

vidkv_status vidkv_record_attention_batch(vidkv_cache* cache, void* command_buffer, uint32_t layer,
                                          const uint32_t* sequences, uint32_t count, vidkv_device_buffer q,
                                          float scale, vidkv_device_buffer out) {
  VIDKV_REQUIRE(cache);
  VIDKV_REQUIRE(command_buffer);
  if (count > 0) VIDKV_REQUIRE(sequences);
  return guarded([&] {
    cache->cache->record_attention_batch(static_cast<VkCommandBuffer>(command_buffer), layer,
                                         batch_ids(sequences, count), view_of(q), view_of(out), scale);
  });
}

vidkv_status vidkv_record_dequantize(vidkv_cache* cache, void* command_buffer, uint32_t sequence, uint32_t layer,
                                     vidkv_device_buffer k, vidkv_device_buffer v) {
  VIDKV_REQUIRE(cache);
  VIDKV_REQUIRE(command_buffer);
  return guarded([&] {
    cache->cache->record_dequantize(static_cast<VkCommandBuffer>(command_buffer), sequence, layer, view_of(k),
                                    view_of(v));
  });
}

vidkv_status vidkv_record_extend(vidkv_cache* cache, void* command_buffer, uint32_t sequence, uint32_t layer,
                                 vidkv_device_buffer k, vidkv_device_buffer v, int fp32, uint32_t tokens) {
  VIDKV_REQUIRE(cache);
  VIDKV_REQUIRE(command_buffer);
  return guarded([&] {
    const auto type = fp32 ? vidkv::ElementType::f32 : vidkv::ElementType::f16;
    cache->cache->record_extend(static_cast<VkCommandBuffer>(command_buffer), sequence, layer, view_of(k), view_of(v),
                                type, tokens);
  });
}

vidkv_status vidkv_record_attention_causal(vidkv_cache* cache, void* command_buffer, uint32_t sequence,
                                           uint32_t layer, vidkv_device_buffer q, uint32_t tokens, float scale,
                                           vidkv_device_buffer out) {
  VIDKV_REQUIRE(cache);
  VIDKV_REQUIRE(command_buffer);
  return guarded([&] {
    cache->cache->record_attention_causal(static_cast<VkCommandBuffer>(command_buffer), sequence, layer, view_of(q),
                                          view_of(out), tokens, scale);
  });
}

vidkv_status vidkv_release_retired(vidkv_cache* cache) {
  VIDKV_REQUIRE(cache);
  return guarded([&] { cache->cache->release_retired(); });
}

}  // extern "C"
