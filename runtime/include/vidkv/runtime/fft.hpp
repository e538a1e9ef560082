#pragma once
// Batched 1-D real FFTs on the device, through VkFFT (the FFT key path transforms the D_normal
// channels of every token). VkFFT stays behind the pimpl: no VkFFT type reaches the public API.
//
// Layouts (fp32, rows contiguous, no padding):
//   real side:    `batch` rows of `length` floats
//   complex side: `batch` rows of length/2+1 complex values, interleaved (re, im)
// A forward plan (inverse = false) reads the real side and writes the complex side:
//   X[k] = sum_n x[n] exp(-2 pi i k n / length).
// An inverse plan (inverse = true) reads the complex side and writes the real side, NOT normalized
// (VkFFT's normalize option off): C2R(R2C(x)) = length * x. Callers divide where they need to,
// which keeps the scale out of the shaders and both directions the plain DFT sums.
// The inverse expects a Hermitian spectrum (imaginary parts of bin 0, and of bin length/2 for even
// lengths, zero), as any R2C output is; other input is not given a meaning here.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include <vulkan/vulkan_core.h>

#include "vidkv/error.hpp"
#include "vidkv/export.hpp"
#include "vidkv/runtime/buffer.hpp"

namespace vidkv::rt {

class Context;

class VIDKV_API FftPlan {
 public:
  // Compiles the transform's shaders (glslang, at creation; milliseconds to a second) and prepares
  // VkFFT's tables on the device: creation may submit work on the context's queue and wait, which
  // it does holding Context::lock_queue(), so vidkv's other submissions wait meanwhile (an
  // engine submitting to a wrapped device's queue takes the same lock). Plan creations within
  // vidkv are serialized.
  // Throws Error(invalid_argument) for length 0, batch 0 or a length VkFFT refuses, and
  // Error(vulkan_error) naming the VkFFT result for other failures.
  FftPlan(std::shared_ptr<Context> context, uint32_t length, uint32_t batch, bool inverse);
  ~FftPlan();
  FftPlan(const FftPlan&) = delete;
  FftPlan& operator=(const FftPlan&) = delete;

  uint32_t length() const { return length_; }
  uint32_t batch() const { return batch_; }
  bool inverse() const { return inverse_; }
  uint32_t complex_length() const { return length_ / 2 + 1; }
  // Bytes a buffer of each side must have. The real side is rounded up to whole 8-byte complex
  // values: VkFFT 1.2.26 sizes every descriptor range in complex elements, so when batch * length
  // is odd the real buffer needs 4 bytes of slack, which the transform neither reads nor writes.
  VkDeviceSize real_bytes() const { return (VkDeviceSize(batch_) * length_ * sizeof(float) + 7) / 8 * 8; }
  VkDeviceSize complex_bytes() const { return VkDeviceSize(batch_) * complex_length() * 2 * sizeof(float); }

  // Records the transform into `cmd` (out of place: input and output must not overlap; the input
  // is not modified). Barriers before and after are the caller's, as for every vidkv recording
  // (commands.hpp); between its own dispatches VkFFT records what it needs.
  // Both views must start at offset 0 of their buffer: VkFFT 1.2.26 binds its descriptors at
  // offset 0 with a range fixed at plan creation (the exact bytes above), and would only apply an
  // offset inside the shader, past that range. Throws Error(invalid_argument) for an offset and
  // Error(buffer_too_small) when a view is smaller than its side.
  // VkFFT keeps the buffers in the plan's descriptor sets and rewrites them when record is called
  // with other buffers: a command buffer that recorded this plan with different buffers must have
  // finished executing (and not be submitted again) before that. Record calls are serialized.
  void record(VkCommandBuffer cmd, const BufferView& input, const BufferView& output) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint32_t length_ = 0;
  uint32_t batch_ = 0;
  bool inverse_ = false;
};

// Plans per (length, batch, direction), created on first use and kept for the cache's lifetime
// (plan creation compiles shaders; recording is cheap). Thread-safe; references stay valid until
// the cache is destroyed.
class VIDKV_API FftPlanCache {
 public:
  explicit FftPlanCache(std::shared_ptr<Context> context);
  ~FftPlanCache();
  FftPlanCache(const FftPlanCache&) = delete;
  FftPlanCache& operator=(const FftPlanCache&) = delete;

  const FftPlan& get(uint32_t length, uint32_t batch, bool inverse);
  size_t size() const;

 private:
  std::shared_ptr<Context> context_;
  mutable std::mutex mutex_;
  std::map<std::tuple<uint32_t, uint32_t, bool>, std::unique_ptr<FftPlan>> plans_;
};

}  // namespace vidkv::rt
