// The engine path: the test plays an inference engine with its own VkInstance, VkDevice, queue,
// VkBuffers and command buffer, linked against libvulkan directly. vidkv is handed the handles,
// owns none of them, and only records into the engine's command buffer.
#include <gtest/gtest.h>
#include <vulkan/vulkan.h>

#include <cstring>
#include <deque>
#include <vector>

#include "common/random_data.hpp"
#include "vidkv/gpu_quantizer.hpp"
#include "vidkv/reference.hpp"

namespace vidkv::test {
namespace {

VKAPI_ATTR VkBool32 VKAPI_CALL count_message(VkDebugUtilsMessageSeverityFlagBitsEXT, VkDebugUtilsMessageTypeFlagsEXT,
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
    bi.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT;
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

rt::BufferView view_of(const Engine::OwnBuffer& b) { return {b.buffer, 0, b.size}; }

TEST(ExternalDevice, RecordsIntoTheEnginesCommandBufferWithTheEnginesBuffers) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  Engine engine;
  ASSERT_NE(engine.device, VK_NULL_HANDLE);
  {
    rt::ExternalDevice external{vkGetInstanceProcAddr, engine.instance, engine.physical, engine.device,
                                engine.family, engine.queue};
    auto context = rt::Context::wrap(external);
    EXPECT_FALSE(context->owns_device());
    GpuQuantizer quantizer(context);

    const TensorShape shape{2, 64, 128};
    const QuantSpec spec{QuantBits::b2, QuantAxis::channel, 32};
    const TensorLayout layout = TensorLayout::thd(shape);
    const auto input = tools::random_halves(shape, layout, seed);
    const PackedBytes pb = packed_bytes(spec, shape);
    auto& in = engine.make_buffer(input.size() * 2);
    std::memcpy(in.mapped, input.data(), input.size() * 2);
    auto& codes = engine.make_buffer(pb.codes);
    auto& scales = engine.make_buffer(pb.scales);
    auto& mins = engine.make_buffer(pb.mins);
    auto& out = engine.make_buffer(input.size() * 2);
    const PackedBuffers packed{view_of(codes), view_of(scales), view_of(mins)};

    VkCommandPoolCreateInfo pi{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
    pi.queueFamilyIndex = engine.family;
    VkCommandPool pool;
    ASSERT_EQ(vkCreateCommandPool(engine.device, &pi, nullptr, &pool), VK_SUCCESS);
    VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    ai.commandPool = pool;
    ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    ai.commandBufferCount = 1;
    VkCommandBuffer cmd;
    ASSERT_EQ(vkAllocateCommandBuffers(engine.device, &ai, &cmd), VK_SUCCESS);
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    vkBeginCommandBuffer(cmd, &bi);
    quantizer.record_quantize(cmd, spec, shape, layout, ElementType::f16, view_of(in), packed);
    // The engine's barrier between vidkv's writes and its next reads (here: vidkv's own decode).
    VkMemoryBarrier barrier{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    barrier.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
    barrier.dstAccessMask = VK_ACCESS_SHADER_READ_BIT;
    vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1,
                         &barrier, 0, nullptr, 0, nullptr);
    quantizer.record_dequantize(cmd, spec, shape, packed, layout, ElementType::f16, view_of(out));
    barrier.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
    vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &barrier, 0,
                         nullptr, 0, nullptr);
    vkEndCommandBuffer(cmd);
    VkFenceCreateInfo fi{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VkFence fence;
    vkCreateFence(engine.device, &fi, nullptr, &fence);
    VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
    si.commandBufferCount = 1;
    si.pCommandBuffers = &cmd;
    ASSERT_EQ(vkQueueSubmit(engine.queue, 1, &si, fence), VK_SUCCESS);
    ASSERT_EQ(vkWaitForFences(engine.device, 1, &fence, VK_TRUE, UINT64_MAX), VK_SUCCESS);

    const auto expected = reference::quantize(spec, shape, input.data(), layout);
    const auto expected_decoded = reference::dequantize(expected, layout);
    EXPECT_EQ(0, std::memcmp(codes.mapped, expected.codes.data(), expected.codes.size() * 4));
    EXPECT_EQ(0, std::memcmp(scales.mapped, expected.scales.data(), expected.scales.size() * 2));
    EXPECT_EQ(0, std::memcmp(mins.mapped, expected.mins.data(), expected.mins.size() * 2));
    EXPECT_EQ(0, std::memcmp(out.mapped, expected_decoded.data(), expected_decoded.size() * 2));

    vkDestroyFence(engine.device, fence, nullptr);
    vkDestroyCommandPool(engine.device, pool, nullptr);
  }  // vidkv's context goes first; the engine's handles must survive it
  EXPECT_NE(engine.device, VK_NULL_HANDLE);
  for (const auto& m : engine.messages) ADD_FAILURE() << "validation message: " << m;
}

TEST(ExternalDevice, RejectsADeviceWithoutPushDescriptors) {
  Engine engine(/*enable_push_descriptor=*/false);
  rt::ExternalDevice external{vkGetInstanceProcAddr, engine.instance, engine.physical, engine.device,
                              engine.family, engine.queue};
  try {
    rt::Context::wrap(external);
    ADD_FAILURE() << "device without VK_KHR_push_descriptor accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::missing_feature);
    EXPECT_NE(std::string(e.what()).find("VK_KHR_push_descriptor"), std::string::npos) << e.what();
  }
  for (const auto& m : engine.messages) ADD_FAILURE() << "validation message: " << m;
}

TEST(ExternalDevice, RejectsAQueueFamilyThatDoesNotExist) {
  Engine engine;
  rt::ExternalDevice external{vkGetInstanceProcAddr, engine.instance, engine.physical, engine.device, 99,
                              engine.queue};
  try {
    rt::Context::wrap(external);
    ADD_FAILURE() << "queue family 99 accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::missing_feature);
    EXPECT_NE(std::string(e.what()).find("99"), std::string::npos) << e.what();
  }
}

TEST(ExternalDevice, RejectsIncompleteHandles) {
  rt::ExternalDevice external{};
  try {
    rt::Context::wrap(external);
    ADD_FAILURE() << "empty ExternalDevice accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
  }
}

}  // namespace
}  // namespace vidkv::test
