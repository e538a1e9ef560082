#pragma once
// Device buffers holding one packed tensor (codes, scales, mins), and the host round trips of
// QuantizedTensor through them, shared by the GPU operations' host-level functions.
#include <memory>

#include "vidkv/gpu_quantizer.hpp"
#include "vidkv/reference.hpp"
#include "vidkv/runtime/buffer.hpp"

namespace vidkv::gpu {

struct DevicePacked {
  std::unique_ptr<rt::Buffer> codes, scales, mins;
  PackedBuffers views() const { return {codes->view(), scales->view(), mins->view()}; }
  void fill(uint8_t byte_value) const;
};

// A part with no heads, tokens or channels (an empty STP part, keys at nbits 1.0 or 2.0).
bool is_empty(const TensorShape& shape);
// Sized as packed_bytes(spec, shape); an empty shape gets 16-byte placeholders (a Vulkan buffer
// cannot be empty) that nothing reads or writes.
DevicePacked allocate_packed(const std::shared_ptr<rt::Context>& ctx, const QuantSpec& spec, const TensorShape& shape);
// Throws Error(invalid_argument) when the arrays do not match the tensor's spec and shape.
DevicePacked upload_packed(const std::shared_ptr<rt::Context>& ctx, const QuantizedTensor& q);
QuantizedTensor download_packed(const QuantSpec& spec, const TensorShape& shape, const DevicePacked& device);

}  // namespace vidkv::gpu
