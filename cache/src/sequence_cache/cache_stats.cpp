// vidkv::Cache read-side: honest storage statistics (DESIGN section 4: bytes actually held, the
// fp16 residual apart), segments and residual read back to the host, and dequantize().
#include <algorithm>
#include <set>
#include <string>

#include "sequence_cache/cache_internal.hpp"
#include "vidkv/ternary_pack.hpp"

namespace vidkv {

using cache_detail::Layer;
using cache_detail::Segment;

namespace {

template <typename T>
std::vector<T> download(const rt::Buffer& buffer, size_t count) {
  std::vector<T> out(count);
  if (count > 0) buffer.download(out.data(), count * sizeof(T));
  return out;
}

// codes/scales/mins of one part as QuantizedTensor; `with_mins` false fills mins with `min_fill`
// (the arrays the cache does not keep hold a constant: 0 for 1-bit, -1 for ternary).
QuantizedTensor download_part(const QuantSpec& spec, const TensorShape& shape, const gpu::DevicePacked& d,
                              bool with_mins, uint16_t min_fill) {
  QuantizedTensor t;
  t.spec = spec;
  t.shape = shape;
  if (shape.elements() == 0) return t;
  const PackedSizes sizes = packed_sizes(spec, shape);
  t.codes = download<uint32_t>(*d.codes, sizes.code_words());
  t.scales = download<uint16_t>(*d.scales, sizes.scale_count());
  t.mins = with_mins ? download<uint16_t>(*d.mins, sizes.scale_count())
                     : std::vector<uint16_t>(sizes.scale_count(), min_fill);
  return t;
}

}  // namespace

CacheStats Cache::stats() const {
  const Impl& m = *impl_;
  CacheStats st;
  st.sequences = uint32_t(m.sequences.size());
  const uint64_t row = m.token_halves() * 2;  // bytes of one token of K (or V), all heads
  const uint64_t head_row = uint64_t(m.geometry.head_dim) * 2;
  const KeySpec ks = m.key_spec();
  CachePolicyStats& preset = st.policies[size_t(HeadPolicy::vidkv)];
  CachePolicyStats& full = st.policies[size_t(HeadPolicy::full)];
  CachePolicyStats& window = st.policies[size_t(HeadPolicy::window)];
  for (const cache_detail::HeadRoute& r : m.routes) {
    preset.heads += uint32_t(r.preset.size());
    full.heads += uint32_t(r.full.size());
    window.heads += uint32_t(r.window.size());
  }
  // Values held in segments (all their tokens, masked tails included: they are stored).
  uint64_t quantized_values = 0;
  std::set<const void*> counted_segments, counted_tables;
  for (const auto& [id, seq] : m.sequences) {
    for (const Layer& l : seq.layers) {
      const uint64_t part_row = m.part_token_bytes(l);
      st.tokens += l.tokens();
      if (l.mixed) {
        const cache_detail::HeadRoute& r = m.routes[l.index];
        full.tokens += uint64_t(l.count) * r.full.size();
        full.bytes += m.full_bytes(l);
        full.fp16_equivalent_bytes += uint64_t(l.count) * r.full.size() * head_row * 2;
        window.tokens += uint64_t(std::min(l.count, m.window_capacity())) * r.window.size();
        window.bytes += m.window_bytes(l);
        window.fp16_equivalent_bytes += uint64_t(l.count) * r.window.size() * head_row * 2;
      }
      preset.tokens += uint64_t(l.quantized + l.residual) * m.part_heads(l);
      preset.fp16_equivalent_bytes += uint64_t(l.quantized + l.residual) * part_row * 2;
      st.quantized_tokens += l.quantized;
      st.residual_tokens += l.residual;
      for (const cache_detail::SegmentRef& ref : l.segments) {
        // Forked sequences share segments and channel tables: each is counted once.
        if (!counted_segments.insert(ref.data.get()).second) continue;
        ++st.segments;
        const Segment& s = *ref;
        quantized_values += uint64_t(s.tokens) * m.seg_heads(s) * m.geometry.head_dim;
        st.keys.codes += s.key_bytes.codes;
        st.keys.scales += s.key_bytes.scales;
        st.keys.mins += s.key_bytes.mins;
        st.values.codes += s.value_bytes.codes;
        st.values.scales += s.value_bytes.scales;
        st.values.mins += s.value_bytes.mins;
        st.values.maps += s.value_bytes.maps;  // STP token maps
      }
      // The table the attention reads (uint32 per channel), not the dim-bit mask bit_accounting
      // counts as the minimum: this is what is held.
      if (l.channels && counted_tables.insert(l.channels.get()).second) st.keys.maps += GpuKeyQuantizer::channel_table_bytes(ks, m.part_heads(l), m.geometry.head_dim);
      st.residual_bytes += uint64_t(l.residual) * part_row * 2;
      if (l.residual_keys) st.residual_capacity_bytes += uint64_t(m.residual_capacity()) * part_row * 2;
    }
  }
  preset.bytes = st.keys.total() + st.values.total() + st.residual_capacity_bytes;
  const uint64_t values = quantized_values;
  if (m.fp16()) {
    st.key_bits = st.value_bits = 16.0;  // nothing quantized: every value is an fp16 half
  } else if (values > 0) {
    st.key_bits = 8.0 * double(st.keys.total()) / double(values);
    st.value_bits = 8.0 * double(st.values.total()) / double(values);
  }
  st.fp16_equivalent_bytes = st.tokens * row * 2;
  st.nonfinite_inputs = m.recorded_nonfinite();
  return st;
}

uint32_t Cache::segment_count(uint32_t sequence, uint32_t layer) const {
  return uint32_t(impl_->layer(sequence, layer).segments.size());
}

CacheSegmentHost Cache::segment_host(uint32_t sequence, uint32_t layer, uint32_t index) const {
  const Impl& m = *impl_;
  const Layer& l = m.layer(sequence, layer);
  if (index >= l.segments.size()) {
    throw Error(ErrorCode::invalid_argument, "cache: segment " + std::to_string(index) + " of sequence " +
                                                 std::to_string(sequence) + " layer " + std::to_string(layer) +
                                                 " (it has " + std::to_string(l.segments.size()) + ")");
  }
  const Segment& s = *l.segments[index];
  const uint32_t H = m.seg_heads(s), D = m.geometry.head_dim, T = s.tokens, G = m.settings.group_size;
  const KeySpec ks = m.key_spec();
  const uint32_t k = anomalous_channel_count(ks, D), S = coefficient_streams(ks.fft, D - k);
  const uint32_t units = ks.scope == ChannelScope::head ? H : 1;
  CacheSegmentHost out;
  out.keys.spec = ks;
  out.keys.shape = {H, T, D};
  const auto table = download<uint32_t>(*l.channels, size_t(units) * D);
  for (uint32_t h = 0; h < H; ++h) {
    const uint32_t* row = table.data() + size_t(ks.scope == ChannelScope::head ? h : 0) * D;
    out.keys.splits.push_back({std::vector<uint32_t>(row, row + k), std::vector<uint32_t>(row + k, row + D)});
  }
  out.keys.anomalous = download_part({QuantBits::b2, QuantAxis::channel, G}, {H, T, k}, s.key_anomalous, true, 0);
  out.keys.normal = download_part({QuantBits::b1, QuantAxis::channel, G}, {H, T, S}, s.key_normal, false, 0);
  const QuantSpec vs = m.value_spec();
  TensorShape shape{H, T, D};
  if (s.stp) {
    // values: the other tokens' part; values_high: the protected tokens' part.
    out.split = s.split;
    const uint32_t n = uint32_t(s.split.protected_tokens.size());
    out.values_high = download_part({QuantBits::b2, QuantAxis::channel, G, TernaryScale::mean_abs}, {H, n, D},
                                    s.values_high, true, 0);
    shape.tokens = T - n;
  }
  if (shape.tokens == 0) {
    out.values.spec = vs;
    out.values.shape = shape;
  } else if (m.value_format() == ValueFormat::ternary_trits) {
    out.trits = download<uint8_t>(*s.values.codes, trit_packed_bytes(shape, G));
    out.values.spec = vs;
    out.values.shape = shape;
    out.values.codes = reference::unpack_trits(out.trits, vs, shape);
    out.values.scales = download<uint16_t>(*s.values.scales, packed_sizes(vs, shape).scale_count());
    out.values.mins.assign(out.values.scales.size(), uint16_t(0xBC00));  // -1, what the quantizer writes
  } else {
    out.values = download_part(vs, shape, s.values, true, 0);
  }
  return out;
}

void Cache::residual_host(uint32_t sequence, uint32_t layer, std::vector<uint16_t>& keys,
                          std::vector<uint16_t>& values) const {
  const Impl& m = *impl_;
  const Layer& l = m.layer(sequence, layer);
  const size_t n = size_t(l.residual) * m.part_token_bytes(l) / 2;
  std::vector<uint16_t> k, v;
  if (n > 0) {
    k = download<uint16_t>(*l.residual_keys, n);
    v = download<uint16_t>(*l.residual_values, n);
  }
  keys = std::move(k);
  values = std::move(v);
}

}  // namespace vidkv
