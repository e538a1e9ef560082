// Decode attention's argument checks (gpu_attention.hpp): geometry, group sizes, every buffer view
// against the size its contents need, shared memory against the device's.
#include <algorithm>
#include <string>

#include "kernels/gpu_attention_internal.hpp"
#include "vidkv/ternary_pack.hpp"

namespace vidkv {

using namespace attention_detail;

void GpuAttention::check_geometry(const AttentionGeometry& g) const {
  if (g.dim < 64 || g.dim > 256 || g.dim % 16 != 0) {
    throw Error(ErrorCode::invalid_argument, "head dim " + str(g.dim) + " is not a multiple of 16 from 64 to 256");
  }
  if (g.kv_heads == 0 || g.q_heads == 0 || g.q_heads % g.kv_heads != 0) {
    throw Error(ErrorCode::invalid_argument, "q_heads " + str(g.q_heads) + " is not a positive multiple of kv_heads " +
                                                 str(g.kv_heads));
  }
  if (ratio_of(g) > kMaxRatio) {
    throw Error(ErrorCode::invalid_argument, "q_heads / kv_heads = " + str(ratio_of(g)) + " exceeds " +
                                                 str(kMaxRatio) + " query heads per KV head");
  }
  // workgroup y: KV head x chunk; Vulkan guarantees 65535
  if (uint64_t(g.kv_heads) * chunks_of(g) > 65535) {
    throw Error(ErrorCode::invalid_argument, "kv_heads " + str(g.kv_heads) + " x " + str(chunks_of(g)) +
                                                 " head chunks exceed 65535 workgroups");
  }
  if (!std::isfinite(g.scale) || g.scale < 0.0f) {
    throw Error(ErrorCode::invalid_argument, "scale " + std::to_string(g.scale) + " is not finite and >= 0");
  }
}

// The shaders address groups of 1, 2 or 4 blocks; the portable one stages a chunk's span of a
// value group's trit block, whose size grows with the group (so no larger groups).
void GpuAttention::check_group_sizes(uint32_t key_group, uint32_t value_group) {
  for (const auto& [what, size] : {std::pair{"key", key_group}, std::pair{"value", value_group}}) {
    if (size != 32 && size != 64 && size != 128) {
      throw Error(ErrorCode::bad_group_size, std::string(what) + " group size " + str(size) +
                                                 " is not 32, 64 or 128 (the fused attention reads no other)");
    }
  }
}

void GpuAttention::check_fp16(const AttentionGeometry& g, const Fp16KvBuffers& kv, const char* what) const {
  const uint64_t bytes = uint64_t(kv.tokens) * g.kv_heads * g.dim * 2;
  if (kv.tokens == 0) return;
  check_view(kv.keys, bytes, std::string(what) + " keys");
  check_view(kv.values, bytes, std::string(what) + " values");
}

void GpuAttention::check_shared_memory(uint64_t bytes, const char* what) const {
  if (bytes > context_->info().max_shared_memory) {
    throw Error(ErrorCode::invalid_argument, std::string(what) + " needs " + str(bytes) +
                                                 " bytes of shared memory; the device has " +
                                                 str(context_->info().max_shared_memory) +
                                                 " (use fewer split tokens or query heads per KV head)");
  }
}

// Sizes of segment `index`'s buffers against its token count and the layer's formats.
void GpuAttention::check_segment(const AttentionGeometry& g, const QuantizedLayerBuffers& layer, size_t index) const {
  const QuantizedSegmentBuffers& seg = layer.segments[index];
  const std::string name = "segment " + str(index);
  const uint32_t H = g.kv_heads, D = g.dim;
  const uint32_t k = anomalous_channel_count(layer.keys, D), S = coefficient_streams(layer.keys.fft, D - k);
  const uint32_t kg = layer.keys.group_size, vg = value_group_of(layer);
  // KIVI groups channels, not tokens
  const uint32_t token_group = layer.values == ValueFormat::b2_token ? kg : std::max(kg, vg);
  if (seg.tokens == 0 || seg.tokens % token_group != 0) {
    throw Error(ErrorCode::bad_group_size, name + " tokens " + str(seg.tokens) + " is not a positive multiple of " +
                                               str(token_group) + " (the layer's group size)");
  }
  if (seg.visible > seg.tokens) {
    throw Error(ErrorCode::invalid_argument,
                name + " visible tokens " + str(seg.visible) + " exceed its " + str(seg.tokens) + " tokens");
  }
  if (k > 0) {
    const PackedBytes b = packed_bytes({QuantBits::b2, QuantAxis::channel, kg}, {H, seg.tokens, k});
    check_view(seg.key_anomalous.codes, b.codes, name + " anomalous key codes");
    check_view(seg.key_anomalous.scales, b.scales, name + " anomalous key scales");
    check_view(seg.key_anomalous.mins, b.mins, name + " anomalous key mins");
  }
  if (S > 0) {
    const PackedBytes b = packed_bytes({QuantBits::b1, QuantAxis::channel, kg}, {H, seg.tokens, S});
    check_view(seg.key_normal.codes, b.codes, name + " key stream codes");
    check_view(seg.key_normal.scales, b.scales, name + " key stream scales");
  }
  uint32_t trit_tokens = seg.tokens;  // tokens whose values are trits
  if (layer.values == ValueFormat::ternary_stp && seg.protected_tokens > 0) {
    const uint32_t n = seg.protected_tokens;
    if (n % vg != 0 || n > seg.tokens) {
      throw Error(ErrorCode::bad_group_size, name + " protected tokens " + str(n) + " is not a multiple of " +
                                                 str(vg) + " in 0.." + str(seg.tokens));
    }
    const PackedBytes b = packed_bytes({QuantBits::b2, QuantAxis::channel, vg}, {H, n, D});
    check_view(seg.values_high.codes, b.codes, name + " protected value codes");
    check_view(seg.values_high.scales, b.scales, name + " protected value scales");
    check_view(seg.values_high.mins, b.mins, name + " protected value mins");
    check_view(seg.token_map, uint64_t(seg.tokens) * 4, name + " token map");
    trit_tokens = seg.tokens - n;
  }
  if (layer.values == ValueFormat::ternary_trits || layer.values == ValueFormat::ternary_stp) {
    if (trit_tokens == 0) return;  // every token protected: no trits
    const TensorShape shape{H, trit_tokens, D};
    check_view(seg.values.codes, words(trit_packed_bytes(shape, vg)), name + " value trits");
    check_view(seg.values.scales, packed_bytes({QuantBits::b1_58, QuantAxis::channel, vg}, shape).scales,
               name + " value scales");
  } else {
    const QuantAxis axis = layer.values == ValueFormat::b2_token ? QuantAxis::token : QuantAxis::channel;
    const PackedBytes b = packed_bytes({QuantBits::b2, axis, vg}, {H, seg.tokens, D});
    check_view(seg.values.codes, b.codes, name + " value codes");
    check_view(seg.values.scales, b.scales, name + " value scales");
    check_view(seg.values.mins, b.mins, name + " value mins");
  }
}

// Everything of one layer but the partials: geometry, q and out (causal: `causal` rows), keys,
// segments, residual, shared memory.
void GpuAttention::check_vidkv(const AttentionGeometry& g, const QuantizedLayerBuffers& layer,
                               const rt::BufferView& q, const rt::BufferView& out, bool keys_always,
                               uint32_t causal) const {
  check_common(g, q, out, causal);
  const KeySpec& ks = layer.keys;
  if (keys_always || !layer.segments.empty()) {
    validate(ks, {g.kv_heads, ks.group_size, g.dim});  // nbits and group size
    check_group_sizes(ks.group_size, value_group_of(layer));
    if (layer.values == ValueFormat::b2_token && g.dim % value_group_of(layer) != 0) {
      throw Error(ErrorCode::bad_group_size, "value group size " + str(value_group_of(layer)) +
                                                 " does not divide head dim " + str(g.dim) + " (b2_token values)");
    }
  }
  const uint32_t H = g.kv_heads, D = g.dim, ratio = chunk_ratio(g);
  uint64_t total = layer.residual.tokens;
  for (size_t i = 0; i < layer.segments.size(); ++i) {
    check_segment(g, layer, i);
    total += visible_tokens(layer.segments[i]);  // a truncated segment holds its visible ones
  }
  if (total == 0) throw Error(ErrorCode::invalid_argument, "the KV cache is empty (no segment and no residual tokens)");
  if (causal > total) {
    throw Error(ErrorCode::invalid_argument, "causal queries " + str(causal) + " exceed the cache's " + str(total) + " tokens");
  }
  check_fp16(g, layer.residual, "residual");
  if (layer.segments.empty()) {
    if (!subgroup8_path()) check_shared_memory(shared_common(ratio) + 4ull * ratio * D, "attention_fp16");
    return;
  }
  const uint32_t k = anomalous_channel_count(ks, D), N = D - k, S = coefficient_streams(ks.fft, N);
  const uint32_t units = ks.scope == ChannelScope::layer ? 1 : H;
  check_view(layer.channels, uint64_t(units) * D * 4, "channels");
  if (!subgroup8_path()) {
    for (const QuantizedSegmentBuffers& seg : layer.segments) {
      check_shared_memory(shared_vidkv(ratio, D, k, S, value_mode(layer.values, seg.protected_tokens),
                                       segment_split(g, layer, seg), value_group_of(layer)),
                          "attention_vidkv");
    }
    if (layer.residual.tokens > 0) check_shared_memory(shared_common(ratio) + 4ull * ratio * D, "attention_fp16");
  }
}

void attention_check_view(const rt::BufferView& view, uint64_t bytes, const std::string& name) {
  if (view.buffer == VK_NULL_HANDLE) throw Error(ErrorCode::invalid_argument, name + " has no buffer");
  if (view.size < bytes) {
    throw Error(ErrorCode::buffer_too_small, name + " holds " + str(view.size) + " bytes; " + str(bytes) + " needed");
  }
}

}  // namespace vidkv
