// vidkv::Cache fork_sequence and truncate_sequence (cache.hpp, "Fork and truncate").
//
// Segments never change once written, so a fork shares them (SegmentRef's shared_ptr) and the
// layer's channel table, and copies only what later writes change in place: the fp16 residual
// and a mixed layer's full and window stores. Truncation changes host-side counts only: a cut
// inside a segment keeps the segment and masks its tail (SegmentRef::visible), so nothing is
// re-quantized and a shared segment stays as its other users see it.
#include <algorithm>
#include <string>

#include "sequence_cache/cache_checks.hpp"
#include "sequence_cache/cache_internal.hpp"

namespace vidkv {

using cache_detail::Layer;
using cache_detail::Sequence;

namespace {

// A new buffer the size of `from` (null when `from` is), and the copy of its first `bytes`.
struct StoreCopy {
  const rt::Buffer* from = nullptr;
  rt::Buffer* to = nullptr;
  uint64_t bytes = 0;
};

void fork_store(Cache::Impl& m, const std::unique_ptr<rt::Buffer>& from, std::unique_ptr<rt::Buffer>& to,
                uint64_t bytes, std::vector<StoreCopy>& copies) {
  if (!from) return;
  to = cache_detail::new_buffer(m.ctx, from->size());
  if (bytes > 0) copies.push_back({from.get(), to.get(), bytes});
}

// The length truncate_sequence measures against: the most tokens any layer holds.
uint32_t sequence_length(const Sequence& s) {
  uint32_t n = 0;
  for (const Layer& l : s.layers) n = std::max(n, l.tokens());
  return n;
}

// Whether a mixed layer's window heads still hold what `tokens` tokens need: every token while
// the ring has not wrapped, else only the sink (a cut inside the sink needs no ring slot).
bool window_can_truncate(const Cache::Impl& m, const Layer& l, uint32_t tokens) {
  if (!l.mixed || m.routes[l.index].window.empty()) return true;
  return l.count <= m.window_capacity() || tokens <= m.settings.head_policies.sink;
}

// The preset part (segments + residual) of `l` cut to `tokens` of its tokens.
void truncate_part(Layer& l, uint32_t tokens) {
  if (tokens >= l.quantized) {
    l.residual = tokens - l.quantized;
    return;
  }
  // Inside the segments: keep those before the cut, mask the one it falls in, drop the rest; the
  // residual's tokens come after the cut. Later appends start a new residual.
  uint32_t before = 0;
  size_t keep = 0;
  while (keep < l.segments.size() && before + l.segments[keep].visible < tokens) before += l.segments[keep++].visible;
  if (tokens > before) l.segments[keep++].visible = tokens - before;
  l.segments.resize(keep);
  // A layer left with no segment is as before its first one: its first flush chooses the channels.
  if (l.segments.empty()) l.channels.reset();
  l.quantized = tokens;
  l.residual = 0;
}

}  // namespace

uint32_t Cache::fork_sequence(uint32_t source) {
  Impl& m = *impl_;
  const Sequence& src = m.sequence(source);  // throws naming an unknown (or freed) id
  // Built aside: an allocation or device failure leaves the cache as it was.
  Sequence fork = m.make_sequence();
  std::vector<StoreCopy> copies;
  for (size_t i = 0; i < src.layers.size(); ++i) {
    const Layer& s = src.layers[i];
    Layer& d = fork.layers[i];
    d.prefilled = s.prefilled;
    d.appended = s.appended;
    d.channels = s.channels;
    d.segments = s.segments;
    d.quantized = s.quantized;
    d.residual = s.residual;
    d.count = s.count;
    const uint64_t residual_bytes = uint64_t(s.residual) * m.part_token_bytes(s);
    fork_store(m, s.residual_keys, d.residual_keys, residual_bytes, copies);
    fork_store(m, s.residual_values, d.residual_values, residual_bytes, copies);
    if (s.mixed) {
      const uint64_t head_row = uint64_t(m.geometry.head_dim) * 2;
      const uint64_t full = uint64_t(s.count) * m.routes[s.index].full.size() * head_row;
      const uint64_t window =
          uint64_t(std::min(s.count, m.window_capacity())) * m.routes[s.index].window.size() * head_row;
      fork_store(m, s.full_keys, d.full_keys, full, copies);
      fork_store(m, s.full_values, d.full_values, full, copies);
      fork_store(m, s.window_keys, d.window_keys, window, copies);
      fork_store(m, s.window_values, d.window_values, window, copies);
    }
  }
  if (!copies.empty()) {
    m.run([&](VkCommandBuffer cmd) {
      rt::compute_transfer_barrier(cmd);
      for (const StoreCopy& c : copies) rt::record_copy(cmd, c.from->view(0, c.bytes), c.to->view(0, c.bytes), c.bytes);
    });
  }
  const uint32_t id = create_sequence();
  m.sequences.at(id) = std::move(fork);
  return id;
}

void Cache::truncate_sequence(uint32_t sequence, uint32_t tokens) {
  Impl& m = *impl_;
  Sequence& seq = m.sequence(sequence);  // throws naming an unknown id
  const uint32_t length = sequence_length(seq);
  const std::string what = "cache: truncate sequence " + std::to_string(sequence) + " to " + std::to_string(tokens) +
                           " tokens";
  if (tokens > length) {
    throw cache_checks::bad(what + ": it holds " + std::to_string(length) + " (its longest layer)");
  }
  for (size_t i = 0; i < seq.layers.size(); ++i) {
    const Layer& l = seq.layers[i];
    if (tokens < l.tokens() && !window_can_truncate(m, l, tokens)) {
      throw cache_checks::bad(what + ": layer " + std::to_string(i) + "'s window heads hold only the first " +
                              std::to_string(m.settings.head_policies.sink) + " and the newest " +
                              std::to_string(m.settings.head_policies.recent) + " of its " + std::to_string(l.count) +
                              " tokens, not the newest before the cut");
    }
  }
  // Host-side counts only from here: nothing can fail.
  for (Layer& l : seq.layers) {
    if (tokens >= l.tokens()) continue;  // a shorter layer keeps what it holds
    if (m.part_heads(l) > 0) truncate_part(l, tokens);
    if (l.mixed) l.count = tokens;
  }
}

}  // namespace vidkv
