// vidkv::Cache device work for one (sequence, layer): quantizing whole groups into a new segment,
// the fp16 residual, attention over segments + residual, and decoding. Callers (cache.cpp,
// cache_record.cpp) have checked the arguments; new device data is built aside (PendingWrite) and
// committed to the Layer only at the end, so a failure part-way leaves the layer as it was.
#include <algorithm>
#include <cstring>
#include <string>
#include <tuple>

#include "sequence_cache/cache_internal.hpp"
#include "vidkv/ternary_pack.hpp"

namespace vidkv {

using cache_detail::Layer;
using cache_detail::PendingSegment;
using cache_detail::PendingWrite;
using cache_detail::Segment;

namespace {

using cache_detail::new_buffer;

// packed_bytes() of a part that may be empty (keys at nbits 1.0 or 2.0 have an empty part).
PackedBytes part_bytes(const QuantSpec& spec, const TensorShape& shape) {
  return shape.elements() == 0 ? PackedBytes{} : packed_bytes(spec, shape);
}

rt::BufferView offset_view(const rt::BufferView& v, uint64_t offset, uint64_t size) {
  return {v.buffer, v.offset + offset, size};
}

}  // namespace

uint32_t Cache::Impl::max_segment_tokens() const {
  const uint32_t G = settings.group_size;
  return std::max(max_tokens / G * G, settings.residual_length);
}

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

// --- scratch ---

rt::Buffer& Cache::Impl::grow(std::unique_ptr<rt::Buffer>& b, uint64_t bytes) {
  if (!b || b->size() < bytes) {
    // Geometric growth keeps the number of retired buffers small.
    auto bigger = new_buffer(ctx, b ? std::max(bytes, b->size() * 2) : bytes);
    if (b) scratch.retired.push_back(std::move(b));
    b = std::move(bigger);
  }
  return *b;
}

void Cache::Impl::ensure_quantize_scratch() {
  const uint32_t H = geometry.kv_heads, D = geometry.head_dim, T = max_segment_tokens();
  const KeySpec ks = key_spec();
  if (settings.key_mode == CacheSettings::KeyMode::vidkv && !scratch.keys) {
    scratch.keys = std::make_unique<KeyWorkspace>(ctx, ks, H, D, T);
  }
  if (!scratch.value_fields) {
    const PackedBytes v = packed_bytes(value_spec(), {H, T, D});
    const uint32_t k = anomalous_channel_count(ks, D), S = coefficient_streams(ks.fft, D - k);
    const PackedBytes s = part_bytes({QuantBits::b1, QuantAxis::channel, settings.group_size}, {H, T, S});
    auto fields = new_buffer(ctx, v.codes), mins = new_buffer(ctx, v.mins), stream_mins = new_buffer(ctx, s.mins);
    scratch.value_fields = std::move(fields);
    scratch.value_mins = std::move(mins);
    scratch.stream_mins = std::move(stream_mins);
  }
}

void Cache::Impl::run(const std::function<void(VkCommandBuffer)>& record) {
  runner.run(record);
  if (!scratch.recorded) {
    scratch.retired.clear();
    scratch.retired_joint.clear();
  }
}

void Cache::Impl::begin_recording(VkCommandBuffer cmd) {
  scratch.recorded = true;
  // Earlier operations (recorded or synchronous) may still be reading or writing the scratch,
  // residual and segments this one touches: order it after all compute and transfer work.
  rt::compute_transfer_barrier(cmd);
}

// --- segments ---

namespace cache_detail {

PendingSegment prepare_segment(Cache::Impl& m, const Layer& layer, uint32_t tokens, const TokenSplit* stp,
                               bool choose_channels) {
  const uint32_t H = m.part_heads(layer), D = m.geometry.head_dim, G = m.settings.group_size;
  const TensorShape shape{H, tokens, D};
  const KeySpec ks = m.key_spec();
  const uint32_t k = anomalous_channel_count(ks, D), S = coefficient_streams(ks.fft, D - k);
  const QuantSpec a_spec{QuantBits::b2, QuantAxis::channel, G}, s_spec{QuantBits::b1, QuantAxis::channel, G};
  const QuantSpec vs = m.value_spec();
  const bool ternary = m.value_format() == ValueFormat::ternary_trits;
  m.ensure_quantize_scratch();

  PendingSegment p;
  Segment& seg = p.segment;
  seg.tokens = tokens;
  seg.heads = H;
  seg.key_anomalous = gpu::allocate_packed(m.ctx, a_spec, {H, tokens, k});
  const PackedBytes s = part_bytes(s_spec, {H, tokens, S}), v = packed_bytes(vs, shape);
  seg.key_normal.codes = new_buffer(m.ctx, s.codes);
  seg.key_normal.scales = new_buffer(m.ctx, s.scales);
  seg.key_normal.mins = new_buffer(m.ctx, 16);
  if (stp) {
    m.prepare_stp_values(seg, *stp);
  } else {
    seg.values.codes = new_buffer(m.ctx, ternary ? trit_packed_bytes(shape, G) : v.codes);
    seg.values.scales = new_buffer(m.ctx, v.scales);
    seg.values.mins = new_buffer(m.ctx, ternary ? 16 : v.mins);
  }
  if (choose_channels) {
    // This segment chooses the layer's channels.
    p.new_channels = new_buffer(m.ctx, GpuKeyQuantizer::channel_table_bytes(ks, H, D));
    if (m.settings.key_mode != CacheSettings::KeyMode::vidkv) {
      // 2-bit keys: every channel anomalous, in order, per head.
      std::vector<uint32_t> identity(size_t(H) * D);
      for (size_t i = 0; i < identity.size(); ++i) identity[i] = uint32_t(i % D);
      p.new_channels->upload(identity.data(), identity.size() * 4);
    }
  }
  const PackedBytes a = part_bytes(a_spec, {H, tokens, k});
  seg.key_bytes = {a.codes + s.codes, a.scales + s.scales, a.mins, 0};
  if (!stp) {
    seg.value_bytes = ternary ? CachePartBytes{trit_packed_bytes(shape, G), v.scales, 0, 0}
                              : CachePartBytes{v.codes, v.scales, v.mins, 0};
  }
  return p;
}

void record_segment(Cache::Impl& m, VkCommandBuffer cmd, const Layer& layer, PendingSegment& p,
                    const rt::BufferView& k, const rt::BufferView& v, uint32_t tokens, const rt::Buffer* chosen) {
  const uint32_t H = m.part_heads(layer), D = m.geometry.head_dim, G = m.settings.group_size;
  const TensorShape shape{H, tokens, D};
  const TensorLayout thd = TensorLayout::thd(shape);
  const QuantSpec a_spec{QuantBits::b2, QuantAxis::channel, G};
  const QuantSpec vs = m.value_spec();
  const bool ternary = m.value_format() == ValueFormat::ternary_trits;
  Segment& seg = p.segment;
  const bool select = p.new_channels != nullptr;
  const rt::BufferView table = select ? p.new_channels->view() : chosen ? chosen->view() : layer.channels->view();
  const rt::BufferView kin = offset_view(k, 0, uint64_t(tokens) * m.part_token_bytes(layer));
  const rt::BufferView vin = offset_view(v, 0, uint64_t(tokens) * m.part_token_bytes(layer));

  if (m.settings.key_mode == CacheSettings::KeyMode::vidkv) {
    const PackedBuffers normal{seg.key_normal.codes->view(), seg.key_normal.scales->view(),
                               m.scratch.stream_mins->view()};
    m.keys.record_quantize(cmd, m.key_spec(), shape, thd, kin, select, table, *m.scratch.keys,
                           {seg.key_anomalous.views(), normal});
  } else {
    m.quantizer.record_quantize(cmd, a_spec, shape, thd, ElementType::f16, kin, seg.key_anomalous.views());
  }
  if (seg.stp) {
    m.record_stp_values(cmd, seg, vin);
  } else if (ternary) {
    const PackedBuffers fields{m.scratch.value_fields->view(), seg.values.scales->view(), m.scratch.value_mins->view()};
    m.quantizer.record_quantize(cmd, vs, shape, thd, ElementType::f16, vin, fields);
    rt::compute_to_compute_barrier(cmd);
    m.quantizer.record_pack_trits(cmd, vs, shape, m.scratch.value_fields->view(), seg.values.codes->view());
  } else {
    m.quantizer.record_quantize(cmd, vs, shape, thd, ElementType::f16, vin, seg.values.views());
  }
}

}  // namespace cache_detail

using cache_detail::prepare_segment;
using cache_detail::record_segment;

// --- writes ---

rt::BufferView Cache::Impl::residual_view(const Layer& layer, const PendingWrite& pending, bool k) const {
  const auto& own = k ? layer.residual_keys : layer.residual_values;
  const auto& fresh = k ? pending.residual_keys : pending.residual_values;
  return own ? own->view() : fresh->view();
}

namespace {

void prepare_residual(Cache::Impl& m, const Layer& layer, PendingWrite& p) {
  if (layer.residual_keys || m.part_heads(layer) == 0) return;
  const uint64_t bytes = uint64_t(m.residual_capacity()) * m.part_token_bytes(layer);
  p.residual_keys = new_buffer(m.ctx, bytes);
  p.residual_values = new_buffer(m.ctx, bytes);
}

}  // namespace

PendingWrite Cache::Impl::prepare_prefill(const Layer& layer, uint32_t tokens, ElementType type,
                                          const cache_detail::StpPlan& stp) {
  PendingWrite p;
  const uint32_t G = settings.group_size;
  // A mixed layer with no preset heads has no preset part: everything goes to its other stores.
  const uint32_t part = part_heads(layer) > 0 ? tokens : 0;
  p.quantized = fp16() ? 0 : part - part % G;
  p.residual = part - p.quantized;
  if (type == ElementType::f32) ensure_convert_scratch();
  if (layer.mixed) prepare_routes(layer, p, tokens);
  if (p.quantized > 0) {
    p.segments.push_back(prepare_segment(*this, layer, p.quantized, stp.active ? &stp.split : nullptr, !layer.channels));
  }
  prepare_residual(*this, layer, p);
  return p;
}

void Cache::Impl::record_prefill(VkCommandBuffer cmd, const Layer& layer, PendingWrite& p, const rt::BufferView& k,
                                 const rt::BufferView& v, ElementType type, uint32_t tokens,
                                 const rt::BufferView& check) {
  const uint64_t halves = uint64_t(tokens) * token_halves();
  auto [k16, v16] = record_convert(cmd, k, v, type, halves);
  record_scan(cmd, k16, v16, halves, check);
  if (layer.mixed) std::tie(k16, v16) = record_route_prefill(cmd, layer, p, k16, v16, tokens);
  if (!p.segments.empty()) record_segment(*this, cmd, layer, p.segments.front(), k16, v16, p.quantized);
  if (p.residual > 0) {
    // The residual's old contents are dead (the layer holds 0 tokens), so overwriting them is
    // safe even if this operation fails.
    const uint64_t row = part_token_bytes(layer);
    const uint64_t bytes = uint64_t(p.residual) * row, from = uint64_t(p.quantized) * row;
    rt::record_copy(cmd, offset_view(k16, from, bytes), residual_view(layer, p, true), bytes);
    rt::record_copy(cmd, offset_view(v16, from, bytes), residual_view(layer, p, false), bytes);
  }
}

PendingWrite Cache::Impl::prepare_append(const Layer& layer) {
  PendingWrite p;
  prepare_residual(*this, layer, p);
  if (layer.mixed) prepare_routes(layer, p, layer.count + 1);
  if (part_heads(layer) == 0) return p;  // no preset part: quantized and residual stay 0
  const bool flush = !fp16() && layer.residual + 1 == settings.residual_length;
  if (flush) {
    p.segments.push_back(prepare_segment(*this, layer, settings.residual_length, nullptr, !layer.channels));
    p.quantized = layer.quantized + settings.residual_length;
    p.residual = 0;
  } else {
    p.quantized = layer.quantized;
    p.residual = layer.residual + 1;
  }
  return p;
}

void Cache::Impl::record_append(VkCommandBuffer cmd, const Layer& layer, PendingWrite& p, const rt::BufferView& k,
                                const rt::BufferView& v, const rt::BufferView& check) {
  if (layer.mixed) {
    // The input token itself is scanned (the preset part's copy holds only some heads); a
    // synchronous append has scanned it already and passes no check buffer.
    if (check.buffer != VK_NULL_HANDLE) record_scan(cmd, k, v, token_halves(), check);
    record_route_append(cmd, layer, p, k, v);
    if (!p.segments.empty()) {
      record_segment(*this, cmd, layer, p.segments.front(), residual_view(layer, p, true),
                     residual_view(layer, p, false), settings.residual_length);
    }
    return;
  }
  const uint64_t row = token_bytes(), at = uint64_t(layer.residual) * row;
  // Writes past the residual's live tokens: a failure leaves the layer as it was.
  const rt::BufferView rk = residual_view(layer, p, true), rv = residual_view(layer, p, false);
  if (k.buffer != VK_NULL_HANDLE) {
    rt::record_copy(cmd, k, offset_view(rk, at, row), row);
    rt::record_copy(cmd, v, offset_view(rv, at, row), row);
    rt::transfer_to_compute_barrier(cmd);
  }
  record_scan(cmd, offset_view(rk, at, row), offset_view(rv, at, row), token_halves(), check);
  if (!p.segments.empty()) {
    // Flush: the residual's R tokens (whole groups) become a new segment; old segments stay.
    record_segment(*this, cmd, layer, p.segments.front(), rk, rv, settings.residual_length);
  }
}

void Cache::Impl::record_flush(VkCommandBuffer cmd, const Layer& layer, PendingWrite& p) {
  record_segment(*this, cmd, layer, p.segments.front(), residual_view(layer, p, true), residual_view(layer, p, false),
                 settings.residual_length);
}

void Cache::Impl::commit(Layer& layer, PendingWrite& p, bool prefill) {
  if (p.residual_keys) {
    layer.residual_keys = std::move(p.residual_keys);
    layer.residual_values = std::move(p.residual_values);
  }
  for (PendingSegment& s : p.segments) {
    const uint32_t tokens = s.segment.tokens;
    layer.segments.push_back({std::make_shared<const Segment>(std::move(s.segment)), tokens});
    if (s.new_channels) layer.channels = std::move(s.new_channels);
  }
  for (auto [mine, fresh] : {std::pair{&layer.full_keys, &p.full_keys}, std::pair{&layer.full_values, &p.full_values},
                             std::pair{&layer.window_keys, &p.window_keys},
                             std::pair{&layer.window_values, &p.window_values}}) {
    if (*fresh) *mine = std::move(*fresh);
  }
  layer.quantized = p.quantized;
  layer.residual = p.residual;
  layer.count = p.count;
  (prefill ? layer.prefilled : layer.appended) = true;
}

// --- reads ---

void Cache::Impl::record_attention(VkCommandBuffer cmd, const Layer& layer, const rt::BufferView& q,
                                   const rt::BufferView& out, float scale, uint32_t causal) {
  if (layer.mixed) {
    // (causal attention refuses mixed layers before recording: cache_causal.cpp)
    record_route_attention(cmd, layer, q, out, scale);
    return;
  }
  record_part_attention(cmd, layer, {geometry.kv_heads, geometry.q_heads, geometry.head_dim, scale}, q, out, causal);
}

QuantizedLayerBuffers Cache::Impl::layer_buffers(const Layer& layer) const {
  QuantizedLayerBuffers l;
  l.keys = key_spec();
  l.value_group_size = settings.group_size;
  l.residual = {layer.residual, layer.residual_keys ? layer.residual_keys->view() : rt::BufferView{},
                layer.residual_values ? layer.residual_values->view() : rt::BufferView{}};
  if (layer.segments.empty()) return l;
  // An STP cache's layer reads its prefill segment's two value parts through the token map; its
  // appended segments are plain ternary ones (n = 0).
  l.values = settings.stp ? ValueFormat::ternary_stp : value_format();
  l.channels = layer.channels->view();
  for (const cache_detail::SegmentRef& ref : layer.segments) {
    const Segment& s = *ref;
    QuantizedSegmentBuffers b{s.tokens, s.key_anomalous.views(), s.key_normal.views(), s.values.views()};
    if (ref.masked()) b.visible = ref.visible;
    if (s.stp) {
      b.protected_tokens = uint32_t(s.split.protected_tokens.size());
      b.values_high = s.values_high.views();
      b.token_map = s.token_map->view();
    }
    l.segments.push_back(b);
  }
  return l;
}

void Cache::Impl::record_part_attention(VkCommandBuffer cmd, const Layer& layer, const AttentionGeometry& g,
                                        const rt::BufferView& q, const rt::BufferView& out, uint32_t causal) {
  const QuantizedLayerBuffers l = layer_buffers(layer);
  if (layer.segments.empty()) {
    // Only fp16 tokens (the fp16 preset, or fewer than a group so far): the baseline path.
    rt::Buffer& partials = grow(scratch.partials, attention.partial_bytes_fp16(g, layer.residual, causal));
    attention.record_fp16(cmd, g, l.residual, q, partials.view(), out, causal);
    return;
  }
  rt::Buffer& partials = grow(scratch.partials, attention.partial_bytes(g, l, causal));
  attention.record_vidkv(cmd, g, l, q, partials.view(), out, causal);
}

void Cache::Impl::record_dequantize(VkCommandBuffer cmd, const Layer& layer, const rt::BufferView& k,
                                    const rt::BufferView& v) {
  if (layer.mixed) {
    record_route_dequantize(cmd, layer, k, v);
    return;
  }
  record_part_dequantize(cmd, layer, k, v);
}

void Cache::Impl::record_part_dequantize(VkCommandBuffer cmd, const Layer& layer, const rt::BufferView& k,
                                         const rt::BufferView& v) {
  const uint32_t H = part_heads(layer), D = geometry.head_dim;
  const uint64_t row = part_token_bytes(layer);
  const KeySpec ks = key_spec();
  const QuantSpec vs = value_spec();
  uint64_t at = 0;
  if (!layer.segments.empty()) ensure_quantize_scratch();
  for (const cache_detail::SegmentRef& ref : layer.segments) {
    const Segment& s = *ref;
    const TensorShape shape{H, s.tokens, D};
    const TensorLayout thd = TensorLayout::thd(shape);
    const uint64_t bytes = uint64_t(s.tokens) * row, kept = uint64_t(ref.visible) * row;
    // A masked segment (truncate_sequence) decodes whole into scratch, and only its visible
    // tokens (a prefix of [T][H][D]) are copied out: the caller's buffer holds no more.
    const bool masked = ref.masked();
    const rt::BufferView kout = masked ? grow(scratch.masked_keys, bytes).view(0, bytes) : offset_view(k, at, bytes);
    const rt::BufferView vout =
        masked ? grow(scratch.masked_values, bytes).view(0, bytes) : offset_view(v, at, bytes);
    const PackedBuffers normal{s.key_normal.codes->view(), s.key_normal.scales->view(),
                               scratch.stream_mins->view()};
    if (settings.key_mode == CacheSettings::KeyMode::vidkv) {
      keys.record_dequantize(cmd, ks, shape, {s.key_anomalous.views(), normal}, layer.channels->view(),
                             *scratch.keys, thd, kout);
    } else {
      quantizer.record_dequantize(cmd, {QuantBits::b2, QuantAxis::channel, settings.group_size}, shape,
                                  s.key_anomalous.views(), thd, ElementType::f16, kout);
    }
    if (s.stp) {
      record_stp_decode(cmd, s, vout);
    } else if (value_format() == ValueFormat::ternary_trits) {
      // Ternary decoding reads no mins; the scratch stands in for the placeholder's size check.
      const PackedBuffers trits{s.values.codes->view(), s.values.scales->view(), scratch.value_mins->view()};
      quantizer.record_dequantize_trits(cmd, vs, shape, trits, thd, ElementType::f16, vout);
    } else {
      quantizer.record_dequantize(cmd, vs, shape, s.values.views(), thd, ElementType::f16, vout);
    }
    // The key decode reuses the workspace for the next segment.
    rt::compute_to_compute_barrier(cmd);
    if (masked) {
      rt::compute_to_transfer_barrier(cmd);
      rt::record_copy(cmd, kout, offset_view(k, at, kept), kept);
      rt::record_copy(cmd, vout, offset_view(v, at, kept), kept);
      rt::compute_transfer_barrier(cmd);  // a later masked segment decodes into the same scratch
    }
    at += kept;
  }
  if (layer.residual > 0) {
    const uint64_t bytes = uint64_t(layer.residual) * row;
    rt::record_copy(cmd, layer.residual_keys->view(0, bytes), offset_view(k, at, bytes), bytes);
    rt::record_copy(cmd, layer.residual_values->view(0, bytes), offset_view(v, at, bytes), bytes);
  }
}

}  // namespace vidkv
