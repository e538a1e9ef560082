// Decode attention of a batch: many sequences' layers in one step (gpu_attention.hpp,
// record_batch). The passes are record_vidkv's; what is new is where they write (each layer its
// own range of partial slots, its own transformed query) and the one reduction over all of them.
//
// Scratch layout: GpuAttention::BatchLayout below.
#include <algorithm>
#include <string>

#include "kernels/gpu_attention_internal.hpp"
#include "vidkv/runtime/commands.hpp"
#include "vk.hpp"

namespace vidkv {

namespace {

constexpr uint32_t kMaxBatch = 8192;  // the ranges go in with vkCmdUpdateBuffer (64 KiB at most)

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

}  // namespace

// Partials of a batch: [all layers' slots][q_heads][dim + 2] floats, then (aligned) the slot ranges
// uint32 [layers][2], then on the subgroup-of-8 path the transformed queries. When every layer with
// segments has the same keys (always so for one cache), one query transform serves the batch: the
// layers' channel tables are copied side by side (aligned) and each layer's transformed query sits
// `prepared_stride` after the previous one's (every layer has one, read or not); otherwise each
// layer with segments has its own, transformed on its own.
struct GpuAttention::BatchLayout {
  uint64_t slot_end = 0, bytes = 0;  // the ranges start at slot_end
  bool folded = false;       // one query transform for the batch (some layer has segments)
  size_t keyed = 0;          // folded: a layer with segments, whose keys the transform takes
  uint64_t tables_at = 0;    // folded: channel tables, table_uints each
  uint32_t table_uints = 0;
  uint64_t prepared_stride = 0;
  std::vector<uint64_t> prepared_at;  // per layer (0: none)
};

GpuAttention::BatchLayout GpuAttention::batch_layout(const AttentionGeometry& g,
                                                     const std::vector<QuantizedLayerBuffers>& layers) const {
  const uint64_t align = std::max<uint64_t>(context_->info().min_storage_buffer_offset_alignment, 16);
  BatchLayout b;
  uint64_t slots = 0;
  for (const QuantizedLayerBuffers& l : layers) slots += slot_count(g, l);
  b.slot_end = align_up(slots * g.q_heads * (g.dim + 2) * 4, align);
  b.bytes = b.slot_end + layers.size() * 8;
  b.prepared_at.assign(layers.size(), 0);
  if (!subgroup8_path()) return b;
  const QuantizedLayerBuffers* first = nullptr;
  b.folded = true;
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i].segments.empty()) continue;
    if (first == nullptr) {
      first = &layers[i];
      b.keyed = i;
    }
    b.folded = b.folded && query_desc(g, first->keys).specialization == query_desc(g, layers[i].keys).specialization;
  }
  if (first == nullptr) {
    b.folded = false;
    return b;
  }
  if (b.folded) {
    b.table_uints = (first->keys.scope == ChannelScope::layer ? 1 : g.kv_heads) * g.dim;
    b.tables_at = align_up(b.bytes, align);
    b.prepared_stride = align_up(prepared_bytes(g, *first), align);
    const uint64_t prepared = align_up(b.tables_at + layers.size() * b.table_uints * 4, align);
    for (size_t i = 0; i < layers.size(); ++i) b.prepared_at[i] = prepared + i * b.prepared_stride;
    b.bytes = prepared + layers.size() * b.prepared_stride;
    return b;
  }
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i].segments.empty()) continue;
    b.prepared_at[i] = align_up(b.bytes, align);
    b.bytes = b.prepared_at[i] + prepared_bytes(g, layers[i]);
  }
  return b;
}

uint64_t GpuAttention::partial_bytes_batch(const AttentionGeometry& g,
                                           const std::vector<QuantizedLayerBuffers>& layers) const {
  return batch_layout(g, layers).bytes;
}

void GpuAttention::record_batch(VkCommandBuffer cmd, const AttentionGeometry& g,
                                const std::vector<QuantizedLayerBuffers>& layers, const rt::BufferView& q,
                                const rt::BufferView& partials, const rt::BufferView& out) {
  if (layers.empty()) throw Error(ErrorCode::invalid_argument, "attention batch of 0 layers");
  if (layers.size() > kMaxBatch) {
    throw Error(ErrorCode::invalid_argument, "attention batch of " + std::to_string(layers.size()) +
                                                 " layers; at most " + std::to_string(kMaxBatch));
  }
  // The reduction is one workgroup row per (layer, query head): within every device's limit.
  if (layers.size() * g.q_heads > 65535) {
    throw Error(ErrorCode::invalid_argument, "attention batch of " + std::to_string(layers.size()) + " layers x " +
                                                 std::to_string(g.q_heads) +
                                                 " query heads exceeds 65535 reduction workgroups; split the batch");
  }
  const uint64_t row = uint64_t(g.q_heads) * g.dim * 4;  // one layer's q (and out)
  const uint64_t align = std::max<uint64_t>(context_->info().min_storage_buffer_offset_alignment, 16);
  attention_check_view(q, row * layers.size(), "batch q");
  attention_check_view(out, row * layers.size(), "batch out");
  if (row % align != 0 || q.offset % align != 0) {
    throw Error(ErrorCode::invalid_argument, "batch q rows of " + std::to_string(row) + " bytes at offset " +
                                                 std::to_string(q.offset) + " are not aligned to the device's " +
                                                 std::to_string(align) + "-byte storage offsets");
  }
  auto q_of = [&](size_t i) { return rt::BufferView{q.buffer, q.offset + i * row, row}; };
  auto out_of = [&](size_t i) { return rt::BufferView{out.buffer, out.offset + i * row, row}; };
  for (size_t i = 0; i < layers.size(); ++i) {
    try {
      check_vidkv(g, layers[i], q_of(i), out_of(i), false);
    } catch (const Error& e) {
      // what() is "<code name>: <message>": the message, named by its layer.
      const std::string what = e.what(), code = std::string(error_code_name(e.code())) + ": ";
      throw Error(e.code(), "batch layer " + std::to_string(i) + ": " +
                                (what.rfind(code, 0) == 0 ? what.substr(code.size()) : what));
    }
  }
  attention_check_view(partials, partial_bytes_batch(g, layers), "partials");
  if (partials.offset % align != 0) {
    throw Error(ErrorCode::invalid_argument, "partials offset " + std::to_string(partials.offset) + " is not aligned");
  }

  // Where each layer's slots and transformed query go.
  const BatchLayout b = batch_layout(g, layers);
  std::vector<uint32_t> ranges;
  uint32_t slots = 0;
  for (const QuantizedLayerBuffers& l : layers) {
    const uint32_t n = slot_count(g, l);
    ranges.push_back(slots);
    ranges.push_back(n);
    slots += n;
  }
  const rt::BufferView slot_view{partials.buffer, partials.offset, std::max<uint64_t>(b.slot_end, 4)};
  const rt::BufferView range_view{partials.buffer, partials.offset + b.slot_end, ranges.size() * 4};
  std::vector<rt::BufferView> prepared(layers.size(), q);
  for (size_t i = 0; i < layers.size(); ++i) {
    if (b.prepared_at[i] == 0) continue;
    prepared[i] = {partials.buffer, partials.offset + b.prepared_at[i], std::max<uint64_t>(prepared_bytes(g, layers[i]), 4)};
  }

  // The ranges are the only data from the host: written in the command buffer, then made visible
  // to the reduction (the passes write other bytes, so this barrier holds up nothing). A folded
  // query transform reads the channel tables copied beside them (a layer without segments has
  // none: zeros, whose transform nobody reads).
  vkCmdUpdateBuffer(cmd, range_view.buffer, range_view.offset, range_view.size, ranges.data());
  const uint64_t table_bytes = uint64_t(b.table_uints) * 4;
  const rt::BufferView tables{partials.buffer, partials.offset + b.tables_at, std::max<uint64_t>(table_bytes * layers.size(), 4)};
  if (b.folded) {
    for (size_t i = 0; i < layers.size(); ++i) {
      const rt::BufferView dst{partials.buffer, tables.offset + i * table_bytes, table_bytes};
      if (layers[i].segments.empty()) {
        rt::record_fill(cmd, dst, table_bytes, 0);
      } else {
        rt::record_copy(cmd, layers[i].channels, dst, table_bytes);
      }
    }
  }
  rt::transfer_to_compute_barrier(cmd);
  bool transformed = false;
  if (b.folded) {
    const rt::BufferView all_prepared{partials.buffer, partials.offset + b.prepared_at[0], b.prepared_stride * layers.size()};
    record_query_batch(cmd, g, layers[b.keyed].keys, uint32_t(layers.size()), q, tables, b.table_uints, all_prepared, b.prepared_stride);
    transformed = true;
  } else {
    for (size_t i = 0; i < layers.size(); ++i) {
      if (b.prepared_at[i] == 0) continue;  // no segments, or not the subgroup-of-8 path
      record_query(cmd, g, layers[i], q_of(i), prepared[i]);
      transformed = true;
    }
  }
  if (transformed) rt::compute_to_compute_barrier(cmd);
  for (size_t i = 0; i < layers.size(); ++i) {
    record_passes(cmd, g, layers[i], q_of(i), slot_view, prepared[i], ranges[2 * i]);
  }
  record_reduce_batch(cmd, g, uint32_t(layers.size()), partials, range_view, out);
}

}  // namespace vidkv
