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

bool is_power_of_two(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

// What VK_EXT_subgroup_size_control offers on `device`, checked against a required size: throws
// Error naming the size, the device and what is missing.
struct SubgroupSizeControl {
  bool full_subgroups = false;
  uint32_t max_workgroup_subgroups = 0;
};

SubgroupSizeControl check_required_subgroup_size(VkPhysicalDevice device, const DeviceInfo& info, uint32_t size) {
  const std::string asked = "required subgroup size " + std::to_string(size);
  if (!info.subgroup_size_control) {
    throw Error(ErrorCode::missing_feature, asked + ": " + info.name +
                                                " lacks VK_EXT_subgroup_size_control, so its subgroup size (" +
                                                std::to_string(info.subgroup_size) + ") cannot be chosen");
  }
  if (size < info.min_subgroup_size || size > info.max_subgroup_size) {
    throw Error(ErrorCode::invalid_argument, asked + " is outside " + info.name + "'s range " +
                                                 std::to_string(info.min_subgroup_size) + ".." +
                                                 std::to_string(info.max_subgroup_size));
  }
  VkPhysicalDeviceSubgroupSizeControlFeaturesEXT features{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES_EXT};
  VkPhysicalDeviceFeatures2 features2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
  features2.pNext = &features;
  vkGetPhysicalDeviceFeatures2(device, &features2);
  VkPhysicalDeviceSubgroupSizeControlPropertiesEXT properties{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES_EXT};
  VkPhysicalDeviceProperties2 properties2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
  properties2.pNext = &properties;
  vkGetPhysicalDeviceProperties2(device, &properties2);
  if (!features.subgroupSizeControl) {
    throw Error(ErrorCode::missing_feature, asked + ": " + info.name + " lacks the subgroupSizeControl feature");
  }
  if (!(properties.requiredSubgroupSizeStages & VK_SHADER_STAGE_COMPUTE_BIT)) {
    throw Error(ErrorCode::missing_feature,
                asked + ": " + info.name + " does not accept a required subgroup size for compute shaders");
  }
  return {features.computeFullSubgroups == VK_TRUE, properties.maxComputeWorkgroupSubgroups};
}

// VK_KHR_pipeline_executable_properties with its pipelineExecutableInfo feature, or an Error
// naming the device and what it lacks.
void check_pipeline_executable_info(VkPhysicalDevice device, const DeviceInfo& info) {
  const std::string asked = "pipeline statistics: " + info.name;
  if (!has_device_extension(device, VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME)) {
    throw Error(ErrorCode::missing_feature, asked + " lacks VK_KHR_pipeline_executable_properties");
  }
  VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR features{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR};
  VkPhysicalDeviceFeatures2 features2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
  features2.pNext = &features;
  vkGetPhysicalDeviceFeatures2(device, &features2);
  if (!features.pipelineExecutableInfo) {
    throw Error(ErrorCode::missing_feature, asked + " lacks the pipelineExecutableInfo feature");
  }
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
  if (options.required_subgroup_size != 0 && !is_power_of_two(options.required_subgroup_size)) {
    throw Error(ErrorCode::invalid_argument, "required subgroup size " +
                                                 std::to_string(options.required_subgroup_size) +
                                                 " is not a power of two (0 leaves the choice to the driver)");
  }
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
  // Optional features are enabled when present (unless the options switch them off) so that later
  // shaders may use them; the shaders of this version need none of them (fp16 is handled in
  // 32-bit words), which conformance verifies with them off.
  EnabledFeatures& enabled = ctx->enabled_;
  enabled.known = true;
  const bool small_types = !options.disable_float16_int8;
  enabled.shader_float16 = small_types && ctx->info_.shader_float16;
  enabled.shader_int8 = small_types && ctx->info_.shader_int8;
  enabled.storage_buffer_16bit = small_types && ctx->info_.storage_buffer_16bit;
  enabled.storage_buffer_8bit = small_types && ctx->info_.storage_buffer_8bit;
  VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
  f12.shaderFloat16 = enabled.shader_float16;
  f12.shaderInt8 = enabled.shader_int8;
  f12.storageBuffer8BitAccess = enabled.storage_buffer_8bit;
  VkPhysicalDeviceVulkan11Features f11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
  f11.storageBuffer16BitAccess = enabled.storage_buffer_16bit;
  f11.pNext = &f12;
  std::vector<const char*> extensions = {VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME};
  // A required subgroup size goes through the extension even on Vulkan 1.3 devices: the instance
  // asks for 1.2, so the device's 1.3 core features are not ours to enable.
  VkPhysicalDeviceSubgroupSizeControlFeaturesEXT size_control{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES_EXT};
  if (options.required_subgroup_size != 0) {
    const SubgroupSizeControl control =
        check_required_subgroup_size(ctx->physical_device_, ctx->info_, options.required_subgroup_size);
    size_control.subgroupSizeControl = VK_TRUE;
    size_control.computeFullSubgroups = control.full_subgroups ? VK_TRUE : VK_FALSE;
    f12.pNext = &size_control;
    extensions.push_back(VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
    enabled.subgroup_size_control = true;
    enabled.compute_full_subgroups = control.full_subgroups;
    enabled.required_subgroup_size = options.required_subgroup_size;
    enabled.max_compute_workgroup_subgroups = control.max_workgroup_subgroups;
  }
  VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR executable_info{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR};
  if (options.capture_pipeline_statistics) {
    check_pipeline_executable_info(ctx->physical_device_, ctx->info_);
    executable_info.pipelineExecutableInfo = VK_TRUE;
    executable_info.pNext = f11.pNext;
    f11.pNext = &executable_info;
    extensions.push_back(VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME);
    enabled.pipeline_statistics = true;
  }
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
  if (device_ && queue_used_) vkDeviceWaitIdle(device_);
  if (device_) vkDestroyDevice(device_, nullptr);
  if (messenger_) {
    if (auto destroy = destroy_messenger_for(instance_)) destroy(instance_, messenger_, nullptr);
  }
  if (instance_) vkDestroyInstance(instance_, nullptr);
}

uint32_t Context::effective_subgroup_size() const {
  if (enabled_.required_subgroup_size != 0) return enabled_.required_subgroup_size;
  if (info_.min_subgroup_size == info_.max_subgroup_size && info_.subgroup_size == info_.min_subgroup_size) {
    return info_.subgroup_size;
  }
  return 0;
}

std::vector<PipelineRecord> Context::pipeline_records() const {
  std::lock_guard lock(pipelines_mutex_);
  return pipeline_records_;
}

void Context::record_pipeline(PipelineRecord record) {
  std::lock_guard lock(pipelines_mutex_);
  // One record per configuration, so a long-lived context that makes the same pipelines again
  // (a new Cache, a new GpuQuantizer) does not grow.
  for (const auto& r : pipeline_records_) {
    if (r.name == record.name && r.specialization == record.specialization) return;
  }
  pipeline_records_.push_back(std::move(record));
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
  queue_used_ = true;
  check(vkQueueSubmit(queue_, 1, &submit_info, fence), "vkQueueSubmit");
}

}  // namespace vidkv::rt
