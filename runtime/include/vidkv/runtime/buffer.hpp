#pragma once
// Device buffers. BufferView is what every vidkv operation takes, so a caller's VkBuffer and one
// that vidkv allocated are used the same way.
#include <cstdint>
#include <memory>

#include <vulkan/vulkan_core.h>

#include "vidkv/error.hpp"
#include "vidkv/export.hpp"

namespace vidkv::rt {

class Context;

struct BufferView {
  VkBuffer buffer = VK_NULL_HANDLE;
  VkDeviceSize offset = 0;
  VkDeviceSize size = 0;  // bytes visible through the view
};

enum class MemoryUse {
  device,    // device-local; host-visible too when the device has unified memory
  readback,  // host-visible, preferably cached, for reading results back
};

class VIDKV_API Buffer {
 public:
  // Throws Error(out_of_memory) naming the size and the heap when the allocation fails.
  Buffer(std::shared_ptr<Context> context, VkDeviceSize size, MemoryUse use = MemoryUse::device);
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  VkBuffer handle() const { return buffer_; }
  VkDeviceSize size() const { return size_; }
  BufferView view() const { return {buffer_, 0, size_}; }
  BufferView view(VkDeviceSize offset, VkDeviceSize size) const;
  bool host_visible() const { return mapped_ != nullptr; }

  // Copies host data in or out, directly when host-visible, else through a staging buffer and a
  // submitted copy (the call waits). Throws Error(buffer_too_small) when the range does not fit.
  void upload(const void* data, VkDeviceSize bytes, VkDeviceSize offset = 0);
  void download(void* data, VkDeviceSize bytes, VkDeviceSize offset = 0) const;
  // Fills every byte with the value (tests poison outputs this way).
  void fill(uint8_t byte_value);

 private:
  std::shared_ptr<Context> context_;
  VkBuffer buffer_ = VK_NULL_HANDLE;
  VkDeviceMemory memory_ = VK_NULL_HANDLE;
  VkDeviceSize size_ = 0;
  void* mapped_ = nullptr;
};

}  // namespace vidkv::rt
