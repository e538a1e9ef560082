// vidkv::Cache: the public API and its argument checks. Every entry point checks everything
// before it touches state (cache.hpp); the device work lives in cache_layer.cpp.
#include <cmath>
#include <string>

#include "cache_internal.hpp"

namespace vidkv {

using cache_detail::Layer;
using cache_detail::Sequence;

namespace {

Error bad(const std::string& message) { return Error(ErrorCode::invalid_argument, message); }

void check_geometry(const CacheGeometry& g) {
  if (g.layers == 0) throw bad("cache: layers 0");
  if (g.kv_heads == 0) throw bad("cache: kv_heads 0");
  if (g.q_heads == 0 || g.q_heads % g.kv_heads != 0) {
    throw bad("cache: q_heads " + std::to_string(g.q_heads) + " is not a multiple of kv_heads " +
              std::to_string(g.kv_heads));
  }
  if (g.q_heads / g.kv_heads > 8) {
    throw bad("cache: q_heads " + std::to_string(g.q_heads) + " is " + std::to_string(g.q_heads / g.kv_heads) +
              " query heads per KV head; the attention serves at most 8");
  }
  if (g.head_dim != 64 && g.head_dim != 128 && g.head_dim != 256) {
    throw bad("cache: head_dim " + std::to_string(g.head_dim) + " (64, 128 or 256 accepted)");
  }
}

// What the cache cannot store yet, beyond validate(settings).
void check_settings(const CacheSettings& s, const CacheGeometry& g) {
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
  if (s.stp) {
    throw Error(ErrorCode::unsupported_bits, "cache settings " + s.name +
                                                 ": semantic token protection (STP) is not yet supported by the cache");
  }
  if (fp16_keys) return;
  if (s.group_size != 32) {
    throw Error(ErrorCode::bad_group_size, "cache settings " + s.name + ": group_size " +
                                               std::to_string(s.group_size) +
                                               "; the fused attention reads groups of 32 only");
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

void check_size(const char* what, size_t have, uint64_t want) {
  if (have != want) {
    throw bad(std::string(what) + " holds " + std::to_string(have) + " halves/floats; " + std::to_string(want) +
              " expected");
  }
}

}  // namespace

Cache::Impl::Impl(std::shared_ptr<rt::Context> c, const CacheGeometry& g, const CacheSettings& s, uint32_t max)
    : ctx(std::move(c)), geometry(g), settings(s), max_tokens(max), quantizer(ctx), keys(ctx), attention(ctx),
      runner(ctx) {}

Sequence& Cache::Impl::sequence(uint32_t id) {
  auto it = sequences.find(id);
  if (it == sequences.end()) throw bad("cache: unknown sequence " + std::to_string(id));
  return it->second;
}
const Sequence& Cache::Impl::sequence(uint32_t id) const {
  auto it = sequences.find(id);
  if (it == sequences.end()) throw bad("cache: unknown sequence " + std::to_string(id));
  return it->second;
}
Layer& Cache::Impl::layer(uint32_t id, uint32_t l) {
  Sequence& s = sequence(id);
  if (l >= s.layers.size()) {
    throw bad("cache: layer " + std::to_string(l) + " of sequence " + std::to_string(id) + " (the cache has " +
              std::to_string(s.layers.size()) + " layers)");
  }
  return s.layers[l];
}
const Layer& Cache::Impl::layer(uint32_t id, uint32_t l) const {
  return const_cast<Impl*>(this)->layer(id, l);
}

Cache::Cache(std::shared_ptr<rt::Context> context, const CacheGeometry& geometry, const CacheSettings& settings,
             uint32_t max_tokens) {
  if (!context) throw bad("cache: no context");
  check_geometry(geometry);
  check_settings(settings, geometry);
  if (max_tokens == 0) throw bad("cache: max_tokens 0");
  impl_ = std::make_unique<Impl>(std::move(context), geometry, settings, max_tokens);
}

Cache::~Cache() = default;

uint32_t Cache::create_sequence() {
  Impl& m = *impl_;
  while (m.next_id == 0 || m.sequences.count(m.next_id)) ++m.next_id;  // ids are never 0 (the C API's "none")
  const uint32_t id = m.next_id++;
  Sequence s;
  s.layers.resize(m.geometry.layers);
  m.sequences.emplace(id, std::move(s));
  return id;
}

void Cache::free_sequence(uint32_t sequence) {
  impl_->sequence(sequence);  // throws naming an unknown id
  impl_->sequences.erase(sequence);
}

bool Cache::has_sequence(uint32_t sequence) const { return impl_->sequences.count(sequence) != 0; }

uint32_t Cache::tokens(uint32_t sequence, uint32_t layer) const { return impl_->layer(sequence, layer).tokens(); }

namespace {

void check_prefill_state(const Cache::Impl& m, const Layer& l, uint32_t sequence, uint32_t layer, uint32_t tokens) {
  const std::string where = "sequence " + std::to_string(sequence) + " layer " + std::to_string(layer);
  if (l.prefilled) throw bad("cache: prefill twice on " + where);
  if (l.appended || l.tokens() > 0) throw bad("cache: prefill after append on " + where);
  if (tokens == 0) throw bad("cache: prefill of 0 tokens on " + where);
  if (tokens > m.max_tokens) {
    throw bad("cache: prefill of " + std::to_string(tokens) + " tokens on " + where + " exceeds max_tokens " +
              std::to_string(m.max_tokens));
  }
}

}  // namespace

void Cache::prefill(uint32_t sequence, uint32_t layer, const std::vector<uint16_t>& keys,
                    const std::vector<uint16_t>& values, uint32_t tokens) {
  Impl& m = *impl_;
  Layer& l = m.layer(sequence, layer);
  check_prefill_state(m, l, sequence, layer, tokens);
  const uint64_t n = uint64_t(tokens) * m.token_halves();
  check_size("prefill keys", keys.size(), n);
  check_size("prefill values", values.size(), n);
  // Staged in device buffers of its own; the device path does the rest.
  const uint64_t bytes = (n * 2 + 3) / 4 * 4;
  rt::Buffer k(m.ctx, bytes), v(m.ctx, bytes);
  k.upload(keys.data(), n * 2);
  v.upload(values.data(), n * 2);
  m.prefill_device(l, k.view(0, n * 2), v.view(0, n * 2), tokens);
}

void Cache::prefill(uint32_t sequence, uint32_t layer, const rt::BufferView& keys, const rt::BufferView& values,
                    ElementType type, uint32_t tokens) {
  Impl& m = *impl_;
  Layer& l = m.layer(sequence, layer);
  check_prefill_state(m, l, sequence, layer, tokens);
  if (type != ElementType::f16) {
    throw Error(ErrorCode::unsupported_bits, std::string("cache: prefill from ") + element_type_name(type) +
                                                 " device buffers is not supported; convert to f16");
  }
  const uint64_t bytes = uint64_t(tokens) * m.token_halves() * 2;
  for (const auto* view : {&keys, &values}) {
    const char* what = view == &keys ? "prefill keys" : "prefill values";
    if (view->buffer == VK_NULL_HANDLE) throw bad(std::string(what) + ": no buffer");
    if (view->size < bytes) {
      throw Error(ErrorCode::buffer_too_small, std::string(what) + " view holds " + std::to_string(view->size) +
                                                   " bytes; " + std::to_string(bytes) + " needed for " +
                                                   std::to_string(tokens) + " tokens");
    }
    if (view->offset % 4 != 0) throw bad(std::string(what) + " offset " + std::to_string(view->offset) + " is not a multiple of 4");
  }
  m.prefill_device(l, keys, values, tokens);
}

void Cache::append(uint32_t sequence, uint32_t layer, const std::vector<uint16_t>& key,
                   const std::vector<uint16_t>& value) {
  Impl& m = *impl_;
  Layer& l = m.layer(sequence, layer);
  check_size("append key", key.size(), m.token_halves());
  check_size("append value", value.size(), m.token_halves());
  if (l.tokens() >= m.max_tokens) {
    throw bad("cache: append to sequence " + std::to_string(sequence) + " layer " + std::to_string(layer) +
              " beyond max_tokens " + std::to_string(m.max_tokens));
  }
  m.append_token(l, key, value);
}

std::vector<float> Cache::attention(uint32_t sequence, uint32_t layer, const std::vector<float>& q, float scale) {
  Impl& m = *impl_;
  const Layer& l = m.layer(sequence, layer);
  check_size("attention q", q.size(), uint64_t(m.geometry.q_heads) * m.geometry.head_dim);
  if (!std::isfinite(scale) || scale < 0.0f) throw bad("cache: attention scale " + std::to_string(scale));
  if (l.tokens() == 0) {
    throw bad("cache: attention over empty sequence " + std::to_string(sequence) + " layer " + std::to_string(layer));
  }
  return m.attend(l, q, scale);
}

const CacheGeometry& Cache::geometry() const { return impl_->geometry; }
const CacheSettings& Cache::settings() const { return impl_->settings; }
uint32_t Cache::max_tokens() const { return impl_->max_tokens; }

}  // namespace vidkv
