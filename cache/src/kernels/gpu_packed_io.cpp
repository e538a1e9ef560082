#include "kernels/gpu_packed_io.hpp"

#include <algorithm>

namespace vidkv::gpu {

bool is_empty(const TensorShape& shape) { return shape.heads == 0 || shape.tokens == 0 || shape.dim == 0; }

void DevicePacked::fill(uint8_t byte_value) const {
  codes->fill(byte_value);
  scales->fill(byte_value);
  mins->fill(byte_value);
}

DevicePacked allocate_packed(const std::shared_ptr<rt::Context>& ctx, const QuantSpec& spec, const TensorShape& shape) {
  const PackedBytes b = is_empty(shape) ? PackedBytes{16, 16, 16} : packed_bytes(spec, shape);
  return {std::make_unique<rt::Buffer>(ctx, b.codes), std::make_unique<rt::Buffer>(ctx, b.scales),
          std::make_unique<rt::Buffer>(ctx, b.mins)};
}

DevicePacked upload_packed(const std::shared_ptr<rt::Context>& ctx, const QuantizedTensor& q) {
  DevicePacked device = allocate_packed(ctx, q.spec, q.shape);
  if (is_empty(q.shape)) {
    if (!q.codes.empty() || !q.scales.empty() || !q.mins.empty()) {
      throw Error(ErrorCode::invalid_argument, "an empty QuantizedTensor holds codes, scales or mins");
    }
    return device;
  }
  const PackedSizes sizes = packed_sizes(q.spec, q.shape);
  if (q.codes.size() != sizes.code_words() || q.scales.size() != sizes.scale_count() ||
      q.mins.size() != sizes.scale_count()) {
    throw Error(ErrorCode::invalid_argument, "QuantizedTensor arrays do not match its spec and shape (" +
                                                 std::to_string(q.codes.size()) + " code words, " +
                                                 std::to_string(sizes.code_words()) + " expected)");
  }
  // Scales and mins are halves, two per 32-bit word: the last word may be half padding.
  const PackedBytes b = packed_bytes(q.spec, q.shape);
  std::vector<uint16_t> scales(b.scales / 2, 0), mins(b.mins / 2, 0);
  std::copy(q.scales.begin(), q.scales.end(), scales.begin());
  std::copy(q.mins.begin(), q.mins.end(), mins.begin());
  device.codes->upload(q.codes.data(), b.codes);
  device.scales->upload(scales.data(), b.scales);
  device.mins->upload(mins.data(), b.mins);
  return device;
}

QuantizedTensor download_packed(const QuantSpec& spec, const TensorShape& shape, const DevicePacked& device) {
  QuantizedTensor q;
  q.spec = spec;
  q.shape = shape;
  if (is_empty(shape)) return q;
  const PackedSizes sizes = packed_sizes(spec, shape);
  const PackedBytes b = packed_bytes(spec, shape);
  q.codes.resize(sizes.code_words());
  device.codes->download(q.codes.data(), b.codes);
  std::vector<uint16_t> scales(b.scales / 2), mins(b.mins / 2);
  device.scales->download(scales.data(), b.scales);
  device.mins->download(mins.data(), b.mins);
  q.scales.assign(scales.begin(), scales.begin() + sizes.scale_count());
  q.mins.assign(mins.begin(), mins.begin() + sizes.scale_count());
  return q;
}

}  // namespace vidkv::gpu
