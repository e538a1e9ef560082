// Decode attention: host round trips through device buffers (tests and tools).
#include <algorithm>
#include <cstring>
#include <string>

#include "vidkv/gpu_attention.hpp"
#include "vidkv/stp.hpp"
#include "vidkv/ternary_pack.hpp"

namespace vidkv {

namespace {

// Owns the device copies of host arrays for one call. Buffers are never empty, and halves are
// padded to whole 32-bit words as the shaders read them.
class Uploads {
 public:
  explicit Uploads(std::shared_ptr<rt::Context> ctx) : ctx_(std::move(ctx)) {}

  rt::BufferView bytes(const void* data, uint64_t size) {
    const uint64_t padded = std::max<uint64_t>((size + 3) / 4 * 4, 16);
    buffers_.push_back(std::make_unique<rt::Buffer>(ctx_, padded));
    if (size > 0) {
      std::vector<uint8_t> copy(padded, 0);
      std::memcpy(copy.data(), data, size);
      buffers_.back()->upload(copy.data(), padded);
    }
    return buffers_.back()->view();
  }
  template <typename T>
  rt::BufferView vec(const std::vector<T>& v) {
    return bytes(v.data(), v.size() * sizeof(T));
  }
  rt::Buffer& scratch(uint64_t size, uint8_t poison) {
    buffers_.push_back(std::make_unique<rt::Buffer>(ctx_, std::max<uint64_t>(size, 16)));
    buffers_.back()->fill(poison);
    return *buffers_.back();
  }
  PackedBuffers packed(const QuantizedTensor& t) { return {vec(t.codes), vec(t.scales), vec(t.mins)}; }

 private:
  std::shared_ptr<rt::Context> ctx_;
  std::vector<std::unique_ptr<rt::Buffer>> buffers_;
};

void check_q(const AttentionGeometry& g, const std::vector<float>& q, uint32_t causal) {
  const size_t queries = std::max(causal, 1u);
  if (q.size() != queries * g.q_heads * g.dim) {
    throw Error(ErrorCode::invalid_argument, "q holds " + std::to_string(q.size()) + " floats; queries x q_heads x dim = " +
                                                 std::to_string(queries * g.q_heads * g.dim));
  }
}

void check_kv(const AttentionGeometry& g, const std::vector<uint16_t>& k, const std::vector<uint16_t>& v,
              uint32_t tokens, const char* what) {
  const size_t n = size_t(tokens) * g.kv_heads * g.dim;
  if (k.size() < n || v.size() < n) {
    throw Error(ErrorCode::buffer_too_small, std::string(what) + " keys/values hold " + std::to_string(k.size()) +
                                                 "/" + std::to_string(v.size()) + " halves; " + std::to_string(n) +
                                                 " needed for " + std::to_string(tokens) + " tokens");
  }
}

ValueFormat format_of(const QuantizedTensor& v) {
  if (v.spec.bits == QuantBits::b1_58 && v.spec.axis == QuantAxis::channel) return ValueFormat::ternary_trits;
  if (v.spec.bits == QuantBits::b2) {
    return v.spec.axis == QuantAxis::channel ? ValueFormat::b2_channel : ValueFormat::b2_token;
  }
  throw Error(ErrorCode::unsupported_bits, std::string("values at ") + bits_name(v.spec.bits) + " bits along " +
                                               axis_name(v.spec.axis) + " have no attention path");
}

}  // namespace

std::vector<float> GpuAttention::fp16_host(const AttentionGeometry& g, const std::vector<float>& q,
                                           const std::vector<uint16_t>& keys, const std::vector<uint16_t>& values,
                                           uint32_t tokens, uint32_t causal) {
  check_geometry(g);
  check_q(g, q, causal);
  check_kv(g, keys, values, tokens, "fp16");
  Uploads up(context_);
  const Fp16KvBuffers kv{tokens, up.vec(keys), up.vec(values)};
  const rt::BufferView qv = up.vec(q);
  rt::Buffer& partials = up.scratch(partial_bytes_fp16(g, tokens, causal), poison_);
  rt::Buffer& out = up.scratch(q.size() * 4, poison_);
  run_fp16(g, kv, qv, partials.view(), out.view(), causal);
  std::vector<float> result(q.size());
  out.download(result.data(), result.size() * 4);
  return result;
}

namespace {

// token_map of QuantizedSegmentBuffers for a split (checked first: in range, increasing, disjoint,
// whole groups): part index of every token, bit 31 for the protected part.
std::vector<uint32_t> token_map_of(const TokenSplit& split, uint32_t tokens, uint32_t group,
                                   const std::string& name) {
  if (reference::split_from_list(split.protected_tokens, tokens, group).other_tokens != split.other_tokens) {
    throw Error(ErrorCode::invalid_argument, name + " STP split's other tokens are not the complement of its "
                                                    "protected tokens");
  }
  std::vector<uint32_t> map(tokens, 0);
  for (uint32_t i = 0; i < split.other_tokens.size(); ++i) map[split.other_tokens[i]] = i;
  for (uint32_t j = 0; j < split.protected_tokens.size(); ++j) map[split.protected_tokens[j]] = j | 0x80000000u;
  return map;
}

}  // namespace

namespace {

// A host layer's device copies, as record_vidkv reads them (checked: shapes, formats, splits).
QuantizedLayerBuffers upload_layer(Uploads& up, const AttentionGeometry& g, const std::vector<HostSegment>& segments,
                                   const std::vector<uint16_t>& residual_keys,
                                   const std::vector<uint16_t>& residual_values, uint32_t residual_tokens) {
  check_kv(g, residual_keys, residual_values, residual_tokens, "residual");
  // The layer's value format: STP as soon as one segment carries a split; its plain ternary
  // segments are then STP segments with no protected token.
  bool any_stp = false;
  for (const HostSegment& s : segments) any_stp |= s.stp != nullptr;
  QuantizedLayerBuffers layer;
  for (size_t i = 0; i < segments.size(); ++i) {
    const HostSegment& s = segments[i];
    const std::string name = "segment " + std::to_string(i);
    if (s.keys == nullptr || (s.values == nullptr) == (s.stp == nullptr)) {
      throw Error(ErrorCode::invalid_argument, name + " needs keys and either values or an STP split");
    }
    const QuantizedKeys& k = *s.keys;
    const TensorShape vshape = s.stp != nullptr ? s.stp->shape : s.values->shape;
    if (k.shape.heads != g.kv_heads || k.shape.dim != g.dim || vshape.heads != g.kv_heads || vshape.dim != g.dim ||
        vshape.tokens != k.shape.tokens) {
      throw Error(ErrorCode::invalid_argument,
                  name + " keys " + std::to_string(k.shape.heads) + "x" + std::to_string(k.shape.tokens) + "x" +
                      std::to_string(k.shape.dim) + " / values " + std::to_string(vshape.heads) + "x" +
                      std::to_string(vshape.tokens) + "x" + std::to_string(vshape.dim) +
                      " do not match kv_heads " + std::to_string(g.kv_heads) + ", dim " + std::to_string(g.dim));
    }
    ValueFormat format = ValueFormat::ternary_stp;
    // the values' group size (STP: both parts'), one per layer
    const uint32_t vg = s.stp != nullptr ? s.stp->low.spec.group_size : s.values->spec.group_size;
    if (s.stp != nullptr && s.stp->high.spec.group_size != vg) {
      throw Error(ErrorCode::invalid_argument, name + " STP parts have group sizes " +
                                                   std::to_string(s.stp->high.spec.group_size) + " and " +
                                                   std::to_string(vg));
    }
    if (s.stp != nullptr) {
      if (format_of(s.stp->high) != ValueFormat::b2_channel || format_of(s.stp->low) != ValueFormat::ternary_trits ||
          s.stp->split.protected_tokens.size() != s.stp->high.shape.tokens ||
          s.stp->split.other_tokens.size() != s.stp->low.shape.tokens) {
        throw Error(ErrorCode::invalid_argument, name + " STP parts are not 2-bit per channel and 1.58-bit per "
                                                        "channel over the split's protected and other tokens");
      }
    } else {
      format = format_of(*s.values);
      if (any_stp && format != ValueFormat::ternary_trits) {
        throw Error(ErrorCode::invalid_argument, name + " values are " + value_format_name(format) +
                                                     "; an STP layer's other segments must be ternary_trits");
      }
      if (any_stp) format = ValueFormat::ternary_stp;
    }
    if (i == 0) {
      layer.keys = k.spec;
      layer.values = format;
      layer.value_group_size = vg;
      layer.channels = up.vec(attention_channel_table(k));
    } else {
      const QuantizedKeys& first = *segments[0].keys;
      if (k.spec.nbits != first.spec.nbits || k.spec.fft != first.spec.fft || k.spec.scope != first.spec.scope ||
          k.spec.group_size != first.spec.group_size || attention_channel_table(k) != attention_channel_table(first)) {
        throw Error(ErrorCode::invalid_argument, name + " keys differ from segment 0's spec or channel lists");
      }
      if (vg != layer.value_group_size) {
        throw Error(ErrorCode::invalid_argument, name + " values have group size " + std::to_string(vg) +
                                                     ", segment 0's " + std::to_string(layer.value_group_size));
      }
      if (format != layer.values) {
        throw Error(ErrorCode::invalid_argument, name + " values are " + value_format_name(format) +
                                                     ", segment 0's are " + value_format_name(layer.values));
      }
    }
    QuantizedSegmentBuffers seg;
    seg.tokens = k.shape.tokens;
    seg.key_anomalous = up.packed(k.anomalous);
    seg.key_normal = up.packed(k.normal);
    if (s.stp != nullptr) {
      const StpQuantizedValues& stp = *s.stp;
      seg.token_map = up.vec(token_map_of(stp.split, seg.tokens, vg, name));
      seg.protected_tokens = uint32_t(stp.split.protected_tokens.size());
      seg.values = up.packed(stp.low);
      if (stp.low.shape.tokens > 0) {
        seg.values.codes = s.trits != nullptr ? up.vec(*s.trits) : up.vec(reference::pack_trits(stp.low));
      }
      seg.values_high = up.packed(stp.high);
    } else {
      seg.values = up.packed(*s.values);
      if (format != ValueFormat::b2_channel && format != ValueFormat::b2_token) {
        seg.values.codes = s.trits != nullptr ? up.vec(*s.trits) : up.vec(reference::pack_trits(*s.values));
      }
    }
    layer.segments.push_back(seg);
  }
  layer.residual = {residual_tokens, up.vec(residual_keys), up.vec(residual_values)};
  return layer;
}

}  // namespace

std::vector<float> GpuAttention::vidkv_host(const AttentionGeometry& g, const std::vector<float>& q,
                                            const std::vector<HostSegment>& segments,
                                            const std::vector<uint16_t>& residual_keys,
                                            const std::vector<uint16_t>& residual_values, uint32_t residual_tokens,
                                            uint32_t causal) {
  check_geometry(g);
  check_q(g, q, causal);
  Uploads up(context_);
  const QuantizedLayerBuffers layer = upload_layer(up, g, segments, residual_keys, residual_values, residual_tokens);
  const rt::BufferView qv = up.vec(q);
  rt::Buffer& partials = up.scratch(partial_bytes(g, layer, causal), poison_);
  rt::Buffer& out = up.scratch(q.size() * 4, poison_);
  run_vidkv(g, layer, qv, partials.view(), out.view(), causal);
  std::vector<float> result(q.size());
  out.download(result.data(), result.size() * 4);
  return result;
}

std::vector<float> GpuAttention::batch_host(const AttentionGeometry& g, const std::vector<float>& q,
                                            const std::vector<HostLayer>& layers) {
  check_geometry(g);
  const size_t row = size_t(g.q_heads) * g.dim;
  if (q.size() != layers.size() * row) {
    throw Error(ErrorCode::invalid_argument, "q holds " + std::to_string(q.size()) + " floats; layers x q_heads x dim = " +
                                                 std::to_string(layers.size() * row));
  }
  Uploads up(context_);
  std::vector<QuantizedLayerBuffers> buffers;
  for (const HostLayer& l : layers) {
    buffers.push_back(upload_layer(up, g, l.segments, l.residual_keys, l.residual_values, l.residual_tokens));
  }
  const rt::BufferView qv = up.vec(q);
  rt::Buffer& partials = up.scratch(partial_bytes_batch(g, buffers), poison_);
  rt::Buffer& out = up.scratch(q.size() * 4, poison_);
  runner_.run([&](VkCommandBuffer cmd) { record_batch(cmd, g, buffers, qv, partials.view(), out.view()); });
  std::vector<float> result(q.size());
  out.download(result.data(), result.size() * 4);
  return result;
}

}  // namespace vidkv
