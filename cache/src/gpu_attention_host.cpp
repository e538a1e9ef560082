// Decode attention: host round trips through device buffers (tests and tools).
#include <algorithm>
#include <cstring>
#include <string>

#include "vidkv/gpu_attention.hpp"
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

void check_q(const AttentionGeometry& g, const std::vector<float>& q) {
  if (q.size() != size_t(g.q_heads) * g.dim) {
    throw Error(ErrorCode::invalid_argument, "q holds " + std::to_string(q.size()) + " floats; q_heads x dim = " +
                                                 std::to_string(size_t(g.q_heads) * g.dim));
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
                                           uint32_t tokens) {
  check_geometry(g);
  check_q(g, q);
  check_kv(g, keys, values, tokens, "fp16");
  Uploads up(context_);
  const Fp16KvBuffers kv{tokens, up.vec(keys), up.vec(values)};
  const rt::BufferView qv = up.vec(q);
  rt::Buffer& partials = up.scratch(partial_bytes_fp16(g, tokens), poison_);
  rt::Buffer& out = up.scratch(q.size() * 4, poison_);
  run_fp16(g, kv, qv, partials.view(), out.view());
  std::vector<float> result(q.size());
  out.download(result.data(), result.size() * 4);
  return result;
}

std::vector<float> GpuAttention::vidkv_host(const AttentionGeometry& g, const std::vector<float>& q,
                                            const std::vector<HostSegment>& segments,
                                            const std::vector<uint16_t>& residual_keys,
                                            const std::vector<uint16_t>& residual_values, uint32_t residual_tokens) {
  check_geometry(g);
  check_q(g, q);
  check_kv(g, residual_keys, residual_values, residual_tokens, "residual");
  Uploads up(context_);
  QuantizedLayerBuffers layer;
  for (size_t i = 0; i < segments.size(); ++i) {
    const HostSegment& s = segments[i];
    const std::string name = "segment " + std::to_string(i);
    if (s.keys == nullptr || s.values == nullptr) {
      throw Error(ErrorCode::invalid_argument, name + " lacks keys or values");
    }
    const QuantizedKeys& k = *s.keys;
    const QuantizedTensor& v = *s.values;
    if (k.shape.heads != g.kv_heads || k.shape.dim != g.dim || v.shape.heads != g.kv_heads ||
        v.shape.dim != g.dim || v.shape.tokens != k.shape.tokens) {
      throw Error(ErrorCode::invalid_argument,
                  name + " keys " + std::to_string(k.shape.heads) + "x" + std::to_string(k.shape.tokens) + "x" +
                      std::to_string(k.shape.dim) + " / values " + std::to_string(v.shape.heads) + "x" +
                      std::to_string(v.shape.tokens) + "x" + std::to_string(v.shape.dim) +
                      " do not match kv_heads " + std::to_string(g.kv_heads) + ", dim " + std::to_string(g.dim));
    }
    const ValueFormat format = format_of(v);
    if (i == 0) {
      layer.keys = k.spec;
      layer.values = format;
      layer.channels = up.vec(attention_channel_table(k));
    } else {
      const QuantizedKeys& first = *segments[0].keys;
      if (k.spec.nbits != first.spec.nbits || k.spec.fft != first.spec.fft || k.spec.scope != first.spec.scope ||
          k.spec.group_size != first.spec.group_size || attention_channel_table(k) != attention_channel_table(first)) {
        throw Error(ErrorCode::invalid_argument, name + " keys differ from segment 0's spec or channel lists");
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
    seg.values = up.packed(v);
    if (format == ValueFormat::ternary_trits) {
      seg.values.codes = s.trits != nullptr ? up.vec(*s.trits) : up.vec(reference::pack_trits(v));
    }
    layer.segments.push_back(seg);
  }
  layer.residual = {residual_tokens, up.vec(residual_keys), up.vec(residual_values)};
  const rt::BufferView qv = up.vec(q);
  rt::Buffer& partials = up.scratch(partial_bytes(g, layer), poison_);
  rt::Buffer& out = up.scratch(q.size() * 4, poison_);
  run_vidkv(g, layer, qv, partials.view(), out.view());
  std::vector<float> result(q.size());
  out.download(result.data(), result.size() * 4);
  return result;
}

}  // namespace vidkv
