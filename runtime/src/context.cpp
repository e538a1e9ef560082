#include "vidkv/runtime/context.hpp"

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "device_query.hpp"
#include "validation.hpp"

namespace vidkv::rt {

namespace {
// Per-context state that must stay out of the public header (it names volk-loaded pointers).
PFN_vkDestroyDebugUtilsMessengerEXT destroy_messenger_for(VkInstance instance) {
  return reinterpret_cast<PFN_vkDestroyDebugUtilsMessengerEXT>(
      vkGetInstanceProcAddr(instance, "vkDestroyDebugUtilsMessengerEXT"));
}

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}
}  // namespace

ContextOptions ContextOptions::from_environment() {
  ContextOptions options;
  const std::string validation = env("VIDKV_VALIDATION");
  options.validation = !validation.empty() && validation != "0";
  options.synchronization_validation = env("VIDKV_SYNC_VALIDATION") != "0";
  options.device_selector = env("VIDKV_DEVICE");
  return options;
}

std::shared_ptr<Context> Context::create(const ContextOptions& options) {
  load_loader();
  std::shared_ptr<Context> ctx(new Context());
  ctx->owns_device_ = true;
  ctx->instance_ = create_instance(options.validation, options.validation && options.synchronization_validation);
  if (options.validation) {
    DebugMessenger m = create_messenger(ctx->instance_, ctx.get());
    ctx->messenger_ = m.messenger;
  }

  uint32_t count = 0;
  check(vkEnumeratePhysicalDevices(ctx->instance_, &count, nullptr), "vkEnumeratePhysicalDevices");
  std::vector<VkPhysicalDevice> devices(count);
  check(vkEnumeratePhysicalDevices(ctx->instance_, &count, devices.data()), "vkEnumeratePhysicalDevices");
  std::vector<DeviceInfo> infos;
  for (uint32_t i = 0; i < count; ++i) infos.push_back(query_device(devices[i], i));
  const size_t chosen = select_device(infos, options.device_selector);
  ctx->physical_device_ = devices[chosen];
  ctx->info_ = infos[chosen];
  if (VK_API_VERSION_MINOR(ctx->info_.api_version) < 2 && VK_API_VERSION_MAJOR(ctx->info_.api_version) == 1) {
    throw Error(ErrorCode::missing_feature, ctx->info_.name + " supports Vulkan " +
                                                version_string(ctx->info_.api_version) + "; vidkv needs 1.2");
  }
  if (!ctx->info_.push_descriptor) {
    throw Error(ErrorCode::missing_feature, ctx->info_.name + " lacks VK_KHR_push_descriptor");
  }

  uint32_t family_count = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(ctx->physical_device_, &family_count, nullptr);
  std::vector<VkQueueFamilyProperties> families(family_count);
  vkGetPhysicalDeviceQueueFamilyProperties(ctx->physical_device_, &family_count, families.data());
  bool found = false;
  for (uint32_t f = 0; f < family_count && !found; ++f) {
    if (families[f].queueFlags & VK_QUEUE_COMPUTE_BIT) {
      ctx->queue_family_ = f;
      found = true;
    }
  }
  if (!found) throw Error(ErrorCode::missing_feature, ctx->info_.name + " has no compute queue");

  const float priority = 1.0f;
  VkDeviceQueueCreateInfo queue_info{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
  queue_info.queueFamilyIndex = ctx->queue_family_;
  queue_info.queueCount = 1;
  queue_info.pQueuePriorities = &priority;
  // Optional features are enabled when present so that later shaders may use them; the shaders of
  // this version need none of them (fp16 is handled in 32-bit words).
  VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
  f12.shaderFloat16 = ctx->info_.shader_float16;
  f12.shaderInt8 = ctx->info_.shader_int8;
  f12.storageBuffer8BitAccess = ctx->info_.storage_buffer_8bit;
  VkPhysicalDeviceVulkan11Features f11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
  f11.storageBuffer16BitAccess = ctx->info_.storage_buffer_16bit;
  f11.pNext = &f12;
  std::vector<const char*> extensions = {VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME};
  VkDeviceCreateInfo device_info{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
  device_info.pNext = &f11;
  device_info.queueCreateInfoCount = 1;
  device_info.pQueueCreateInfos = &queue_info;
  device_info.enabledExtensionCount = static_cast<uint32_t>(extensions.size());
  device_info.ppEnabledExtensionNames = extensions.data();
  check(vkCreateDevice(ctx->physical_device_, &device_info, nullptr, &ctx->device_), "vkCreateDevice");
  vkGetDeviceQueue(ctx->device_, ctx->queue_family_, 0, &ctx->queue_);
  ctx->timestamp_valid_bits_ = families[ctx->queue_family_].timestampValidBits;
  ctx->finish_setup();
  if (options.force_staging) ctx->unified_memory_ = false;
  return ctx;
}

std::shared_ptr<Context> Context::wrap(const ExternalDevice& external) {
  if (!external.instance || !external.physical_device || !external.device || !external.queue) {
    throw Error(ErrorCode::invalid_argument, "ExternalDevice needs instance, physical_device, device and queue");
  }
  load_loader(external.get_instance_proc_addr);
  load_instance(external.instance);
  std::shared_ptr<Context> ctx(new Context());
  ctx->owns_device_ = false;
  ctx->instance_ = external.instance;
  ctx->physical_device_ = external.physical_device;
  ctx->device_ = external.device;
  ctx->queue_ = external.queue;
  ctx->queue_family_ = external.queue_family;
  ctx->info_ = query_device(external.physical_device, 0);

  uint32_t family_count = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(ctx->physical_device_, &family_count, nullptr);
  std::vector<VkQueueFamilyProperties> families(family_count);
  vkGetPhysicalDeviceQueueFamilyProperties(ctx->physical_device_, &family_count, families.data());
  if (external.queue_family >= family_count ||
      !(families[external.queue_family].queueFlags & VK_QUEUE_COMPUTE_BIT)) {
    throw Error(ErrorCode::missing_feature, "queue family " + std::to_string(external.queue_family) +
                                                " of the external device has no compute support");
  }
  // Device-level commands of extensions that were not enabled are not returned (Vulkan 1.2+).
  if (vkGetDeviceProcAddr(external.device, "vkCmdPushDescriptorSetKHR") == nullptr) {
    throw Error(ErrorCode::missing_feature,
                "the external device was created without VK_KHR_push_descriptor, which vidkv needs");
  }
  ctx->timestamp_valid_bits_ = families[external.queue_family].timestampValidBits;
  ctx->finish_setup();
  return ctx;
}

void Context::finish_setup() {
  VkPhysicalDeviceMemoryProperties memory{};
  vkGetPhysicalDeviceMemoryProperties(physical_device_, &memory);
  // Unified when every device-local type is also host-visible (lavapipe, most integrated GPUs).
  bool any_device_local = false;
  bool all_host_visible = true;
  for (uint32_t i = 0; i < memory.memoryTypeCount; ++i) {
    const auto flags = memory.memoryTypes[i].propertyFlags;
    if (flags & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT) {
      any_device_local = true;
      if (!(flags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT)) all_host_visible = false;
    }
  }
  unified_memory_ = any_device_local && all_host_visible;
  VkPipelineCacheCreateInfo cache_info{VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
  check(vkCreatePipelineCache(device_, &cache_info, nullptr, &pipeline_cache_), "vkCreatePipelineCache");
}

Context::~Context() {
  // A pipeline cache is not referenced by the pipelines made from it, so it can go at any time;
  // an engine's device is never waited on here.
  if (device_ && pipeline_cache_) vkDestroyPipelineCache(device_, pipeline_cache_, nullptr);
  if (!owns_device_) return;
  if (device_) vkDeviceWaitIdle(device_);
  if (device_) vkDestroyDevice(device_, nullptr);
  if (messenger_) {
    if (auto destroy = destroy_messenger_for(instance_)) destroy(instance_, messenger_, nullptr);
  }
  if (instance_) vkDestroyInstance(instance_, nullptr);
}

size_t Context::validation_message_count() const {
  std::lock_guard lock(messages_mutex_);
  return messages_.size();
}

std::vector<ValidationMessage> Context::validation_messages() const {
  std::lock_guard lock(messages_mutex_);
  return messages_;
}

void Context::record_validation_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity, const char* text) {
  std::lock_guard lock(messages_mutex_);
  messages_.push_back({severity, text});
}

void Context::submit(const VkSubmitInfo& submit_info, VkFence fence) {
  std::lock_guard lock(queue_mutex_);
  check(vkQueueSubmit(queue_, 1, &submit_info, fence), "vkQueueSubmit");
}

}  // namespace vidkv::rt
