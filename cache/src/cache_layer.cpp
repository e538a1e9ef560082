// vidkv::Cache device work for one (sequence, layer): quantizing whole groups into a new segment,
// the fp16 residual, and attention over segments + residual. Callers (cache.cpp) have checked the
// arguments; here new device data is built aside and committed to the Layer only at the end, so a
// device failure part-way leaves the layer as it was.
#include <algorithm>
#include <cstring>
#include <numeric>
#include <string>

#include "cache_internal.hpp"
#include "vidkv/ternary_pack.hpp"

namespace vidkv {

using cache_detail::Layer;
using cache_detail::Segment;

namespace {

uint64_t words(uint64_t bytes) { return std::max<uint64_t>((bytes + 3) / 4 * 4, 16); }

std::unique_ptr<rt::Buffer> placeholder(const std::shared_ptr<rt::Context>& ctx) {
  return std::make_unique<rt::Buffer>(ctx, 16);
}

// packed_bytes() of a part that may be empty (keys at nbits 1.0 or 2.0 have an empty part).
PackedBytes part_bytes(const QuantSpec& spec, const TensorShape& shape) {
  return shape.elements() == 0 ? PackedBytes{} : packed_bytes(spec, shape);
}

void grow(std::unique_ptr<rt::Buffer>& buffer, const std::shared_ptr<rt::Context>& ctx, uint64_t bytes) {
  if (!buffer || buffer->size() < bytes) buffer = std::make_unique<rt::Buffer>(ctx, words(bytes));
}

}  // namespace

KeySpec Cache::Impl::key_spec() const {
  if (settings.key_mode == CacheSettings::KeyMode::vidkv) return settings.keys;
  // Plain 2-bit keys are VidKV keys whose channels are all anomalous, in channel order: the
  // attention's 2-bit path reads them unchanged.
  KeySpec s;
  s.nbits = 2.0;
  s.group_size = settings.group_size;
  s.scope = ChannelScope::head;
  s.fft = FftLayout::half;
  return s;
}

QuantSpec Cache::Impl::value_spec() const {
  switch (settings.value_mode) {
    case CacheSettings::ValueMode::per_channel_ternary:
      return {QuantBits::b1_58, QuantAxis::channel, settings.group_size, settings.ternary};
    case CacheSettings::ValueMode::per_token_2bit:
      return {QuantBits::b2, QuantAxis::token, settings.group_size};
    default:
      return {QuantBits::b2, QuantAxis::channel, settings.group_size};
  }
}

ValueFormat Cache::Impl::value_format() const {
  switch (settings.value_mode) {
    case CacheSettings::ValueMode::per_channel_ternary: return ValueFormat::ternary_trits;
    case CacheSettings::ValueMode::per_token_2bit: return ValueFormat::b2_token;
    default: return ValueFormat::b2_channel;
  }
}

Segment Cache::Impl::quantize_segment(const Layer& layer, const rt::BufferView& input_k,
                                      const rt::BufferView& input_v, uint32_t tokens,
                                      std::unique_ptr<rt::Buffer>& new_channels) {
  const uint32_t H = geometry.kv_heads, D = geometry.head_dim, G = settings.group_size;
  const TensorShape shape{H, tokens, D};
  const TensorLayout thd = TensorLayout::thd(shape);
  const KeySpec ks = key_spec();
  const uint32_t k = anomalous_channel_count(ks, D), S = coefficient_streams(ks.fft, D - k);
  const QuantSpec a_spec{QuantBits::b2, QuantAxis::channel, G}, s_spec{QuantBits::b1, QuantAxis::channel, G};
  const QuantSpec vs = value_spec();
  const bool vidkv_keys = settings.key_mode == CacheSettings::KeyMode::vidkv;
  const bool ternary = value_format() == ValueFormat::ternary_trits;

  Segment seg;
  seg.tokens = tokens;
  seg.key_anomalous = gpu::allocate_packed(ctx, a_spec, {H, tokens, k});
  seg.key_normal = gpu::allocate_packed(ctx, s_spec, {H, tokens, S});
  seg.values = gpu::allocate_packed(ctx, vs, shape);
  std::unique_ptr<rt::Buffer> trits;
  if (ternary) trits = std::make_unique<rt::Buffer>(ctx, words(trit_packed_bytes(shape, G)));

  // The layer's channel table: chosen by this segment when the layer has none yet.
  const bool select = !layer.channels;
  const rt::Buffer* table = layer.channels.get();
  if (select) {
    new_channels = std::make_unique<rt::Buffer>(ctx, words(GpuKeyQuantizer::channel_table_bytes(ks, H, D)));
    if (!vidkv_keys) {  // 2-bit keys: every channel anomalous, in order, per head
      std::vector<uint32_t> identity(size_t(H) * D);
      for (size_t i = 0; i < identity.size(); ++i) identity[i] = uint32_t(i % D);
      new_channels->upload(identity.data(), identity.size() * 4);
    }
    table = new_channels.get();
  }
  if (vidkv_keys && !workspace) {
    // One workspace serves every layer and sequence: the cache runs one quantization at a time.
    workspace = std::make_unique<KeyWorkspace>(ctx, ks, H, D, std::max(max_tokens / G * G, G));
  }

  runner.run([&](VkCommandBuffer cmd) {
    // The inputs were written by uploads or copies (or the caller's own work) before this submit.
    rt::transfer_to_compute_barrier(cmd);
    rt::compute_to_compute_barrier(cmd);
    if (vidkv_keys) {
      keys.record_quantize(cmd, ks, shape, thd, input_k, select, table->view(), *workspace,
                           {seg.key_anomalous.views(), seg.key_normal.views()});
    } else {
      quantizer.record_quantize(cmd, a_spec, shape, thd, ElementType::f16, input_k, seg.key_anomalous.views());
    }
    quantizer.record_quantize(cmd, vs, shape, thd, ElementType::f16, input_v, seg.values.views());
    if (ternary) {
      rt::compute_to_compute_barrier(cmd);
      quantizer.record_pack_trits(cmd, vs, shape, seg.values.codes->view(), trits->view());
    }
  });

  // Keep only what the attention reads: the streams' mins (1-bit has none) and the ternary
  // values' 2-bit fields and mins were scratch of the quantization.
  seg.key_normal.mins = placeholder(ctx);
  if (ternary) {
    seg.values.codes = std::move(trits);
    seg.values.mins = placeholder(ctx);
  }
  const PackedBytes a = part_bytes(a_spec, {H, tokens, k}), s = part_bytes(s_spec, {H, tokens, S});
  seg.key_bytes = {a.codes + s.codes, a.scales + s.scales, a.mins, 0};
  const PackedBytes v = packed_bytes(vs, shape);
  seg.value_bytes = ternary ? CachePartBytes{trit_packed_bytes(shape, G), v.scales, 0, 0}
                            : CachePartBytes{v.codes, v.scales, v.mins, 0};
  return seg;
}

void Cache::Impl::ensure_residual(Layer& layer) {
  if (layer.residual_keys) return;
  const uint64_t bytes = words(uint64_t(residual_capacity()) * token_halves() * 2);
  auto k = std::make_unique<rt::Buffer>(ctx, bytes);
  auto v = std::make_unique<rt::Buffer>(ctx, bytes);
  layer.residual_keys = std::move(k);
  layer.residual_values = std::move(v);
}

void Cache::Impl::prefill_device(Layer& layer, const rt::BufferView& k, const rt::BufferView& v, uint32_t tokens) {
  const uint32_t G = settings.group_size;
  const uint32_t quantized = fp16() ? 0 : tokens - tokens % G;
  const uint32_t tail = tokens - quantized;
  const uint64_t row = token_halves() * 2;
  std::unique_ptr<rt::Buffer> new_channels;
  std::vector<Segment> segment;
  if (quantized > 0) segment.push_back(quantize_segment(layer, k, v, quantized, new_channels));
  ensure_residual(layer);
  if (tail > 0) {
    // The residual's old contents are dead (it holds 0 tokens), so overwriting them is safe even
    // if this fails.
    const uint64_t bytes = tail * row, from = quantized * row;
    runner.run([&](VkCommandBuffer cmd) {
      rt::record_copy(cmd, {k.buffer, k.offset + from, bytes}, layer.residual_keys->view(0, bytes), bytes);
      rt::record_copy(cmd, {v.buffer, v.offset + from, bytes}, layer.residual_values->view(0, bytes), bytes);
    });
  }
  // Commit.
  if (!segment.empty()) layer.segments.push_back(std::move(segment.front()));
  if (new_channels) layer.channels = std::move(new_channels);
  layer.quantized = quantized;
  layer.residual = tail;
  layer.prefilled = true;
}

void Cache::Impl::append_token(Layer& layer, const std::vector<uint16_t>& k, const std::vector<uint16_t>& v) {
  ensure_residual(layer);
  const uint64_t row = token_halves() * 2, at = uint64_t(layer.residual) * row;
  // Writes past the residual's live tokens: a failure leaves the layer as it was.
  layer.residual_keys->upload(k.data(), row, at);
  layer.residual_values->upload(v.data(), row, at);
  if (!fp16() && layer.residual + 1 == settings.residual_length) {
    // Flush: the residual's R tokens (whole groups) become a new segment; old segments stay.
    std::unique_ptr<rt::Buffer> new_channels;
    Segment seg = quantize_segment(layer, layer.residual_keys->view(), layer.residual_values->view(),
                                   settings.residual_length, new_channels);
    layer.segments.push_back(std::move(seg));
    if (new_channels) layer.channels = std::move(new_channels);
    layer.quantized += settings.residual_length;
    layer.residual = 0;
  } else {
    layer.residual += 1;
  }
  layer.appended = true;
}

std::vector<float> Cache::Impl::attend(const Layer& layer, const std::vector<float>& q, float scale) {
  const AttentionGeometry g{geometry.kv_heads, geometry.q_heads, geometry.head_dim, scale};
  const uint64_t q_bytes = q.size() * 4;
  grow(q_buffer, ctx, q_bytes);
  grow(out_buffer, ctx, q_bytes);
  q_buffer->upload(q.data(), q_bytes);
  const Fp16KvBuffers residual{layer.residual, layer.residual_keys ? layer.residual_keys->view() : rt::BufferView{},
                               layer.residual_values ? layer.residual_values->view() : rt::BufferView{}};
  if (layer.segments.empty()) {
    // Only fp16 tokens (the fp16 preset, or fewer than a group so far): the baseline path.
    grow(partials, ctx, attention.partial_bytes_fp16(g, layer.residual));
    attention.run_fp16(g, residual, q_buffer->view(0, q_bytes), partials->view(), out_buffer->view(0, q_bytes));
  } else {
    QuantizedLayerBuffers l;
    l.keys = key_spec();
    l.values = value_format();
    l.channels = layer.channels->view();
    for (const Segment& s : layer.segments) {
      l.segments.push_back({s.tokens, s.key_anomalous.views(), s.key_normal.views(), s.values.views()});
    }
    l.residual = residual;
    grow(partials, ctx, attention.partial_bytes(g, l));
    attention.run_vidkv(g, l, q_buffer->view(0, q_bytes), partials->view(), out_buffer->view(0, q_bytes));
  }
  std::vector<float> out(q.size());
  out_buffer->download(out.data(), q_bytes);
  return out;
}

}  // namespace vidkv
