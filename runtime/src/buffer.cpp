#include "vidkv/runtime/buffer.hpp"

#include <cstring>
#include <string>

#include "memory_types.hpp"
#include "vidkv/runtime/commands.hpp"
#include "vidkv/runtime/context.hpp"
#include "vk.hpp"

namespace vidkv::rt {

uint32_t find_memory_type(VkPhysicalDevice device, uint32_t type_bits, VkMemoryPropertyFlags required,
                          VkMemoryPropertyFlags preferred) {
  VkPhysicalDeviceMemoryProperties memory{};
  vkGetPhysicalDeviceMemoryProperties(device, &memory);
  uint32_t fallback = UINT32_MAX;
  for (uint32_t i = 0; i < memory.memoryTypeCount; ++i) {
    if (!(type_bits & (1u << i))) continue;
    const auto flags = memory.memoryTypes[i].propertyFlags;
    if ((flags & required) != required) continue;
    if ((flags & preferred) == preferred) return i;
    if (fallback == UINT32_MAX) fallback = i;
  }
  return fallback;
}

static std::string heap_description(VkPhysicalDevice device, uint32_t type_index) {
  VkPhysicalDeviceMemoryProperties memory{};
  vkGetPhysicalDeviceMemoryProperties(device, &memory);
  const uint32_t heap = memory.memoryTypes[type_index].heapIndex;
  return "heap " + std::to_string(heap) + " of " +
         std::to_string(memory.memoryHeaps[heap].size >> 20) + " MiB";
}

Buffer::Buffer(std::shared_ptr<Context> context, VkDeviceSize size, MemoryUse use)
    : context_(std::move(context)), size_(size) {
  if (size == 0) throw Error(ErrorCode::invalid_argument, "buffer size must be positive");
  VkDevice device = context_->device();
  VkBufferCreateInfo info{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
  info.size = size;
  info.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
               VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  info.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  check(vkCreateBuffer(device, &info, nullptr, &buffer_), "vkCreateBuffer");
  try {
    VkMemoryRequirements req{};
    vkGetBufferMemoryRequirements(device, buffer_, &req);
    const VkMemoryPropertyFlags host = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    uint32_t type = UINT32_MAX;
    if (use == MemoryUse::readback) {
      type = find_memory_type(context_->physical_device(), req.memoryTypeBits, host,
                              VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
    } else if (context_->unified_memory()) {
      type = find_memory_type(context_->physical_device(), req.memoryTypeBits,
                              VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | host, 0);
    }
    if (type == UINT32_MAX) {
      type = find_memory_type(context_->physical_device(), req.memoryTypeBits,
                              VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
    }
    if (type == UINT32_MAX) {
      throw Error(ErrorCode::out_of_memory, "no memory type can hold a buffer of " + std::to_string(size) + " bytes");
    }
    VkMemoryAllocateInfo alloc{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
    alloc.allocationSize = req.size;
    alloc.memoryTypeIndex = type;
    VkResult result = vkAllocateMemory(device, &alloc, nullptr, &memory_);
    if (result == VK_ERROR_OUT_OF_DEVICE_MEMORY || result == VK_ERROR_OUT_OF_HOST_MEMORY) {
      throw Error(ErrorCode::out_of_memory, "allocating " + std::to_string(req.size) + " bytes in " +
                                                heap_description(context_->physical_device(), type) +
                                                " failed with " + result_name(result));
    }
    check(result, "vkAllocateMemory");
    check(vkBindBufferMemory(device, buffer_, memory_, 0), "vkBindBufferMemory");
    VkPhysicalDeviceMemoryProperties props{};
    vkGetPhysicalDeviceMemoryProperties(context_->physical_device(), &props);
    const bool host_visible = props.memoryTypes[type].propertyFlags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT;
    if (host_visible && (use == MemoryUse::readback || context_->unified_memory())) {
      check(vkMapMemory(device, memory_, 0, VK_WHOLE_SIZE, 0, &mapped_), "vkMapMemory");
    }
  } catch (...) {
    if (memory_) vkFreeMemory(device, memory_, nullptr);
    vkDestroyBuffer(device, buffer_, nullptr);
    throw;
  }
}

Buffer::~Buffer() {
  VkDevice device = context_->device();
  if (mapped_) vkUnmapMemory(device, memory_);
  vkDestroyBuffer(device, buffer_, nullptr);
  vkFreeMemory(device, memory_, nullptr);
}

BufferView Buffer::view(VkDeviceSize offset, VkDeviceSize size) const {
  if (offset > size_ || size > size_ - offset) {
    throw Error(ErrorCode::buffer_too_small, "view [" + std::to_string(offset) + ", +" + std::to_string(size) +
                                                 ") exceeds a buffer of " + std::to_string(size_) + " bytes");
  }
  return {buffer_, offset, size};
}

static void check_range(VkDeviceSize offset, VkDeviceSize bytes, VkDeviceSize size, const char* what) {
  if (offset > size || bytes > size - offset) {
    throw Error(ErrorCode::buffer_too_small, std::string(what) + " of " + std::to_string(bytes) +
                                                 " bytes at offset " + std::to_string(offset) +
                                                 " exceeds a buffer of " + std::to_string(size) + " bytes");
  }
}

void Buffer::upload(const void* data, VkDeviceSize bytes, VkDeviceSize offset) {
  check_range(offset, bytes, size_, "upload");
  if (bytes == 0) return;
  if (mapped_) {
    std::memcpy(static_cast<char*>(mapped_) + offset, data, bytes);
    return;
  }
  Buffer staging(context_, bytes, MemoryUse::readback);
  std::memcpy(staging.mapped_, data, bytes);
  CommandRunner runner(context_);
  runner.run([&](VkCommandBuffer cmd) {
    VkBufferCopy region{0, offset, bytes};
    vkCmdCopyBuffer(cmd, staging.buffer_, buffer_, 1, &region);
  });
}

void Buffer::download(void* data, VkDeviceSize bytes, VkDeviceSize offset) const {
  check_range(offset, bytes, size_, "download");
  if (bytes == 0) return;
  if (mapped_) {
    std::memcpy(data, static_cast<const char*>(mapped_) + offset, bytes);
    return;
  }
  Buffer staging(context_, bytes, MemoryUse::readback);
  CommandRunner runner(context_);
  runner.run([&](VkCommandBuffer cmd) {
    VkBufferCopy region{offset, 0, bytes};
    vkCmdCopyBuffer(cmd, buffer_, staging.buffer_, 1, &region);
  });
  std::memcpy(data, staging.mapped_, bytes);
}

void Buffer::fill(uint8_t byte_value) {
  if (mapped_) {
    std::memset(mapped_, byte_value, size_);
    return;
  }
  const uint32_t word = 0x01010101u * byte_value;
  CommandRunner runner(context_);
  runner.run([&](VkCommandBuffer cmd) { vkCmdFillBuffer(cmd, buffer_, 0, VK_WHOLE_SIZE, word); });
}

}  // namespace vidkv::rt
