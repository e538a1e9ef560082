// Argument checks of vidkv::Cache's entry points (cache_checks.hpp).
#include "sequence_cache/cache_checks.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "vk.hpp"

namespace vidkv::cache_checks {

using cache_detail::Layer;


Error bad(const std::string& message) { return Error(ErrorCode::invalid_argument, message); }

void geometry(const CacheGeometry& g) {
  if (g.layers == 0) throw bad("cache: layers 0");
  if (g.kv_heads == 0) throw bad("cache: kv_heads 0");
  if (g.q_heads == 0 || g.q_heads % g.kv_heads != 0) {
    throw bad("cache: q_heads " + std::to_string(g.q_heads) + " is not a multiple of kv_heads " +
              std::to_string(g.kv_heads));
  }
  if (g.q_heads / g.kv_heads > 16) {
    throw bad("cache: q_heads " + std::to_string(g.q_heads) + " is " + std::to_string(g.q_heads / g.kv_heads) +
              " query heads per KV head; the attention serves at most 16");
  }
  if (g.head_dim < 64 || g.head_dim > 256 || g.head_dim % 16 != 0) {
    throw bad("cache: head_dim " + std::to_string(g.head_dim) + " (a multiple of 16 from 64 to 256 accepted)");
  }
}

// What the cache cannot store yet, beyond validate(settings).
void settings(const CacheSettings& s, const CacheGeometry& g) {
  validate(s);
  const bool fp16_keys = s.key_mode == CacheSettings::KeyMode::fp16;
  const bool fp16_values = s.value_mode == CacheSettings::ValueMode::fp16;
  if (fp16_keys != fp16_values) {
    // The attention has one fp16 path (both fp16) and one packed path (both quantized).
    throw Error(ErrorCode::unsupported_bits, std::string("cache settings ") + s.name + ": keys " +
                                                 key_mode_name(s.key_mode) + " with values " +
                                                 value_mode_name(s.value_mode) +
                                                 ": fp16 must be both keys and values or neither");
  }
  if (fp16_keys) return;
  if (s.group_size != 32 && s.group_size != 64 && s.group_size != 128) {
    throw Error(ErrorCode::bad_group_size, "cache settings " + s.name + ": group_size " +
                                               std::to_string(s.group_size) +
                                               "; the fused attention reads groups of 32, 64 or 128 only");
  }
  if (s.value_mode == CacheSettings::ValueMode::per_channel_ternary && !s.trits_base3) {
    throw Error(ErrorCode::unsupported_bits, "cache settings " + s.name +
                                                 ": ternary values in 2-bit fields (trits_base3 = false) have no "
                                                 "attention path; use trits 5 per byte");
  }
  if (s.value_mode == CacheSettings::ValueMode::per_token_2bit && g.head_dim % s.group_size != 0) {
    throw Error(ErrorCode::bad_group_size, "cache: head_dim " + std::to_string(g.head_dim) +
                                               " is not a multiple of group_size " + std::to_string(s.group_size) +
                                               " (per-token values)");
  }
}

void size(const char* what, size_t have, uint64_t want) {
  if (have != want) {
    throw bad(std::string(what) + " holds " + std::to_string(have) + " halves/floats; " + std::to_string(want) +
              " expected");
  }
}



void prefill_state(const Cache::Impl& m, const Layer& l, uint32_t sequence, uint32_t layer, uint32_t tokens) {
  const std::string where = "sequence " + std::to_string(sequence) + " layer " + std::to_string(layer);
  if (l.prefilled) throw bad("cache: prefill twice on " + where);
  if (l.appended || l.tokens() > 0) throw bad("cache: prefill after append on " + where);
  if (tokens == 0) throw bad("cache: prefill of 0 tokens on " + where);
  if (tokens > m.max_tokens) {
    throw bad("cache: prefill of " + std::to_string(tokens) + " tokens on " + where + " exceeds max_tokens " +
              std::to_string(m.max_tokens));
  }
}

std::string where(uint32_t sequence, uint32_t layer, const char* op) {
  return std::string("cache: ") + op + " on sequence " + std::to_string(sequence) + " layer " + std::to_string(layer);
}

void append_state(const Cache::Impl& m, const Layer& l, uint32_t sequence, uint32_t layer) {
  if (l.tokens() >= m.max_tokens) {
    throw bad("cache: append to sequence " + std::to_string(sequence) + " layer " + std::to_string(layer) +
              " beyond max_tokens " + std::to_string(m.max_tokens));
  }
}

void attention_state(const Cache::Impl&, const Layer& l, uint32_t sequence, uint32_t layer, float scale) {
  if (!std::isfinite(scale) || scale < 0.0f) throw bad("cache: attention scale " + std::to_string(scale));
  if (l.tokens() == 0) {
    throw bad("cache: attention over empty sequence " + std::to_string(sequence) + " layer " + std::to_string(layer));
  }
}

void view(const Cache::Impl& m, const rt::BufferView& view, uint64_t bytes, const std::string& what,
                const char* unit_text) {
  if (view.buffer == VK_NULL_HANDLE) throw bad(what + ": no buffer");
  if (view.size < bytes) {
    throw Error(ErrorCode::buffer_too_small,
                what + " view holds " + std::to_string(view.size) + " bytes; " + std::to_string(bytes) + " needed" + unit_text);
  }
  // Vulkan cannot tell a VkBuffer's own size, only the memory it needs (its size rounded up to the
  // device's alignment): a view past that is certainly wrong and would read or write outside the
  // buffer, so it is refused; a view inside the rounding is trusted (documented in cache.hpp).
  VkMemoryRequirements req{};
  vkGetBufferMemoryRequirements(m.ctx->device(), view.buffer, &req);
  if (view.offset > req.size || view.size > req.size - view.offset) {
    throw bad(what + " view [" + std::to_string(view.offset) + ", +" + std::to_string(view.size) +
              ") runs past the end of its VkBuffer (" + std::to_string(req.size) + " bytes of memory at most)");
  }
  const uint64_t align = std::max<uint64_t>(m.ctx->info().min_storage_buffer_offset_alignment, 4);
  if (view.offset % align != 0) {
    throw bad(what + " offset " + std::to_string(view.offset) + " is not a multiple of the device's storage buffer "
              "offset alignment " + std::to_string(align));
  }
}

// Device input of `tokens` tokens [tokens][kv_heads][head_dim] of `type` (f16, or f32 for a prefill).
void input_views(const Cache::Impl& m, const rt::BufferView& keys, const rt::BufferView& values,
                       ElementType type, uint32_t tokens, const char* op) {
  if (type != ElementType::f16 && type != ElementType::f32) {
    throw Error(ErrorCode::unsupported_bits, std::string("cache: ") + op + " from " + element_type_name(type) +
                                                 " device buffers (f16 or f32 accepted)");
  }
  if (type == ElementType::f32 && std::string(op) != "prefill" && std::string(op) != "extend") {
    throw Error(ErrorCode::unsupported_bits, std::string("cache: ") + op + " takes f16 device buffers");
  }
  const uint64_t bytes = uint64_t(tokens) * m.token_halves() * (type == ElementType::f32 ? 4 : 2);
  const std::string unit = " for " + std::to_string(tokens) + " tokens";
  view(m, keys, bytes, std::string(op) + " keys", unit.c_str());
  view(m, values, bytes, std::string(op) + " values", unit.c_str());
}

void query_views(const Cache::Impl& m, const rt::BufferView& q, const rt::BufferView& out) {
  const uint64_t bytes = uint64_t(m.geometry.q_heads) * m.geometry.head_dim * 4;
  view(m, q, bytes, "attention q", " (fp32 [q_heads][head_dim])");
  view(m, out, bytes, "attention out", " (fp32 [q_heads][head_dim])");
}


void output_views(const Cache::Impl& m, const rt::BufferView& keys, const rt::BufferView& values, uint32_t tokens,
                  const char* op) {
  if (tokens == 0) throw bad(std::string("cache: ") + op + " of an empty layer");
  const uint64_t bytes = uint64_t(tokens) * m.token_bytes();
  const std::string unit = " for " + std::to_string(tokens) + " tokens";
  view(m, keys, bytes, std::string(op) + " keys", unit.c_str());
  view(m, values, bytes, std::string(op) + " values", unit.c_str());
}

}  // namespace vidkv::cache_checks
