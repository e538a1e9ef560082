// An engine that keeps its own Vulkan device and hands it to vidkv: vidkv records 2-bit
// per-channel quantization and decoding of a keys tensor into the engine's command buffer, on the
// engine's buffers; the engine submits, waits and checks the round trip. Links libvulkan itself,
// beside vidkv (whose Volk entry points are renamed, so the two do not clash).
#include <vulkan/vulkan.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "vidkv/fp16.hpp"
#include "vidkv/gpu_quantizer.hpp"
#include "vidkv/version.hpp"

namespace {

#define CHECK(call)                                                   \
  do {                                                                \
    VkResult r_ = (call);                                             \
    if (r_ != VK_SUCCESS) {                                           \
      std::fprintf(stderr, "%s failed: %d\n", #call, int(r_));        \
      std::exit(1);                                                   \
    }                                                                 \
  } while (0)

struct HostBuffer {
  VkBuffer buffer = VK_NULL_HANDLE;
  VkDeviceMemory memory = VK_NULL_HANDLE;
  void* mapped = nullptr;
  VkDeviceSize size = 0;
};

HostBuffer make_buffer(VkPhysicalDevice physical, VkDevice device, VkDeviceSize size) {
  HostBuffer b;
  b.size = size;
  VkBufferCreateInfo bi{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
  bi.size = size;
  bi.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT;
  CHECK(vkCreateBuffer(device, &bi, nullptr, &b.buffer));
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements(device, b.buffer, &req);
  VkPhysicalDeviceMemoryProperties mp;
  vkGetPhysicalDeviceMemoryProperties(physical, &mp);
  const VkMemoryPropertyFlags want = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
  uint32_t type = UINT32_MAX;
  for (uint32_t i = 0; i < mp.memoryTypeCount && type == UINT32_MAX; ++i) {
    if ((req.memoryTypeBits & (1u << i)) && (mp.memoryTypes[i].propertyFlags & want) == want) type = i;
  }
  VkMemoryAllocateInfo ai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
  ai.allocationSize = req.size;
  ai.memoryTypeIndex = type;
  CHECK(vkAllocateMemory(device, &ai, nullptr, &b.memory));
  CHECK(vkBindBufferMemory(device, b.buffer, b.memory, 0));
  CHECK(vkMapMemory(device, b.memory, 0, VK_WHOLE_SIZE, 0, &b.mapped));
  return b;
}

}  // namespace

int main() {
  // --- the engine's own instance, device and queue ---
  VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
  app.apiVersion = VK_API_VERSION_1_2;
  VkInstanceCreateInfo ii{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
  ii.pApplicationInfo = &app;
  VkInstance instance;
  CHECK(vkCreateInstance(&ii, nullptr, &instance));
  uint32_t count = 1;
  VkPhysicalDevice physical = VK_NULL_HANDLE;
  VkResult enumerated = vkEnumeratePhysicalDevices(instance, &count, &physical);
  if ((enumerated != VK_SUCCESS && enumerated != VK_INCOMPLETE) || count == 0) {
    std::fprintf(stderr, "no Vulkan device\n");
    return 1;
  }
  uint32_t family_count = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(physical, &family_count, nullptr);
  std::vector<VkQueueFamilyProperties> families(family_count);
  vkGetPhysicalDeviceQueueFamilyProperties(physical, &family_count, families.data());
  uint32_t family = 0;
  while (family < family_count && !(families[family].queueFlags & VK_QUEUE_COMPUTE_BIT)) ++family;
  const float priority = 1.0f;
  VkDeviceQueueCreateInfo qi{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
  qi.queueFamilyIndex = family;
  qi.queueCount = 1;
  qi.pQueuePriorities = &priority;
  const char* extension = VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME;  // vidkv binds buffers this way
  VkDeviceCreateInfo di{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
  di.queueCreateInfoCount = 1;
  di.pQueueCreateInfos = &qi;
  di.enabledExtensionCount = 1;
  di.ppEnabledExtensionNames = &extension;
  VkDevice device;
  CHECK(vkCreateDevice(physical, &di, nullptr, &device));
  VkQueue queue;
  vkGetDeviceQueue(device, family, 0, &queue);

  bool ok = false;
  {
    // --- vidkv on the engine's device ---
    auto context = vidkv::rt::Context::wrap({vkGetInstanceProcAddr, instance, physical, device, family, queue});
    vidkv::GpuQuantizer quantizer(context);
    const vidkv::TensorShape shape{4, 256, 128};  // heads x tokens x channels
    const vidkv::QuantSpec spec{vidkv::QuantBits::b2, vidkv::QuantAxis::channel, 32};
    const auto layout = vidkv::TensorLayout::thd(shape);
    const auto bytes = vidkv::packed_bytes(spec, shape);
    HostBuffer keys = make_buffer(physical, device, shape.elements() * 2);
    HostBuffer codes = make_buffer(physical, device, bytes.codes);
    HostBuffer scales = make_buffer(physical, device, bytes.scales);
    HostBuffer mins = make_buffer(physical, device, bytes.mins);
    HostBuffer decoded = make_buffer(physical, device, shape.elements() * 2);
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    auto* k = static_cast<uint16_t*>(keys.mapped);
    for (size_t i = 0; i < shape.elements(); ++i) k[i] = vidkv::fp16::from_float(normal(rng));

    VkCommandPoolCreateInfo pi{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
    pi.queueFamilyIndex = family;
    VkCommandPool pool;
    CHECK(vkCreateCommandPool(device, &pi, nullptr, &pool));
    VkCommandBufferAllocateInfo ci{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    ci.commandPool = pool;
    ci.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    ci.commandBufferCount = 1;
    VkCommandBuffer cmd;
    CHECK(vkAllocateCommandBuffers(device, &ci, &cmd));
    VkCommandBufferBeginInfo begin{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    CHECK(vkBeginCommandBuffer(cmd, &begin));
    const vidkv::PackedBuffers packed{{codes.buffer, 0, codes.size}, {scales.buffer, 0, scales.size},
                                      {mins.buffer, 0, mins.size}};
    quantizer.record_quantize(cmd, spec, shape, layout, vidkv::ElementType::f16, {keys.buffer, 0, keys.size}, packed);
    VkMemoryBarrier barrier{VK_STRUCTURE_TYPE_MEMORY_BARRIER};  // what the engine owes between the two
    barrier.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
    barrier.dstAccessMask = VK_ACCESS_SHADER_READ_BIT;
    vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1,
                         &barrier, 0, nullptr, 0, nullptr);
    quantizer.record_dequantize(cmd, spec, shape, packed, layout, vidkv::ElementType::f16,
                                {decoded.buffer, 0, decoded.size});
    barrier.dstAccessMask = VK_ACCESS_HOST_READ_BIT;  // and before it reads the results on the host
    vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &barrier, 0,
                         nullptr, 0, nullptr);
    CHECK(vkEndCommandBuffer(cmd));
    VkFenceCreateInfo fi{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VkFence fence;
    CHECK(vkCreateFence(device, &fi, nullptr, &fence));
    VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
    si.commandBufferCount = 1;
    si.pCommandBuffers = &cmd;
    CHECK(vkQueueSubmit(queue, 1, &si, fence));
    CHECK(vkWaitForFences(device, 1, &fence, VK_TRUE, UINT64_MAX));

    // 2-bit per-channel quantization of N(0,1) keys: relative L2 error about 0.35 to 0.4.
    const auto* d = static_cast<const uint16_t*>(decoded.mapped);
    double num = 0, den = 0;
    for (size_t i = 0; i < shape.elements(); ++i) {
      const double x = vidkv::fp16::to_float(k[i]), y = vidkv::fp16::to_float(d[i]);
      num += (x - y) * (x - y);
      den += x * x;
    }
    const double rel = std::sqrt(num / den);
    std::printf("vidkv %s on %s: 2-bit round trip of %zu keys recorded into the engine's command buffer, "
                "relative L2 error %.4f\n",
                VIDKV_VERSION_STRING, context->info().name.c_str(), shape.elements(), rel);
    ok = rel > 0.2 && rel < 0.5;
    vkDestroyFence(device, fence, nullptr);
    vkDestroyCommandPool(device, pool, nullptr);
    for (HostBuffer* b : {&keys, &codes, &scales, &mins, &decoded}) {
      vkDestroyBuffer(device, b->buffer, nullptr);
      vkFreeMemory(device, b->memory, nullptr);
    }
  }  // vidkv's context goes before the engine's device
  vkDestroyDevice(device, nullptr);
  vkDestroyInstance(instance, nullptr);
  std::printf("%s\n", ok ? "example OK" : "example FAILED");
  return ok ? 0 : 1;
}
