#include <cstring>
#include <vector>

#include "device_query.hpp"

namespace vidkv::rt {

const char* device_type_name(DeviceType type) noexcept {
  switch (type) {
    case DeviceType::discrete: return "discrete";
    case DeviceType::integrated: return "integrated";
    case DeviceType::virtual_gpu: return "virtual";
    case DeviceType::cpu: return "cpu";
    case DeviceType::other: return "other";
  }
  return "other";
}

std::string version_string(uint32_t version) {
  return std::to_string(VK_API_VERSION_MAJOR(version)) + "." +
         std::to_string(VK_API_VERSION_MINOR(version)) + "." +
         std::to_string(VK_API_VERSION_PATCH(version));
}

bool has_device_extension(VkPhysicalDevice device, const char* name) {
  uint32_t count = 0;
  check(vkEnumerateDeviceExtensionProperties(device, nullptr, &count, nullptr),
        "vkEnumerateDeviceExtensionProperties");
  std::vector<VkExtensionProperties> extensions(count);
  check(vkEnumerateDeviceExtensionProperties(device, nullptr, &count, extensions.data()),
        "vkEnumerateDeviceExtensionProperties");
  for (const auto& e : extensions) {
    if (std::strcmp(e.extensionName, name) == 0) return true;
  }
  return false;
}

static DeviceType to_device_type(VkPhysicalDeviceType type) {
  switch (type) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return DeviceType::discrete;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return DeviceType::integrated;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return DeviceType::virtual_gpu;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return DeviceType::cpu;
    default: return DeviceType::other;
  }
}

// Compute units from whichever vendor extension reports them (see DeviceInfo::compute_units).
static uint32_t query_compute_units(VkPhysicalDevice device) {
  VkPhysicalDeviceProperties2 props{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
  if (has_device_extension(device, VK_AMD_SHADER_CORE_PROPERTIES_EXTENSION_NAME)) {
    VkPhysicalDeviceShaderCorePropertiesAMD amd{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_CORE_PROPERTIES_AMD};
    props.pNext = &amd;
    vkGetPhysicalDeviceProperties2(device, &props);
    return amd.shaderEngineCount * amd.shaderArraysPerEngineCount * amd.computeUnitsPerShaderArray;
  }
  if (has_device_extension(device, VK_NV_SHADER_SM_BUILTINS_EXTENSION_NAME)) {
    VkPhysicalDeviceShaderSMBuiltinsPropertiesNV nv{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_SM_BUILTINS_PROPERTIES_NV};
    props.pNext = &nv;
    vkGetPhysicalDeviceProperties2(device, &props);
    return nv.shaderSMCount;
  }
  if (has_device_extension(device, VK_ARM_SHADER_CORE_BUILTINS_EXTENSION_NAME)) {
    VkPhysicalDeviceShaderCoreBuiltinsPropertiesARM arm{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_CORE_BUILTINS_PROPERTIES_ARM};
    props.pNext = &arm;
    vkGetPhysicalDeviceProperties2(device, &props);
    return arm.shaderCoreCount;
  }
  return 0;
}

DeviceInfo query_device(VkPhysicalDevice device, uint32_t index) {
  VkPhysicalDeviceDriverProperties driver{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
  VkPhysicalDeviceSubgroupProperties subgroup{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
  VkPhysicalDeviceSubgroupSizeControlPropertiesEXT size_control{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES_EXT};
  const bool has_size_control = has_device_extension(device, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
  VkPhysicalDeviceProperties2 props{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
  props.pNext = &driver;
  driver.pNext = &subgroup;
  if (has_size_control) subgroup.pNext = &size_control;
  vkGetPhysicalDeviceProperties2(device, &props);

  VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
  VkPhysicalDeviceVulkan11Features f11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
  f11.pNext = &f12;
  VkPhysicalDeviceFeatures2 features{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
  features.pNext = &f11;
  vkGetPhysicalDeviceFeatures2(device, &features);

  VkPhysicalDeviceMemoryProperties memory{};
  vkGetPhysicalDeviceMemoryProperties(device, &memory);

  const VkPhysicalDeviceLimits& limits = props.properties.limits;
  DeviceInfo info;
  info.index = index;
  info.name = props.properties.deviceName;
  info.type = to_device_type(props.properties.deviceType);
  info.vendor_id = props.properties.vendorID;
  info.device_id = props.properties.deviceID;
  info.api_version = props.properties.apiVersion;
  info.driver_version = props.properties.driverVersion;
  info.driver_name = driver.driverName;
  info.driver_info = driver.driverInfo;
  info.subgroup_size = subgroup.subgroupSize;
  info.subgroup_size_control = has_size_control;
  info.min_subgroup_size = has_size_control ? size_control.minSubgroupSize : subgroup.subgroupSize;
  info.max_subgroup_size = has_size_control ? size_control.maxSubgroupSize : subgroup.subgroupSize;
  info.shader_float16 = f12.shaderFloat16 == VK_TRUE;
  info.shader_int8 = f12.shaderInt8 == VK_TRUE;
  info.storage_buffer_16bit = f11.storageBuffer16BitAccess == VK_TRUE;
  info.storage_buffer_8bit = f12.storageBuffer8BitAccess == VK_TRUE;
  info.push_descriptor = has_device_extension(device, VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME);
  info.max_shared_memory = limits.maxComputeSharedMemorySize;
  info.max_workgroup_invocations = limits.maxComputeWorkGroupInvocations;
  for (int i = 0; i < 3; ++i) info.max_workgroup_size[i] = limits.maxComputeWorkGroupSize[i];
  info.max_push_constants = limits.maxPushConstantsSize;
  info.min_storage_buffer_offset_alignment = limits.minStorageBufferOffsetAlignment;
  info.max_storage_buffer_range = limits.maxStorageBufferRange;
  info.timestamp_period_ns = limits.timestampPeriod;
  info.compute_timestamps = limits.timestampComputeAndGraphics == VK_TRUE;
  for (uint32_t h = 0; h < memory.memoryHeapCount; ++h) {
    if ((memory.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
        memory.memoryHeaps[h].size > info.device_local_bytes) {
      info.device_local_bytes = memory.memoryHeaps[h].size;
    }
  }
  info.compute_units = query_compute_units(device);
  return info;
}

std::vector<DeviceInfo> enumerate_devices() {
  load_loader();
  VkInstance instance = create_instance(false);
  std::vector<DeviceInfo> result;
  try {
    uint32_t count = 0;
    check(vkEnumeratePhysicalDevices(instance, &count, nullptr), "vkEnumeratePhysicalDevices");
    std::vector<VkPhysicalDevice> devices(count);
    check(vkEnumeratePhysicalDevices(instance, &count, devices.data()), "vkEnumeratePhysicalDevices");
    for (uint32_t i = 0; i < count; ++i) result.push_back(query_device(devices[i], i));
  } catch (...) {
    vkDestroyInstance(instance, nullptr);
    throw;
  }
  vkDestroyInstance(instance, nullptr);
  return result;
}

}  // namespace vidkv::rt
