// Batched decode (cache.hpp: append_batch, attention_batch and their record forms): one decode
// step of many sequences' layer in one call and one recorded pass.
//  - appends: every token is copied into its sequence's residual in one transfer pass, the whole
//    input is scanned for NaN/Inf in one dispatch per part, then the sequences whose residual is
//    full are flushed (quantized into their new segment);
//  - attention: GpuAttention::record_batch, every sequence's passes without barriers between
//    them and one reduction.
// A layer with per-head policies has several stores per sequence; its batches run the sequences
// one after another through the single-sequence operations (checked first, all together).
#include <algorithm>
#include <set>
#include <string>

#include "sequence_cache/cache_checks.hpp"
#include "sequence_cache/cache_internal.hpp"

namespace vidkv {

using cache_detail::Layer;
using cache_detail::PendingWrite;

namespace {

constexpr size_t kMaxBatch = 8192;  // GpuAttention::record_batch's limit

// The batch's layers, after checking the ids (known, distinct, some) and the layer index.
std::vector<Layer*> batch_layers(Cache::Impl& m, uint32_t layer, const std::vector<uint32_t>& sequences,
                                 const char* op) {
  if (sequences.empty()) throw cache_checks::bad(std::string("cache: ") + op + " of 0 sequences");
  if (sequences.size() > kMaxBatch) {
    throw cache_checks::bad(std::string("cache: ") + op + " of " + std::to_string(sequences.size()) +
                            " sequences; at most " + std::to_string(kMaxBatch));
  }
  std::set<uint32_t> seen;
  std::vector<Layer*> layers;
  for (size_t i = 0; i < sequences.size(); ++i) {
    if (!seen.insert(sequences[i]).second) {
      throw cache_checks::bad(std::string("cache: ") + op + ": sequence " + std::to_string(sequences[i]) +
                              " appears twice (entries " +
                              std::to_string(std::find(sequences.begin(), sequences.end(), sequences[i]) -
                                             sequences.begin()) +
                              " and " + std::to_string(i) + ")");
    }
    layers.push_back(&m.layer(sequences[i], layer));  // throws naming an unknown id or layer
  }
  return layers;
}

std::vector<Layer*> append_layers(Cache::Impl& m, uint32_t layer, const std::vector<uint32_t>& sequences) {
  std::vector<Layer*> layers = batch_layers(m, layer, sequences, "append_batch");
  for (size_t i = 0; i < layers.size(); ++i) cache_checks::append_state(m, *layers[i], sequences[i], layer);
  return layers;
}

std::vector<Layer*> attention_layers(Cache::Impl& m, uint32_t layer, const std::vector<uint32_t>& sequences,
                                     float scale) {
  std::vector<Layer*> layers = batch_layers(m, layer, sequences, "attention_batch");
  for (size_t i = 0; i < layers.size(); ++i) cache_checks::attention_state(m, *layers[i], sequences[i], layer, scale);
  return layers;
}

rt::BufferView offset_view(const rt::BufferView& v, uint64_t offset, uint64_t size) {
  return {v.buffer, v.offset + offset, size};
}

// Entry i of a batch input or output of `row` bytes per entry.
rt::BufferView entry(const rt::BufferView& v, size_t i, uint64_t row) { return {v.buffer, v.offset + i * row, row}; }

// Mixed layers take each entry through the single-sequence path: its views must bind alone.
void check_entry_alignment(const Cache::Impl& m, uint64_t row, const char* what) {
  const uint64_t align = std::max<uint64_t>(m.ctx->info().min_storage_buffer_offset_alignment, 4);
  if (row % align != 0) {
    throw cache_checks::bad(std::string("cache: ") + what + ": a layer with per-head policies takes each entry " +
                            "alone; entries of " + std::to_string(row) + " bytes are not aligned to the device's " +
                            std::to_string(align) + "-byte storage offsets");
  }
}

std::string batch_where(uint32_t layer, const char* op) {
  return std::string("cache: ") + op + " on layer " + std::to_string(layer) + " (tokens numbered by batch entry)";
}

// Prepares every entry's write (allocations: a failure changes nothing) and records the step.
std::vector<PendingWrite> record_appends(Cache::Impl& m, VkCommandBuffer cmd, const std::vector<Layer*>& layers,
                                         const rt::BufferView& keys, const rt::BufferView& values,
                                         const rt::BufferView& check, bool recorded) {
  std::vector<PendingWrite> pending;
  for (Layer* l : layers) pending.push_back(m.prepare_append(*l));
  const uint64_t row = m.token_bytes();
  if (recorded) m.begin_recording(cmd);
  else rt::compute_transfer_barrier(cmd);
  // Writes past each residual's live tokens: a failure leaves every layer as it was.
  for (size_t i = 0; i < layers.size(); ++i) {
    const uint64_t at = uint64_t(layers[i]->residual) * row;
    rt::record_copy(cmd, entry(keys, i, row), offset_view(m.residual_view(*layers[i], pending[i], true), at, row), row);
    rt::record_copy(cmd, entry(values, i, row), offset_view(m.residual_view(*layers[i], pending[i], false), at, row),
                    row);
  }
  m.record_scan(cmd, keys, values, uint64_t(layers.size()) * m.token_halves(), check);
  rt::transfer_to_compute_barrier(cmd);
  m.record_flushes(cmd, layers, pending);
  return pending;
}

void commit_appends(Cache::Impl& m, const std::vector<Layer*>& layers, std::vector<PendingWrite>& pending) {
  for (size_t i = 0; i < layers.size(); ++i) m.commit(*layers[i], pending[i], false);
}

void append_device(Cache& cache, Cache::Impl& m, uint32_t layer, const std::vector<uint32_t>& sequences,
                   const std::vector<Layer*>& layers, const rt::BufferView& keys, const rt::BufferView& values) {
  const rt::BufferView check = m.begin_check();
  if (layers.front()->mixed) {
    // All entries are scanned before any is written: a NaN in one changes none.
    m.run([&](VkCommandBuffer cmd) {
      rt::compute_transfer_barrier(cmd);
      m.record_scan(cmd, keys, values, uint64_t(layers.size()) * m.token_halves(), check);
    });
    m.finish_check(batch_where(layer, "append_batch"), 0);
    const uint64_t row = m.token_bytes();
    for (size_t i = 0; i < layers.size(); ++i) {
      cache.append(sequences[i], layer, entry(keys, i, row), entry(values, i, row));
    }
    return;
  }
  std::vector<PendingWrite> pending;
  m.run([&](VkCommandBuffer cmd) { pending = record_appends(m, cmd, layers, keys, values, check, false); });
  m.finish_check(batch_where(layer, "append_batch"), 0);
  commit_appends(m, layers, pending);
}

}  // namespace

void Cache::append_batch(uint32_t layer, const std::vector<uint32_t>& sequences, const std::vector<uint16_t>& keys,
                         const std::vector<uint16_t>& values) {
  Impl& m = *impl_;
  const std::vector<Layer*> layers = append_layers(m, layer, sequences);
  const uint64_t halves = uint64_t(sequences.size()) * m.token_halves();
  cache_checks::size("append_batch keys", keys.size(), halves);
  cache_checks::size("append_batch values", values.size(), halves);
  rt::Buffer& k = m.grow(m.scratch.batch_keys, halves * 2);
  rt::Buffer& v = m.grow(m.scratch.batch_values, halves * 2);
  k.upload(keys.data(), halves * 2);
  v.upload(values.data(), halves * 2);
  append_device(*this, m, layer, sequences, layers, k.view(0, halves * 2), v.view(0, halves * 2));
}

void Cache::append_batch(uint32_t layer, const std::vector<uint32_t>& sequences, const rt::BufferView& keys,
                         const rt::BufferView& values) {
  Impl& m = *impl_;
  const std::vector<Layer*> layers = append_layers(m, layer, sequences);
  cache_checks::input_views(m, keys, values, ElementType::f16, uint32_t(sequences.size()), "append_batch");
  if (layers.front()->mixed) check_entry_alignment(m, m.token_bytes(), "append_batch");
  append_device(*this, m, layer, sequences, layers, keys, values);
}

void Cache::record_append_batch(VkCommandBuffer cmd, uint32_t layer, const std::vector<uint32_t>& sequences,
                                const rt::BufferView& keys, const rt::BufferView& values) {
  Impl& m = *impl_;
  const std::vector<Layer*> layers = append_layers(m, layer, sequences);
  cache_checks::input_views(m, keys, values, ElementType::f16, uint32_t(sequences.size()), "append_batch");
  if (cmd == VK_NULL_HANDLE) throw cache_checks::bad("cache: record_append_batch: no command buffer");
  const uint64_t row = m.token_bytes();
  if (layers.front()->mixed) {
    check_entry_alignment(m, row, "record_append_batch");
    for (size_t i = 0; i < layers.size(); ++i) {
      record_append(cmd, sequences[i], layer, entry(keys, i, row), entry(values, i, row));
    }
    return;
  }
  std::vector<PendingWrite> pending = record_appends(m, cmd, layers, keys, values, m.recorded_check(), true);
  commit_appends(m, layers, pending);
}

namespace {

void record_attentions(Cache::Impl& m, VkCommandBuffer cmd, const std::vector<Layer*>& layers,
                       const rt::BufferView& q, const rt::BufferView& out, float scale) {
  const AttentionGeometry g{m.geometry.kv_heads, m.geometry.q_heads, m.geometry.head_dim, scale};
  std::vector<QuantizedLayerBuffers> buffers;
  for (const Layer* l : layers) buffers.push_back(m.layer_buffers(*l));
  rt::Buffer& partials = m.grow(m.scratch.partials, m.attention.partial_bytes_batch(g, buffers));
  m.attention.record_batch(cmd, g, buffers, q, partials.view(), out);
}

void check_batch_queries(const Cache::Impl& m, size_t count, const rt::BufferView& q, const rt::BufferView& out) {
  const uint64_t bytes = count * m.geometry.q_heads * m.geometry.head_dim * 4;
  cache_checks::view(m, q, bytes, "attention_batch q", " (fp32 [count][q_heads][head_dim])");
  cache_checks::view(m, out, bytes, "attention_batch out", " (fp32 [count][q_heads][head_dim])");
}

}  // namespace

std::vector<float> Cache::attention_batch(uint32_t layer, const std::vector<uint32_t>& sequences,
                                          const std::vector<float>& q, float scale) {
  Impl& m = *impl_;
  const std::vector<Layer*> layers = attention_layers(m, layer, sequences, scale);
  const uint64_t row = uint64_t(m.geometry.q_heads) * m.geometry.head_dim;
  cache_checks::size("attention_batch q", q.size(), sequences.size() * row);
  if (layers.front()->mixed) {
    std::vector<float> result;
    for (size_t i = 0; i < layers.size(); ++i) {
      const std::vector<float> one(q.begin() + i * row, q.begin() + (i + 1) * row);
      const std::vector<float> r = attention(sequences[i], layer, one, scale);
      result.insert(result.end(), r.begin(), r.end());
    }
    return result;
  }
  const uint64_t bytes = q.size() * 4;
  rt::Buffer& qb = m.grow(m.scratch.q, bytes);
  rt::Buffer& out = m.grow(m.scratch.out, bytes);
  qb.upload(q.data(), bytes);
  m.run([&](VkCommandBuffer cmd) { record_attentions(m, cmd, layers, qb.view(0, bytes), out.view(0, bytes), scale); });
  std::vector<float> result(q.size());
  out.download(result.data(), bytes);
  return result;
}

void Cache::attention_batch(uint32_t layer, const std::vector<uint32_t>& sequences, const rt::BufferView& q,
                            const rt::BufferView& out, float scale) {
  Impl& m = *impl_;
  const std::vector<Layer*> layers = attention_layers(m, layer, sequences, scale);
  check_batch_queries(m, sequences.size(), q, out);
  const uint64_t row = uint64_t(m.geometry.q_heads) * m.geometry.head_dim * 4;
  if (layers.front()->mixed) {
    for (size_t i = 0; i < layers.size(); ++i) attention(sequences[i], layer, entry(q, i, row), entry(out, i, row), scale);
    return;
  }
  m.run([&](VkCommandBuffer cmd) {
    rt::compute_transfer_barrier(cmd);
    record_attentions(m, cmd, layers, q, out, scale);
  });
}

void Cache::record_attention_batch(VkCommandBuffer cmd, uint32_t layer, const std::vector<uint32_t>& sequences,
                                   const rt::BufferView& q, const rt::BufferView& out, float scale) {
  Impl& m = *impl_;
  const std::vector<Layer*> layers = attention_layers(m, layer, sequences, scale);
  check_batch_queries(m, sequences.size(), q, out);
  if (cmd == VK_NULL_HANDLE) throw cache_checks::bad("cache: record_attention_batch: no command buffer");
  const uint64_t row = uint64_t(m.geometry.q_heads) * m.geometry.head_dim * 4;
  if (layers.front()->mixed) {
    for (size_t i = 0; i < layers.size(); ++i) {
      record_attention(cmd, sequences[i], layer, entry(q, i, row), entry(out, i, row), scale);
    }
    return;
  }
  m.begin_recording(cmd);
  record_attentions(m, cmd, layers, q, out, scale);
}

}  // namespace vidkv
