// vidkv::Cache::extend: many tokens appended in one operation, bit for bit what that many appends
// would store. The residual's live tokens and the input are gathered into a staging buffer, every
// whole residual_length of it becomes a new segment exactly as an append's flush quantizes the
// full residual, and what is left becomes the residual. All of it is one recorded pass (one
// submission for the synchronous form), not one per token.
//
// "Nothing changed on error": the live residual is only read. When the extend flushes, what is
// left goes to a new residual buffer (the old one is retired, recorded work may still read it);
// when it does not, the tokens are written past the live ones, as append writes its token.
#include <algorithm>
#include <string>

#include "sequence_cache/cache_checks.hpp"
#include "sequence_cache/cache_internal.hpp"

namespace vidkv {

using cache_detail::Layer;
using cache_detail::PendingWrite;
using cache_detail::new_buffer;

namespace {

rt::BufferView at(const rt::BufferView& v, uint64_t offset, uint64_t size) { return {v.buffer, v.offset + offset, size}; }

// Tokens of an extend that its flushes quantize (0 when none: the fp16 preset never flushes).
uint32_t flushed_tokens(const Cache::Impl& m, const Layer& layer, uint32_t tokens) {
  if (m.fp16()) return 0;
  const uint32_t R = m.settings.residual_length;
  return (layer.residual + tokens) / R * R;
}

}  // namespace

PendingWrite Cache::Impl::prepare_extend(const Layer& layer, uint32_t tokens, ElementType type) {
  PendingWrite p;
  const uint32_t flushed = flushed_tokens(*this, layer, tokens), R = settings.residual_length;
  p.quantized = layer.quantized + flushed;
  p.residual = layer.residual + tokens - flushed;
  p.count = layer.count;
  if (type == ElementType::f32) ensure_convert_scratch();
  for (uint32_t s = 0; s < flushed / R; ++s) {
    p.segments.push_back(cache_detail::prepare_segment(*this, layer, R, nullptr, s == 0 && !layer.channels));
  }
  if (flushed > 0) {
    grow(scratch.extend_keys, uint64_t(flushed) * token_bytes());
    grow(scratch.extend_values, uint64_t(flushed) * token_bytes());
  }
  // A new residual when the old one has none, or when its live tokens are flushed and others follow.
  if (!layer.residual_keys || (flushed > 0 && p.residual > 0)) {
    const uint64_t bytes = uint64_t(residual_capacity()) * token_bytes();
    p.residual_keys = new_buffer(ctx, bytes);
    p.residual_values = new_buffer(ctx, bytes);
  }
  return p;
}

void Cache::Impl::record_extend(VkCommandBuffer cmd, const Layer& layer, PendingWrite& p, const rt::BufferView& k,
                                const rt::BufferView& v, ElementType type, uint32_t tokens,
                                const rt::BufferView& check) {
  const uint64_t row = token_bytes(), halves = uint64_t(tokens) * token_halves();
  auto [k16, v16] = record_convert(cmd, k, v, type, halves);
  if (type == ElementType::f32) rt::compute_transfer_barrier(cmd);  // the copies below read them too
  record_scan(cmd, k16, v16, halves, check);
  const uint32_t flushed = uint32_t(p.segments.size()) * settings.residual_length;
  // The pending residual when there is one (residual_view prefers the layer's own).
  const rt::BufferView rk = p.residual_keys ? p.residual_keys->view() : layer.residual_keys->view();
  const rt::BufferView rv = p.residual_values ? p.residual_values->view() : layer.residual_values->view();
  if (flushed == 0) {
    // Past the live tokens, as append writes its token.
    const uint64_t to = uint64_t(layer.residual) * row, bytes = uint64_t(tokens) * row;
    rt::record_copy(cmd, at(k16, 0, bytes), at(rk, to, bytes), bytes);
    rt::record_copy(cmd, at(v16, 0, bytes), at(rv, to, bytes), bytes);
    return;
  }
  // Staging: the old residual's tokens, then the input's up to the last flush.
  const rt::BufferView sk = scratch.extend_keys->view(), sv = scratch.extend_values->view();
  const uint64_t old = uint64_t(layer.residual) * row, taken = uint64_t(flushed) * row - old;
  if (old > 0) {
    rt::record_copy(cmd, layer.residual_keys->view(0, old), at(sk, 0, old), old);
    rt::record_copy(cmd, layer.residual_values->view(0, old), at(sv, 0, old), old);
  }
  rt::record_copy(cmd, at(k16, 0, taken), at(sk, old, taken), taken);
  rt::record_copy(cmd, at(v16, 0, taken), at(sv, old, taken), taken);
  if (p.residual > 0) {
    // The rest starts the new residual (a fresh buffer: the live one is only read).
    const uint64_t rest = uint64_t(p.residual) * row;
    rt::record_copy(cmd, at(k16, taken, rest), at(rk, 0, rest), rest);
    rt::record_copy(cmd, at(v16, taken, rest), at(rv, 0, rest), rest);
  }
  rt::transfer_to_compute_barrier(cmd);
  const uint64_t chunk = uint64_t(settings.residual_length) * row;  // a multiple of 4096 bytes: bindable
  const rt::Buffer* chosen = p.segments.front().new_channels.get();
  for (size_t s = 0; s < p.segments.size(); ++s) {
    // Each flush reuses the quantization scratch of the one before.
    if (s > 0) rt::compute_transfer_barrier(cmd);
    cache_detail::record_segment(*this, cmd, layer, p.segments[s], at(sk, s * chunk, chunk), at(sv, s * chunk, chunk),
                                 settings.residual_length, chosen);
  }
}

void Cache::Impl::commit_extend(Layer& layer, PendingWrite& p) {
  if (p.residual_keys && layer.residual_keys) {
    scratch.retired.push_back(std::move(layer.residual_keys));
    scratch.retired.push_back(std::move(layer.residual_values));
  }
  commit(layer, p, false);
}

namespace {

void extend_checks(const Cache::Impl& m, const Layer& l, uint32_t sequence, uint32_t layer, uint32_t tokens) {
  const std::string where = cache_checks::where(sequence, layer, "extend");
  if (tokens == 0) throw cache_checks::bad(where + ": 0 tokens");
  if (uint64_t(l.tokens()) + tokens > m.max_tokens) {
    throw cache_checks::bad(where + ": " + std::to_string(tokens) + " tokens after " + std::to_string(l.tokens()) +
                            " exceed max_tokens " + std::to_string(m.max_tokens));
  }
  if (l.mixed) {
    throw Error(ErrorCode::invalid_argument, where + ": the layer has per-head policies (full or window heads); "
                                             "extend takes layers whose heads all use the preset (append token by token)");
  }
}

void extend_device(Cache::Impl& m, uint32_t sequence, uint32_t layer, const rt::BufferView& keys,
                   const rt::BufferView& values, ElementType type, uint32_t tokens, VkCommandBuffer cmd) {
  Layer& l = m.layer(sequence, layer);
  extend_checks(m, l, sequence, layer, tokens);
  cache_checks::input_views(m, keys, values, type, tokens, "extend");
  PendingWrite p = m.prepare_extend(l, tokens, type);
  if (cmd != VK_NULL_HANDLE) {
    const rt::BufferView check = m.recorded_check();
    m.begin_recording(cmd);
    m.record_extend(cmd, l, p, keys, values, type, tokens, check);
  } else {
    const rt::BufferView check = m.begin_check();
    m.run([&](VkCommandBuffer c) {
      rt::compute_transfer_barrier(c);
      m.record_extend(c, l, p, keys, values, type, tokens, check);
    });
    m.finish_check(cache_checks::where(sequence, layer, "extend"), l.tokens());
  }
  m.commit_extend(l, p);
}

}  // namespace

void Cache::extend(uint32_t sequence, uint32_t layer, const std::vector<uint16_t>& keys,
                   const std::vector<uint16_t>& values, uint32_t tokens) {
  const Impl& m = *impl_;
  extend_checks(m, m.layer(sequence, layer), sequence, layer, tokens);
  const uint64_t n = uint64_t(tokens) * m.token_halves();
  cache_checks::size("extend keys", keys.size(), n);
  cache_checks::size("extend values", values.size(), n);
  rt::Buffer k(m.ctx, std::max<uint64_t>(n * 2, 16)), v(m.ctx, std::max<uint64_t>(n * 2, 16));
  k.upload(keys.data(), n * 2);
  v.upload(values.data(), n * 2);
  extend(sequence, layer, k.view(0, n * 2), v.view(0, n * 2), ElementType::f16, tokens);
}

void Cache::extend(uint32_t sequence, uint32_t layer, const rt::BufferView& keys, const rt::BufferView& values,
                   ElementType type, uint32_t tokens) {
  extend_device(*impl_, sequence, layer, keys, values, type, tokens, VK_NULL_HANDLE);
}

void Cache::record_extend(VkCommandBuffer cmd, uint32_t sequence, uint32_t layer, const rt::BufferView& keys,
                          const rt::BufferView& values, ElementType type, uint32_t tokens) {
  if (cmd == VK_NULL_HANDLE) {
    // Checked after the arguments, like the other record_* entry points.
    Layer& l = impl_->layer(sequence, layer);
    extend_checks(*impl_, l, sequence, layer, tokens);
    cache_checks::input_views(*impl_, keys, values, type, tokens, "extend");
    throw Error(ErrorCode::invalid_argument, "cache: record_extend: no command buffer");
  }
  extend_device(*impl_, sequence, layer, keys, values, type, tokens, cmd);
}

}  // namespace vidkv
