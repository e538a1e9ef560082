// Decode attention of a batch: many sequences' layers in one step (gpu_attention.hpp,
// record_batch). The passes are record_vidkv's; what is new is where they write (each layer its
// own range of partial slots, its own transformed query) and the one reduction over all of them.
//
// Partials of a batch: [all layers' slots][q_heads][dim + 2] floats, then (aligned) the slot ranges
// uint32 [layers][2] the reduction reads, then per layer with segments (aligned) its transformed
// query (subgroup-of-8 path).
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

uint64_t GpuAttention::partial_bytes_batch(const AttentionGeometry& g,
                                           const std::vector<QuantizedLayerBuffers>& layers) const {
  const uint64_t align = std::max<uint64_t>(context_->info().min_storage_buffer_offset_alignment, 16);
  uint64_t slots = 0;
  for (const QuantizedLayerBuffers& l : layers) slots += slot_count(g, l);
  uint64_t bytes = align_up(slots * g.q_heads * (g.dim + 2) * 4, align) + layers.size() * 8;
  for (const QuantizedLayerBuffers& l : layers) {
    if (!l.segments.empty() && subgroup8_path()) bytes = align_up(bytes, align) + prepared_bytes(g, l);
  }
  return bytes;
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
  std::vector<uint32_t> ranges;
  uint32_t slots = 0;
  for (const QuantizedLayerBuffers& l : layers) {
    const uint32_t n = slot_count(g, l);
    ranges.push_back(slots);
    ranges.push_back(n);
    slots += n;
  }
  const uint64_t slot_end = align_up(uint64_t(slots) * g.q_heads * (g.dim + 2) * 4, align);
  const rt::BufferView slot_view{partials.buffer, partials.offset, std::max<uint64_t>(slot_end, 4)};
  const rt::BufferView range_view{partials.buffer, partials.offset + slot_end, ranges.size() * 4};
  std::vector<rt::BufferView> prepared(layers.size(), q);
  uint64_t at = slot_end + ranges.size() * 4;
  const bool sg8 = subgroup8_path();
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i].segments.empty() || !sg8) continue;
    at = align_up(at, align);
    const uint64_t bytes = prepared_bytes(g, layers[i]);
    prepared[i] = {partials.buffer, partials.offset + at, bytes};
    at += bytes;
  }

  // The ranges are the only data from the host: written in the command buffer, then made visible
  // to the reduction (the passes write other bytes, so this barrier holds up nothing).
  vkCmdUpdateBuffer(cmd, range_view.buffer, range_view.offset, range_view.size, ranges.data());
  rt::transfer_to_compute_barrier(cmd);
  bool transformed = false;
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i].segments.empty() || !sg8) continue;
    record_query(cmd, g, layers[i], q_of(i), prepared[i]);
    transformed = true;
  }
  if (transformed) rt::compute_to_compute_barrier(cmd);
  for (size_t i = 0; i < layers.size(); ++i) {
    record_passes(cmd, g, layers[i], q_of(i), slot_view, prepared[i], ranges[2 * i]);
  }
  record_reduce_batch(cmd, g, uint32_t(layers.size()), partials, range_view, out);
}

}  // namespace vidkv
