// Mixed layers of vidkv::Cache (per-head policies, head_policy.hpp): routing each KV head's tokens
// to its policy's store and running one attention pass per policy.
//
// The preset part of a mixed layer is an ordinary layer of `preset_heads` heads: its input is
// gathered out of the caller's [tokens][kv_heads][dim] tensor into the route scratch, so the
// quantizers and the fused attention run on it unchanged. The full and window stores are plain fp16
// tensors read by the fp16 attention shader. Row moves use token_gather / token_scatter over rows
// of one head (dim halves): row t x kv_heads + h of the input is head h of token t.
#include <algorithm>
#include <string>
#include <vector>

#include "sequence_cache/cache_internal.hpp"
#include "kernels/gpu_common.hpp"
#include "vidkv/runtime/commands.hpp"

namespace vidkv {

using cache_detail::HeadRoute;
using cache_detail::Layer;
using cache_detail::PendingWrite;
using cache_detail::Sequence;

namespace {

struct MovePush {
  uint32_t heads, dim, count, head_stride, token_stride;
};

rt::BufferView view_of(const std::unique_ptr<rt::Buffer>& mine, const std::unique_ptr<rt::Buffer>& fresh) {
  return mine ? mine->view() : fresh->view();
}

// Moves `rows` rows of `dim` halves between `src` and `dst`: gather reads src row list[r] into dst
// row r; scatter writes src row r to dst row list[r].
void move_rows(Cache::Impl& m, VkCommandBuffer cmd, bool gather, const rt::BufferView& src, const rt::BufferView& dst,
               const std::vector<uint32_t>& list) {
  if (list.empty()) return;
  const uint32_t D = m.geometry.head_dim, rows = uint32_t(list.size());
  const MovePush push{1, D, rows, 0, D};
  const rt::BufferView l = m.transient_list(list);
  const rt::BufferView views[] = {src, l, dst};
  m.pipelines.get(gpu::pipeline(gather ? "token_gather" : "token_scatter", {}, 3, sizeof(push)))
      .dispatch(cmd, views, &push, rt::grid_workgroups(uint64_t(rows) * D / 2, gpu::kWorkgroupSize));
}

// Input rows (t x H + heads[j]) of tokens [0, tokens), token-major: the order of a gathered
// [tokens][heads.size()][dim] tensor.
std::vector<uint32_t> head_rows(const std::vector<uint32_t>& heads, uint32_t H, uint32_t tokens) {
  std::vector<uint32_t> rows;
  rows.reserve(size_t(tokens) * heads.size());
  for (uint32_t t = 0; t < tokens; ++t) {
    for (uint32_t h : heads) rows.push_back(t * H + h);
  }
  return rows;
}

// The window store's slots in order, each as the input rows of its token.
std::vector<uint32_t> window_rows(const Cache::Impl& m, const std::vector<uint32_t>& heads, uint32_t count) {
  const uint32_t held = std::min(count, m.window_capacity()), H = m.geometry.kv_heads;
  std::vector<uint32_t> rows;
  rows.reserve(size_t(held) * heads.size());
  for (uint32_t s = 0; s < held; ++s) {
    const uint32_t t = m.window_position(s, count);
    for (uint32_t h : heads) rows.push_back(t * H + h);
  }
  return rows;
}

// Regions copying one token's heads `heads` (rows of `row` bytes in a [kv_heads][dim] view) to
// consecutive rows starting at byte `at` of another view.
std::vector<rt::CopyRegion> token_regions(const std::vector<uint32_t>& heads, uint64_t row, uint64_t at) {
  std::vector<rt::CopyRegion> r;
  for (size_t j = 0; j < heads.size(); ++j) r.push_back({heads[j] * row, at + j * row, row});
  return r;
}

}  // namespace

Sequence Cache::Impl::make_sequence() const {
  Sequence s;
  s.layers.resize(geometry.layers);
  for (uint32_t l = 0; l < geometry.layers; ++l) {
    Layer& layer = s.layers[l];
    layer.index = l;
    if (l < routes.size() && routes[l].mixed()) {
      layer.mixed = true;
      layer.preset_heads = uint32_t(routes[l].preset.size());
    }
  }
  return s;
}

uint32_t Cache::Impl::window_slot(uint32_t position) const {
  const uint32_t S = settings.head_policies.sink, R = settings.head_policies.recent;
  return position < S ? position : S + (position - S) % R;
}

uint32_t Cache::Impl::window_position(uint32_t slot, uint32_t count) const {
  const uint32_t S = settings.head_policies.sink, R = settings.head_policies.recent;
  if (slot < S || count <= S + R) return slot;
  // Ring slot i holds the newest token p >= S with (p - S) mod R = i.
  const uint32_t i = slot - S;
  return S + i + (count - 1 - S - i) / R * R;
}

void Cache::Impl::prepare_routes(const Layer& layer, PendingWrite& p, uint32_t count) {
  const HeadRoute& r = routes[layer.index];
  if (!r.full.empty() && !layer.full_keys) {
    p.full_keys = cache_detail::new_buffer(ctx, full_store_bytes(layer));
    p.full_values = cache_detail::new_buffer(ctx, full_store_bytes(layer));
  }
  if (!r.window.empty() && !layer.window_keys) {
    p.window_keys = cache_detail::new_buffer(ctx, window_store_bytes(layer));
    p.window_values = cache_detail::new_buffer(ctx, window_store_bytes(layer));
  }
  p.count = count;
}

std::pair<rt::BufferView, rt::BufferView> Cache::Impl::record_route_prefill(VkCommandBuffer cmd, const Layer& layer,
                                                                            PendingWrite& p, const rt::BufferView& k,
                                                                            const rt::BufferView& v, uint32_t tokens) {
  const HeadRoute& r = routes[layer.index];
  const uint32_t H = geometry.kv_heads;
  // The conversion and NaN/Inf scan wrote or read the input in shaders; the gathers read it.
  rt::compute_to_compute_barrier(cmd);
  std::pair<rt::BufferView, rt::BufferView> part{};
  if (!r.preset.empty()) {
    const uint64_t bytes = uint64_t(tokens) * part_token_bytes(layer);
    rt::Buffer& pk = grow(scratch.route_keys, bytes);
    rt::Buffer& pv = grow(scratch.route_values, bytes);
    const std::vector<uint32_t> rows = head_rows(r.preset, H, tokens);
    move_rows(*this, cmd, true, k, pk.view(0, bytes), rows);
    move_rows(*this, cmd, true, v, pv.view(0, bytes), rows);
    part = {pk.view(0, bytes), pv.view(0, bytes)};
  }
  if (!r.full.empty()) {
    const std::vector<uint32_t> rows = head_rows(r.full, H, tokens);
    move_rows(*this, cmd, true, k, view_of(layer.full_keys, p.full_keys), rows);
    move_rows(*this, cmd, true, v, view_of(layer.full_values, p.full_values), rows);
  }
  if (!r.window.empty()) {
    const std::vector<uint32_t> rows = window_rows(*this, r.window, tokens);
    move_rows(*this, cmd, true, k, view_of(layer.window_keys, p.window_keys), rows);
    move_rows(*this, cmd, true, v, view_of(layer.window_values, p.window_values), rows);
  }
  // The preset part's quantization reads the gathered tensors in shaders and copies its tail.
  rt::compute_transfer_barrier(cmd);
  return part;
}

void Cache::Impl::record_route_append(VkCommandBuffer cmd, const Layer& layer, PendingWrite& p,
                                      const rt::BufferView& k, const rt::BufferView& v) {
  const HeadRoute& r = routes[layer.index];
  const uint64_t row = uint64_t(geometry.head_dim) * 2;
  const uint32_t position = layer.count;
  if (!r.preset.empty()) {
    // Past the residual's live tokens: nothing live is overwritten.
    const uint64_t at = uint64_t(layer.residual) * r.preset.size() * row;
    const rt::BufferView rk = residual_view(layer, p, true), rv = residual_view(layer, p, false);
    rt::record_copy_regions(cmd, k, rk, token_regions(r.preset, row, at));
    rt::record_copy_regions(cmd, v, rv, token_regions(r.preset, row, at));
  }
  if (!r.full.empty()) {
    const uint64_t at = uint64_t(position) * r.full.size() * row;
    const rt::BufferView fk = view_of(layer.full_keys, p.full_keys), fv = view_of(layer.full_values, p.full_values);
    rt::record_copy_regions(cmd, k, fk, token_regions(r.full, row, at));
    rt::record_copy_regions(cmd, v, fv, token_regions(r.full, row, at));
  }
  const bool kept = position < settings.head_policies.sink || settings.head_policies.recent > 0;
  if (!r.window.empty() && kept) {
    // Overwrites the oldest recent token once the ring is full: a synchronous append checks its
    // input before recording this (Cache::append), so a rejected token changes nothing.
    const uint64_t at = uint64_t(window_slot(position)) * r.window.size() * row;
    const rt::BufferView wk = view_of(layer.window_keys, p.window_keys);
    const rt::BufferView wv = view_of(layer.window_values, p.window_values);
    rt::record_copy_regions(cmd, k, wk, token_regions(r.window, row, at));
    rt::record_copy_regions(cmd, v, wv, token_regions(r.window, row, at));
  }
  rt::transfer_to_compute_barrier(cmd);
}

void Cache::Impl::record_route_attention(VkCommandBuffer cmd, const Layer& layer, const rt::BufferView& q,
                                         const rt::BufferView& out, float scale) {
  const HeadRoute& r = routes[layer.index];
  const uint32_t D = geometry.head_dim, ratio = geometry.q_heads / geometry.kv_heads;
  const uint64_t qrow = uint64_t(ratio) * D * 4;  // one KV head's query rows (fp32)
  const uint64_t align = std::max<uint64_t>(256, ctx->info().min_storage_buffer_offset_alignment);
  struct Pass {
    const std::vector<uint32_t>* heads;
    HeadPolicy policy;
    uint64_t q_at = 0, out_at = 0, bytes = 0;
  };
  std::vector<Pass> passes;
  uint64_t at = 0;
  for (auto [heads, policy] : {std::pair{&r.preset, HeadPolicy::vidkv}, std::pair{&r.full, HeadPolicy::full},
                               std::pair{&r.window, HeadPolicy::window}}) {
    if (heads->empty()) continue;
    Pass pass{heads, policy};
    pass.bytes = heads->size() * qrow;
    pass.q_at = at;
    at += (pass.bytes + align - 1) / align * align;
    pass.out_at = at;
    at += (pass.bytes + align - 1) / align * align;
    passes.push_back(pass);
  }
  rt::Buffer& rows = grow(scratch.route_rows, at);
  for (const Pass& pass : passes) {
    rt::record_copy_regions(cmd, q, rows.view(), token_regions(*pass.heads, qrow, pass.q_at));
  }
  rt::transfer_to_compute_barrier(cmd);
  for (size_t i = 0; i < passes.size(); ++i) {
    const Pass& pass = passes[i];
    const uint32_t h = uint32_t(pass.heads->size());
    const AttentionGeometry g{h, h * ratio, D, scale};
    const rt::BufferView pq = rows.view(pass.q_at, pass.bytes), po = rows.view(pass.out_at, pass.bytes);
    // Each pass reuses the partials scratch the previous one's reduction read.
    if (i > 0) rt::compute_to_compute_barrier(cmd);
    if (pass.policy == HeadPolicy::vidkv) {
      record_part_attention(cmd, layer, g, pq, po);
    } else {
      const bool full = pass.policy == HeadPolicy::full;
      const Fp16KvBuffers kv{full ? layer.count : std::min(layer.count, window_capacity()),
                             (full ? layer.full_keys : layer.window_keys)->view(),
                             (full ? layer.full_values : layer.window_values)->view()};
      rt::Buffer& partials = grow(scratch.partials, attention.partial_bytes_fp16(g, kv.tokens));
      attention.record_fp16(cmd, g, kv, pq, partials.view(), po);
    }
  }
  rt::compute_transfer_barrier(cmd);
  for (const Pass& pass : passes) {
    std::vector<rt::CopyRegion> regions;
    for (size_t j = 0; j < pass.heads->size(); ++j) regions.push_back({pass.out_at + j * qrow, (*pass.heads)[j] * qrow, qrow});
    rt::record_copy_regions(cmd, rows.view(), out, regions);
  }
}

void Cache::Impl::record_route_dequantize(VkCommandBuffer cmd, const Layer& layer, const rt::BufferView& k,
                                          const rt::BufferView& v) {
  const HeadRoute& r = routes[layer.index];
  const uint32_t H = geometry.kv_heads, count = layer.count;
  const uint64_t bytes = uint64_t(count) * token_bytes();
  if (count == 0) return;
  if (!r.window.empty() && count > window_capacity()) {
    // Tokens the window heads no longer hold decode as zeros.
    rt::record_fill(cmd, k, bytes, 0);
    rt::record_fill(cmd, v, bytes, 0);
    rt::transfer_to_compute_barrier(cmd);
  }
  if (!r.preset.empty()) {
    const uint64_t part = uint64_t(count) * part_token_bytes(layer);
    rt::Buffer& pk = grow(scratch.route_keys, part);
    rt::Buffer& pv = grow(scratch.route_values, part);
    record_part_dequantize(cmd, layer, pk.view(0, part), pv.view(0, part));
    rt::compute_transfer_barrier(cmd);
    const std::vector<uint32_t> rows = head_rows(r.preset, H, count);
    move_rows(*this, cmd, false, pk.view(0, part), k, rows);
    move_rows(*this, cmd, false, pv.view(0, part), v, rows);
  }
  if (!r.full.empty()) {
    const std::vector<uint32_t> rows = head_rows(r.full, H, count);
    move_rows(*this, cmd, false, layer.full_keys->view(), k, rows);
    move_rows(*this, cmd, false, layer.full_values->view(), v, rows);
  }
  if (!r.window.empty()) {
    const std::vector<uint32_t> rows = window_rows(*this, r.window, count);
    move_rows(*this, cmd, false, layer.window_keys->view(), k, rows);
    move_rows(*this, cmd, false, layer.window_values->view(), v, rows);
  }
}

uint64_t Cache::Impl::full_bytes(const Layer& layer) const {
  return layer.full_keys ? 2 * full_store_bytes(layer) : 0;
}

uint64_t Cache::Impl::window_bytes(const Layer& layer) const {
  return layer.window_keys ? 2 * window_store_bytes(layer) : 0;
}

}  // namespace vidkv
