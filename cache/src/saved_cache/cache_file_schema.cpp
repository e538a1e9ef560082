// What a saved segment holds, as a function of geometry, settings and its token count: the one
// table the writer, the parser, the device upload and the statistics share (cache_file.hpp).
// It mirrors what the cache keeps of a segment (cache_internal.hpp's Segment): only the arrays the
// attention reads, at the sizes the quantizers write.
#include <algorithm>
#include <string>

#include "vidkv/cache_file.hpp"
#include "vidkv/ternary_pack.hpp"

namespace vidkv {
namespace {

using KeyMode = CacheSettings::KeyMode;
using ValueMode = CacheSettings::ValueMode;

// The cache's key spec (Cache::Impl::key_spec): plain 2-bit keys are VidKV keys whose channels
// are all anomalous, so both kinds store the same arrays.
KeySpec stored_key_spec(const CacheSettings& s) {
  if (s.key_mode == KeyMode::vidkv) return s.keys;
  KeySpec k;
  k.nbits = 2.0;
  k.group_size = s.group_size;
  return k;
}

// packed_bytes() without the device library: code words, and halves two per 32-bit word.
struct Packed {
  uint64_t codes, scales;
};
Packed packed(const QuantSpec& spec, const TensorShape& shape) {
  const PackedSizes p = packed_sizes(spec, shape);
  return {p.code_words() * 4, (p.scale_count() + 1) / 2 * 4};
}

}  // namespace

const char* cache_file_array_name(CacheFileArrayId id) noexcept {
  switch (id) {
    case CacheFileArrayId::key_anomalous_codes: return "key_anomalous_codes";
    case CacheFileArrayId::key_anomalous_scales: return "key_anomalous_scales";
    case CacheFileArrayId::key_anomalous_mins: return "key_anomalous_mins";
    case CacheFileArrayId::key_stream_codes: return "key_stream_codes";
    case CacheFileArrayId::key_stream_scales: return "key_stream_scales";
    case CacheFileArrayId::value_codes: return "value_codes";
    case CacheFileArrayId::value_scales: return "value_scales";
    case CacheFileArrayId::value_mins: return "value_mins";
    case CacheFileArrayId::value_high_codes: return "value_high_codes";
    case CacheFileArrayId::value_high_scales: return "value_high_scales";
    case CacheFileArrayId::value_high_mins: return "value_high_mins";
    case CacheFileArrayId::stp_protected_tokens: return "stp_protected_tokens";
  }
  return "unknown";
}

std::vector<CacheFileArraySpec> cache_file_segment_arrays(const CacheGeometry& g, const CacheSettings& s,
                                                          uint32_t tokens, bool stp, uint32_t protected_count) {
  if (s.key_mode == KeyMode::fp16 || s.value_mode == ValueMode::fp16) {
    throw Error(ErrorCode::invalid_argument, "settings " + s.name + " store keys or values in fp16: no segments");
  }
  const uint32_t H = g.kv_heads, D = g.head_dim, G = s.group_size;
  if (tokens == 0 || G == 0 || tokens % G != 0) {
    throw Error(ErrorCode::bad_group_size, "segment of " + std::to_string(tokens) +
                                               " tokens is not a positive multiple of group_size " + std::to_string(G));
  }
  if (!stp && protected_count != 0) {
    throw Error(ErrorCode::invalid_argument, "a segment without semantic token protection protects " +
                                                 std::to_string(protected_count) + " tokens");
  }
  if (stp) {
    if (!s.stp || s.value_mode != ValueMode::per_channel_ternary) {
      throw Error(ErrorCode::invalid_argument, "a segment with semantic token protection in settings " + s.name +
                                                   ", which have none");
    }
    // Both parts are quantized in whole groups along their gathered token axis.
    if (protected_count > tokens || protected_count % G != 0) {
      throw Error(ErrorCode::invalid_argument, "STP segment of " + std::to_string(tokens) + " tokens protects " +
                                                   std::to_string(protected_count) +
                                                   "; the count must be a multiple of group_size " +
                                                   std::to_string(G) + " and at most the segment's tokens");
    }
  }
  using Id = CacheFileArrayId;
  using Part = CacheFilePart;
  using Role = CacheFileRole;
  std::vector<CacheFileArraySpec> out;
  const KeySpec ks = stored_key_spec(s);
  const uint32_t k = anomalous_channel_count(ks, D), streams = coefficient_streams(ks.fft, D - k);
  if (k > 0) {
    const Packed a = packed({QuantBits::b2, QuantAxis::channel, G}, {H, tokens, k});
    out.push_back({Id::key_anomalous_codes, Part::keys, Role::codes, a.codes});
    out.push_back({Id::key_anomalous_scales, Part::keys, Role::scales, a.scales});
    out.push_back({Id::key_anomalous_mins, Part::keys, Role::mins, a.scales});
  }
  if (streams > 0) {
    // 1-bit streams decode to +-scale: their mins are not kept.
    const Packed st = packed({QuantBits::b1, QuantAxis::channel, G}, {H, tokens, streams});
    out.push_back({Id::key_stream_codes, Part::keys, Role::codes, st.codes});
    out.push_back({Id::key_stream_scales, Part::keys, Role::scales, st.scales});
  }
  // An STP segment's 1.58-bit part holds the tokens it does not protect, gathered.
  const TensorShape shape{H, tokens - protected_count, D};
  switch (s.value_mode) {
    case ValueMode::per_channel_ternary: {
      // Trits 5 per byte; the decode is code * scale, so there are no mins.
      if (shape.tokens > 0) {
        const Packed v = packed({QuantBits::b1_58, QuantAxis::channel, G, s.ternary}, shape);
        out.push_back({Id::value_codes, Part::values, Role::codes, trit_packed_bytes(shape, G)});
        out.push_back({Id::value_scales, Part::values, Role::scales, v.scales});
      }
      if (protected_count > 0) {
        // The protected tokens' 2-bit part, as GpuStp / reference::quantize_values_stp store it.
        const Packed h = packed({QuantBits::b2, QuantAxis::channel, G, TernaryScale::mean_abs}, {H, protected_count, D});
        out.push_back({Id::value_high_codes, Part::values, Role::codes, h.codes});
        out.push_back({Id::value_high_scales, Part::values, Role::scales, h.scales});
        out.push_back({Id::value_high_mins, Part::values, Role::mins, h.scales});
        out.push_back({Id::stp_protected_tokens, Part::values, Role::tokens, uint64_t(protected_count) * 4});
      }
      break;
    }
    case ValueMode::per_channel_2bit:
    case ValueMode::per_token_2bit: {
      const QuantAxis axis = s.value_mode == ValueMode::per_token_2bit ? QuantAxis::token : QuantAxis::channel;
      const Packed v = packed({QuantBits::b2, axis, G}, shape);
      out.push_back({Id::value_codes, Part::values, Role::codes, v.codes});
      out.push_back({Id::value_scales, Part::values, Role::scales, v.scales});
      out.push_back({Id::value_mins, Part::values, Role::mins, v.scales});
      break;
    }
    default:
      throw Error(ErrorCode::invalid_argument,
                  "value mode enum value " + std::to_string(int(s.value_mode)) + " has no segment layout");
  }
  return out;
}

std::vector<uint32_t> cache_file_protected_tokens(const CacheFileSegment& segment) {
  std::vector<uint32_t> out;
  for (const CacheFileArray& a : segment.arrays) {
    if (a.id != CacheFileArrayId::stp_protected_tokens) continue;
    const uint8_t* p = a.bytes.data();
    for (size_t i = 0; i + 4 <= a.bytes.size(); i += 4) {
      out.push_back(uint32_t(p[i]) | uint32_t(p[i + 1]) << 8 | uint32_t(p[i + 2]) << 16 | uint32_t(p[i + 3]) << 24);
    }
  }
  return out;
}

uint64_t cache_file_channel_table_entries(const CacheGeometry& g, const CacheSettings& s) {
  if (s.key_mode == KeyMode::fp16) return 0;
  const KeySpec ks = stored_key_spec(s);
  const uint64_t units = ks.scope == ChannelScope::layer ? 1 : g.kv_heads;
  return units * g.head_dim;
}

std::vector<CacheFileLayerHeads> cache_file_layer_heads(const CacheGeometry& g, const CacheSettings& s) {
  std::vector<CacheFileLayerHeads> out(g.layers, CacheFileLayerHeads{g.kv_heads, 0, 0});
  if (s.head_policies.uniform()) return out;
  const std::vector<HeadPolicy> all = resolve_head_policies(s.head_policies, g.layers, g.kv_heads);
  for (uint32_t l = 0; l < g.layers; ++l) {
    CacheFileLayerHeads& h = out[l];
    h = {};
    for (uint32_t k = 0; k < g.kv_heads; ++k) {
      const HeadPolicy p = all[size_t(l) * g.kv_heads + k];
      ++(p == HeadPolicy::vidkv ? h.preset : p == HeadPolicy::full ? h.full : h.window);
    }
  }
  return out;
}

CacheStats cache_file_stats(const CacheFileContents& c) {
  CacheStats st;
  const uint32_t D = c.geometry.head_dim;
  const uint64_t row = uint64_t(c.geometry.kv_heads) * D * 2;  // bytes of one token of K (or V), all heads
  const uint64_t head_row = uint64_t(D) * 2;                     // of one head
  const bool fp16 = c.settings.key_mode == KeyMode::fp16;
  const uint64_t capacity = fp16 ? c.max_tokens : c.settings.residual_length;
  const uint64_t window = uint64_t(c.settings.head_policies.sink) + c.settings.head_policies.recent;
  const std::vector<CacheFileLayerHeads> heads = cache_file_layer_heads(c.geometry, c.settings);
  CachePolicyStats& preset = st.policies[size_t(HeadPolicy::vidkv)];
  CachePolicyStats& full = st.policies[size_t(HeadPolicy::full)];
  CachePolicyStats& windowed = st.policies[size_t(HeadPolicy::window)];
  for (const CacheFileLayerHeads& h : heads) {
    preset.heads += h.preset;
    full.heads += h.full;
    windowed.heads += h.window;
  }
  uint64_t quantized_values = 0;
  st.sequences = uint32_t(c.sequences.size());
  for (const CacheFileSequence& seq : c.sequences) {
    for (size_t i = 0; i < seq.layers.size(); ++i) {
      const CacheFileLayer& l = seq.layers[i];
      // A mixed layer's preset part holds only its preset heads (the cache's Impl::part_heads).
      const CacheFileLayerHeads h = i < heads.size() ? heads[i] : CacheFileLayerHeads{c.geometry.kv_heads, 0, 0};
      const CacheGeometry part = cache_file_part_geometry(c.geometry, l.mixed ? h.preset : c.geometry.kv_heads);
      const uint64_t part_row = uint64_t(part.kv_heads) * head_row;
      const uint64_t part_tokens = uint64_t(l.quantized) + l.residual;
      const bool written = l.prefilled || l.appended;
      st.tokens += l.mixed ? l.count : part_tokens;
      st.quantized_tokens += l.quantized;
      st.residual_tokens += l.residual;
      quantized_values += uint64_t(l.quantized) * part.kv_heads * D;
      preset.tokens += part_tokens * part.kv_heads;
      preset.fp16_equivalent_bytes += part_tokens * part_row * 2;
      if (l.mixed) {
        // The stores are allocated at a layer's first write: full for max_tokens, window for its slots.
        full.tokens += uint64_t(l.count) * h.full;
        full.fp16_equivalent_bytes += uint64_t(l.count) * h.full * head_row * 2;
        if (written && h.full > 0) full.bytes += 2 * uint64_t(c.max_tokens) * h.full * head_row;
        windowed.tokens += std::min<uint64_t>(l.count, window) * h.window;
        windowed.fp16_equivalent_bytes += uint64_t(l.count) * h.window * head_row * 2;
        if (written && h.window > 0) windowed.bytes += 2 * window * h.window * head_row;
      }
      st.segments += uint32_t(l.segments.size());
      for (const CacheFileSegment& s : l.segments) {
        const auto specs = cache_file_segment_arrays(part, c.settings, s.tokens, s.stp, s.protected_count);
        for (const CacheFileArray& a : s.arrays) {
          for (const CacheFileArraySpec& spec : specs) {
            if (spec.id != a.id || spec.role == CacheFileRole::tokens) continue;
            CachePartBytes& p = spec.part == CacheFilePart::keys ? st.keys : st.values;
            (spec.role == CacheFileRole::codes ? p.codes : spec.role == CacheFileRole::scales ? p.scales : p.mins) +=
                a.bytes.size();
          }
        }
        // The device keeps, for the attention, a uint32 token map over the segment (rebuilt
        // from the protected list when loaded), counted as the cache counts it.
        if (s.stp) st.values.maps += uint64_t(s.tokens) * 4;
      }
      st.keys.maps += uint64_t(l.channels.size()) * 4;
      st.residual_bytes += uint64_t(l.residual) * part_row * 2;
      // The cache allocates a layer's residual at its first prefill or append (none for a mixed
      // layer without preset heads).
      if (written && part.kv_heads > 0) st.residual_capacity_bytes += capacity * part_row * 2;
    }
  }
  preset.bytes = st.keys.total() + st.values.total() + st.residual_capacity_bytes;
  if (fp16) {
    st.key_bits = st.value_bits = 16.0;
  } else if (quantized_values > 0) {
    st.key_bits = 8.0 * double(st.keys.total()) / double(quantized_values);
    st.value_bits = 8.0 * double(st.values.total()) / double(quantized_values);
  }
  st.fp16_equivalent_bytes = st.tokens * row * 2;
  return st;
}

}  // namespace vidkv
