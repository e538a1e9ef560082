#pragma once
// A minimal inference engine for the external-device tests: its own VkInstance (validation and
// synchronization validation on, messages collected), VkDevice, compute queue and host-visible
// VkBuffers, created through libvulkan directly. vidkv is handed the handles and owns none.
#include <gtest/gtest.h>
#include <vulkan/vulkan.h>

#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "vidkv/runtime/buffer.hpp"

namespace vidkv::test {

inline VKAPI_ATTR VkBool32 VKAPI_CALL count_message(VkDebugUtilsMessageSeverityFlagBitsEXT, VkDebugUtilsMessageTypeFlagsEXT,
                                             const VkDebugUtilsMessengerCallbackDataEXT* data, void* user) {
  static_cast<std::vector<std::string>*>(user)->push_back(data->pMessage ? data->pMessage : "");
  return VK_FALSE;
}

// A minimal engine: one device, one compute queue, host-visible buffers of its own.
struct Engine {
  VkInstance instance = VK_NULL_HANDLE;
  VkDebugUtilsMessengerEXT messenger = VK_NULL_HANDLE;
  VkPhysicalDevice physical = VK_NULL_HANDLE;
  VkDevice device = VK_NULL_HANDLE;
  VkQueue queue = VK_NULL_HANDLE;
  uint32_t family = 0;
  std::vector<std::string> messages;
  struct OwnBuffer {
    VkBuffer buffer;
    VkDeviceMemory memory;
    void* mapped;
    VkDeviceSize size;
  };
  std::deque<OwnBuffer> buffers;  // deque: references stay valid as buffers are added

  explicit Engine(bool enable_push_descriptor = true) {
    const char* layer = "VK_LAYER_KHRONOS_validation";
    const char* ext = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
    VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
    app.apiVersion = VK_API_VERSION_1_2;
    // The engine checks its barriers around vidkv's work with synchronization validation too.
    const VkValidationFeatureEnableEXT sync = VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT;
    VkValidationFeaturesEXT features{VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT};
    features.enabledValidationFeatureCount = 1;
    features.pEnabledValidationFeatures = &sync;
    VkInstanceCreateInfo ii{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
    ii.pNext = &features;
    ii.pApplicationInfo = &app;
    ii.enabledLayerCount = 1;
    ii.ppEnabledLayerNames = &layer;
    ii.enabledExtensionCount = 1;
    ii.ppEnabledExtensionNames = &ext;
    EXPECT_EQ(vkCreateInstance(&ii, nullptr, &instance), VK_SUCCESS);
    auto create_messenger = reinterpret_cast<PFN_vkCreateDebugUtilsMessengerEXT>(
        vkGetInstanceProcAddr(instance, "vkCreateDebugUtilsMessengerEXT"));
    VkDebugUtilsMessengerCreateInfoEXT mi{VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT};
    mi.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
    mi.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                     VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT;
    mi.pfnUserCallback = count_message;
    mi.pUserData = &messages;
    create_messenger(instance, &mi, nullptr, &messenger);
    uint32_t count = 1;
    std::vector<VkPhysicalDevice> all(8);
    count = 8;
    vkEnumeratePhysicalDevices(instance, &count, all.data());
    physical = all[0];
    uint32_t fc = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(physical, &fc, nullptr);
    std::vector<VkQueueFamilyProperties> families(fc);
    vkGetPhysicalDeviceQueueFamilyProperties(physical, &fc, families.data());
    for (uint32_t f = 0; f < fc; ++f) {
      if (families[f].queueFlags & VK_QUEUE_COMPUTE_BIT) {
        family = f;
        break;
      }
    }
    const float priority = 1.0f;
    VkDeviceQueueCreateInfo qi{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
    qi.queueFamilyIndex = family;
    qi.queueCount = 1;
    qi.pQueuePriorities = &priority;
    const char* push = VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME;  // documented requirement
    VkDeviceCreateInfo di{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
    di.queueCreateInfoCount = 1;
    di.pQueueCreateInfos = &qi;
    di.enabledExtensionCount = enable_push_descriptor ? 1 : 0;
    di.ppEnabledExtensionNames = &push;
    EXPECT_EQ(vkCreateDevice(physical, &di, nullptr, &device), VK_SUCCESS);
    vkGetDeviceQueue(device, family, 0, &queue);
  }

  ~Engine() {
    for (auto& b : buffers) {
      vkDestroyBuffer(device, b.buffer, nullptr);
      vkFreeMemory(device, b.memory, nullptr);
    }
    vkDestroyDevice(device, nullptr);
    auto destroy = reinterpret_cast<PFN_vkDestroyDebugUtilsMessengerEXT>(
        vkGetInstanceProcAddr(instance, "vkDestroyDebugUtilsMessengerEXT"));
    destroy(instance, messenger, nullptr);
    vkDestroyInstance(instance, nullptr);
  }

  OwnBuffer& make_buffer(VkDeviceSize size) {
    VkBufferCreateInfo bi{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
    bi.size = size;
    // vidkv binds them as storage buffers and copies residual tokens in and out of them.
    bi.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    OwnBuffer b{};
    b.size = size;
    vkCreateBuffer(device, &bi, nullptr, &b.buffer);
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(device, b.buffer, &req);
    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceMemoryProperties(physical, &mp);
    uint32_t type = 0;
    const VkMemoryPropertyFlags want = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    for (uint32_t i = 0; i < mp.memoryTypeCount; ++i) {
      if ((req.memoryTypeBits & (1u << i)) && (mp.memoryTypes[i].propertyFlags & want) == want) {
        type = i;
        break;
      }
    }
    VkMemoryAllocateInfo ai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
    ai.allocationSize = req.size;
    ai.memoryTypeIndex = type;
    vkAllocateMemory(device, &ai, nullptr, &b.memory);
    vkBindBufferMemory(device, b.buffer, b.memory, 0);
    vkMapMemory(device, b.memory, 0, VK_WHOLE_SIZE, 0, &b.mapped);
    std::memset(b.mapped, 0xcd, size);  // poison
    buffers.push_back(b);
    return buffers.back();
  }
};

inline rt::BufferView view_of(const Engine::OwnBuffer& b) { return {b.buffer, 0, b.size}; }

// The engine's command buffer: begin, record, then submit and wait with a barrier to host reads.
struct EngineCommands {
  Engine& engine;
  VkCommandPool pool = VK_NULL_HANDLE;
  VkCommandBuffer cmd = VK_NULL_HANDLE;
  VkFence fence = VK_NULL_HANDLE;

  explicit EngineCommands(Engine& e) : engine(e) {
    VkCommandPoolCreateInfo pi{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
    pi.queueFamilyIndex = engine.family;
    vkCreateCommandPool(engine.device, &pi, nullptr, &pool);
    VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    ai.commandPool = pool;
    ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    ai.commandBufferCount = 1;
    vkAllocateCommandBuffers(engine.device, &ai, &cmd);
    VkFenceCreateInfo fi{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    vkCreateFence(engine.device, &fi, nullptr, &fence);
  }
  ~EngineCommands() {
    vkDestroyFence(engine.device, fence, nullptr);
    vkDestroyCommandPool(engine.device, pool, nullptr);
  }
  void begin() {
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    vkBeginCommandBuffer(cmd, &bi);
  }
  // The engine's barrier before and after vidkv's work (see cache.hpp): its host writes are made
  // visible by the submission; vidkv's shader and transfer writes to its host reads.
  void submit_and_wait() {
    VkMemoryBarrier barrier{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    barrier.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    barrier.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
    vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &barrier, 0, nullptr, 0, nullptr);
    vkEndCommandBuffer(cmd);
    vkResetFences(engine.device, 1, &fence);
    VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
    si.commandBufferCount = 1;
    si.pCommandBuffers = &cmd;
    ASSERT_EQ(vkQueueSubmit(engine.queue, 1, &si, fence), VK_SUCCESS);
    ASSERT_EQ(vkWaitForFences(engine.device, 1, &fence, VK_TRUE, UINT64_MAX), VK_SUCCESS);
  }
};

}  // namespace vidkv::test
