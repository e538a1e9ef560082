#pragma once
// What vidkv-info prints and device selection reads: one record per Vulkan physical device.
#include <cstdint>
#include <string>
#include <vector>

#include <vulkan/vulkan_core.h>

#include "vidkv/export.hpp"

namespace vidkv::rt {

enum class DeviceType { discrete, integrated, virtual_gpu, cpu, other };
VIDKV_API const char* device_type_name(DeviceType type) noexcept;  // "discrete", "cpu", ...

struct DeviceInfo {
  uint32_t index = 0;
  std::string name;
  DeviceType type = DeviceType::other;
  uint32_t vendor_id = 0;
  uint32_t device_id = 0;
  uint32_t api_version = 0;
  uint32_t driver_version = 0;
  std::string driver_name;  // VkPhysicalDeviceDriverProperties, e.g. "llvmpipe", "NVIDIA"
  std::string driver_info;  // e.g. "Mesa 22.3.6 (LLVM 15.0.6)"
  uint32_t subgroup_size = 0;
  uint32_t min_subgroup_size = 0;  // from VK_EXT_subgroup_size_control; equal to subgroup_size
  uint32_t max_subgroup_size = 0;  // when the extension is absent
  bool subgroup_size_control = false;
  bool shader_float16 = false;
  bool shader_int8 = false;
  bool storage_buffer_16bit = false;
  bool storage_buffer_8bit = false;
  bool push_descriptor = false;
  uint32_t max_shared_memory = 0;
  uint32_t max_workgroup_invocations = 0;
  uint32_t max_workgroup_size[3] = {0, 0, 0};
  uint32_t max_push_constants = 0;
  uint64_t min_storage_buffer_offset_alignment = 0;
  uint64_t max_storage_buffer_range = 0;
  float timestamp_period_ns = 0;
  bool compute_timestamps = false;
  uint64_t device_local_bytes = 0;  // largest device-local heap
  // Compute units (AMD CUs, NVIDIA SMs, Arm shader cores) where the device reports them through
  // VK_AMD_shader_core_properties, VK_NV_shader_sm_builtins or VK_ARM_shader_core_builtins (Vulkan
  // core does not); 0 when unknown.
  uint32_t compute_units = 0;
};

// Formats VK_MAKE_API_VERSION numbers as "1.3.230".
VIDKV_API std::string version_string(uint32_t version);

// Every physical device visible through a new instance (the loader and drivers are found by Volk).
VIDKV_API std::vector<DeviceInfo> enumerate_devices();

}  // namespace vidkv::rt
