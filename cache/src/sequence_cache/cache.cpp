// vidkv::Cache: the public API and its argument checks. Every entry point checks everything
// before it touches state (cache.hpp); the device work lives in cache_layer.cpp.
#include <algorithm>
#include <cmath>
#include <string>

#include "sequence_cache/cache_checks.hpp"
#include "sequence_cache/cache_internal.hpp"

namespace vidkv {

using cache_detail::Layer;
using cache_detail::Sequence;


Cache::Impl::Impl(std::shared_ptr<rt::Context> c, const CacheGeometry& g, const CacheSettings& s, uint32_t max)
    : ctx(std::move(c)), geometry(g), settings(s), max_tokens(max), quantizer(ctx), keys(ctx), attention(ctx),
      pipelines(ctx), runner(ctx) {}

Sequence& Cache::Impl::sequence(uint32_t id) {
  auto it = sequences.find(id);
  if (it == sequences.end()) throw cache_checks::bad("cache: unknown sequence " + std::to_string(id));
  return it->second;
}
const Sequence& Cache::Impl::sequence(uint32_t id) const {
  auto it = sequences.find(id);
  if (it == sequences.end()) throw cache_checks::bad("cache: unknown sequence " + std::to_string(id));
  return it->second;
}
Layer& Cache::Impl::layer(uint32_t id, uint32_t l) {
  Sequence& s = sequence(id);
  if (l >= s.layers.size()) {
    throw cache_checks::bad("cache: layer " + std::to_string(l) + " of sequence " + std::to_string(id) + " (the cache has " +
              std::to_string(s.layers.size()) + " layers)");
  }
  return s.layers[l];
}
const Layer& Cache::Impl::layer(uint32_t id, uint32_t l) const {
  return const_cast<Impl*>(this)->layer(id, l);
}

Cache::Cache(std::shared_ptr<rt::Context> context, const CacheGeometry& geometry, const CacheSettings& settings,
             uint32_t max_tokens) {
  if (!context) throw cache_checks::bad("cache: no context");
  cache_checks::geometry(geometry);
  cache_checks::settings(settings, geometry);
  if (max_tokens == 0) throw cache_checks::bad("cache: max_tokens 0");
  // Positions inside one layer's K or V are 32-bit on the device (the NaN/Inf scan reports them).
  if (uint64_t(max_tokens) * geometry.kv_heads * geometry.head_dim >= (1ull << 31)) {
    throw cache_checks::bad("cache: max_tokens " + std::to_string(max_tokens) + " x kv_heads x head_dim exceeds 2^31 values per layer");
  }
  // Checks the policies against the geometry (throws naming the layer/head or value).
  const std::vector<HeadPolicy> policies =
      resolve_head_policies(settings.head_policies, geometry.layers, geometry.kv_heads);
  impl_ = std::make_unique<Impl>(std::move(context), geometry, settings, max_tokens);
  impl_->routes.resize(geometry.layers);
  for (uint32_t l = 0; l < geometry.layers; ++l) {
    cache_detail::HeadRoute& r = impl_->routes[l];
    for (uint32_t h = 0; h < geometry.kv_heads; ++h) {
      const HeadPolicy p = policies[size_t(l) * geometry.kv_heads + h];
      (p == HeadPolicy::vidkv ? r.preset : p == HeadPolicy::full ? r.full : r.window).push_back(h);
    }
  }
}

Cache::~Cache() = default;

uint32_t Cache::create_sequence() {
  Impl& m = *impl_;
  while (m.next_id == 0 || m.sequences.count(m.next_id)) ++m.next_id;  // ids are never 0 (the C API's "none")
  const uint32_t id = m.next_id++;
  m.sequences.emplace(id, m.make_sequence());
  return id;
}

void Cache::free_sequence(uint32_t sequence) {
  impl_->sequence(sequence);  // throws naming an unknown id
  impl_->sequences.erase(sequence);
}

bool Cache::has_sequence(uint32_t sequence) const { return impl_->sequences.count(sequence) != 0; }

uint32_t Cache::tokens(uint32_t sequence, uint32_t layer) const { return impl_->layer(sequence, layer).tokens(); }


namespace {

// The prefill entry points share this: host input is staged in device buffers of its own.
void prefill_from_host(Cache& cache, const Cache::Impl& m, uint32_t sequence, uint32_t layer,
                       const std::vector<uint16_t>& keys, const std::vector<uint16_t>& values, uint32_t tokens,
                       const CacheStpInput* stp) {
  cache_checks::prefill_state(m, m.layer(sequence, layer), sequence, layer, tokens);
  const uint64_t n = uint64_t(tokens) * m.token_halves();
  cache_checks::size("prefill keys", keys.size(), n);
  cache_checks::size("prefill values", values.size(), n);
  rt::Buffer k(m.ctx, std::max<uint64_t>(n * 2, 16)), v(m.ctx, std::max<uint64_t>(n * 2, 16));
  k.upload(keys.data(), n * 2);
  v.upload(values.data(), n * 2);
  if (stp) {
    cache.prefill(sequence, layer, k.view(0, n * 2), v.view(0, n * 2), ElementType::f16, tokens, *stp);
  } else {
    cache.prefill(sequence, layer, k.view(0, n * 2), v.view(0, n * 2), ElementType::f16, tokens);
  }
}

void prefill_device(Cache::Impl& m, uint32_t sequence, uint32_t layer, const rt::BufferView& keys,
                    const rt::BufferView& values, ElementType type, uint32_t tokens, const CacheStpInput* stp) {
  Layer& l = m.layer(sequence, layer);
  cache_checks::prefill_state(m, l, sequence, layer, tokens);
  cache_checks::input_views(m, keys, values, type, tokens, "prefill");
  const cache_detail::StpPlan plan = m.plan_stp(tokens, stp);
  cache_detail::PendingWrite p = m.prepare_prefill(l, tokens, type, plan);
  const rt::BufferView check = m.begin_check();
  m.run([&](VkCommandBuffer cmd) { m.record_prefill(cmd, l, p, keys, values, type, tokens, check); });
  m.finish_check(cache_checks::where(sequence, layer, "prefill"), 0);
  m.commit(l, p, true);
}

}  // namespace

void Cache::prefill(uint32_t sequence, uint32_t layer, const std::vector<uint16_t>& keys,
                    const std::vector<uint16_t>& values, uint32_t tokens) {
  prefill_from_host(*this, *impl_, sequence, layer, keys, values, tokens, nullptr);
}

void Cache::prefill(uint32_t sequence, uint32_t layer, const std::vector<uint16_t>& keys,
                    const std::vector<uint16_t>& values, uint32_t tokens, const CacheStpInput& stp) {
  prefill_from_host(*this, *impl_, sequence, layer, keys, values, tokens, &stp);
}

void Cache::prefill(uint32_t sequence, uint32_t layer, const rt::BufferView& keys, const rt::BufferView& values,
                    ElementType type, uint32_t tokens) {
  prefill_device(*impl_, sequence, layer, keys, values, type, tokens, nullptr);
}

void Cache::prefill(uint32_t sequence, uint32_t layer, const rt::BufferView& keys, const rt::BufferView& values,
                    ElementType type, uint32_t tokens, const CacheStpInput& stp) {
  prefill_device(*impl_, sequence, layer, keys, values, type, tokens, &stp);
}

namespace {

// A synchronous append to a mixed layer: the input is checked for NaN/Inf in a run of its own
// before any store is written, since a window head's ring overwrites a live token.
void append_mixed(Cache::Impl& m, Layer& l, uint32_t sequence, uint32_t layer, const rt::BufferView& key,
                  const rt::BufferView& value) {
  cache_detail::PendingWrite p = m.prepare_append(l);
  const rt::BufferView check = m.begin_check();
  m.run([&](VkCommandBuffer cmd) {
    rt::compute_transfer_barrier(cmd);
    m.record_scan(cmd, key, value, m.token_halves(), check);
  });
  m.finish_check(cache_checks::where(sequence, layer, "append"), l.tokens());
  m.run([&](VkCommandBuffer cmd) { m.record_append(cmd, l, p, key, value, {}); });
  m.commit(l, p, false);
}

}  // namespace

void Cache::append(uint32_t sequence, uint32_t layer, const std::vector<uint16_t>& key,
                   const std::vector<uint16_t>& value) {
  Impl& m = *impl_;
  Layer& l = m.layer(sequence, layer);
  cache_checks::size("append key", key.size(), m.token_halves());
  cache_checks::size("append value", value.size(), m.token_halves());
  cache_checks::append_state(m, l, sequence, layer);
  if (l.mixed) {
    // Staged in a scratch token buffer: its heads go to different stores.
    const uint64_t row = m.token_bytes();
    const uint64_t align = std::max<uint64_t>(256, m.ctx->info().min_storage_buffer_offset_alignment);
    const uint64_t second = (row + align - 1) / align * align;
    rt::Buffer& staged = m.grow(m.scratch.route_token, second + row);
    staged.upload(key.data(), row, 0);
    staged.upload(value.data(), row, second);
    append_mixed(m, l, sequence, layer, staged.view(0, row), staged.view(second, row));
    return;
  }
  cache_detail::PendingWrite p = m.prepare_append(l);
  // Uploaded straight into the residual, past its live tokens: nothing live is overwritten.
  const uint64_t row = m.token_bytes(), at = uint64_t(l.residual) * row;
  (l.residual_keys ? *l.residual_keys : *p.residual_keys).upload(key.data(), row, at);
  (l.residual_values ? *l.residual_values : *p.residual_values).upload(value.data(), row, at);
  const rt::BufferView check = m.begin_check();
  m.run([&](VkCommandBuffer cmd) { m.record_append(cmd, l, p, {}, {}, check); });
  m.finish_check(cache_checks::where(sequence, layer, "append"), l.tokens());
  m.commit(l, p, false);
}

void Cache::append(uint32_t sequence, uint32_t layer, const rt::BufferView& key, const rt::BufferView& value) {
  Impl& m = *impl_;
  Layer& l = m.layer(sequence, layer);
  cache_checks::input_views(m, key, value, ElementType::f16, 1, "append");
  cache_checks::append_state(m, l, sequence, layer);
  if (l.mixed) {
    append_mixed(m, l, sequence, layer, key, value);
    return;
  }
  cache_detail::PendingWrite p = m.prepare_append(l);
  const rt::BufferView check = m.begin_check();
  m.run([&](VkCommandBuffer cmd) {
    rt::compute_transfer_barrier(cmd);
    m.record_append(cmd, l, p, key, value, check);
  });
  m.finish_check(cache_checks::where(sequence, layer, "append"), l.tokens());
  m.commit(l, p, false);
}

std::vector<float> Cache::attention(uint32_t sequence, uint32_t layer, const std::vector<float>& q, float scale) {
  Impl& m = *impl_;
  const Layer& l = m.layer(sequence, layer);
  cache_checks::size("attention q", q.size(), uint64_t(m.geometry.q_heads) * m.geometry.head_dim);
  cache_checks::attention_state(m, l, sequence, layer, scale);
  const uint64_t bytes = q.size() * 4;
  rt::Buffer& qb = m.grow(m.scratch.q, bytes);
  rt::Buffer& out = m.grow(m.scratch.out, bytes);
  qb.upload(q.data(), bytes);
  m.run([&](VkCommandBuffer cmd) { m.record_attention(cmd, l, qb.view(0, bytes), out.view(0, bytes), scale); });
  std::vector<float> result(q.size());
  out.download(result.data(), bytes);
  return result;
}

void Cache::attention(uint32_t sequence, uint32_t layer, const rt::BufferView& q, const rt::BufferView& out,
                      float scale) {
  Impl& m = *impl_;
  const Layer& l = m.layer(sequence, layer);
  cache_checks::attention_state(m, l, sequence, layer, scale);
  cache_checks::query_views(m, q, out);
  m.run([&](VkCommandBuffer cmd) {
    rt::compute_transfer_barrier(cmd);
    m.record_attention(cmd, l, q, out, scale);
  });
}

const CacheGeometry& Cache::geometry() const { return impl_->geometry; }
const CacheSettings& Cache::settings() const { return impl_->settings; }
uint32_t Cache::max_tokens() const { return impl_->max_tokens; }
void Cache::set_portable_attention(bool portable) { impl_->attention.set_portable(portable); }

}  // namespace vidkv
