#pragma once
// The only way library code reaches Vulkan: volk's function pointers, renamed with a vidkv_ prefix
// (cmake/VolkRename.cmake) so that none of them is exported under a Vulkan name.
#include <string>

#include "vidkv_volk_rename.h"
#include <volk.h>

#include "vidkv/error.hpp"

namespace vidkv::rt {

// Throws vidkv::Error naming `call` when result is not VK_SUCCESS: device_lost for
// VK_ERROR_DEVICE_LOST, out_of_memory for the two out-of-memory results, vulkan_error otherwise.
void check(VkResult result, const char* call);
const char* result_name(VkResult result) noexcept;

// Loads the Vulkan loader once per process (or starts from a caller's vkGetInstanceProcAddr) and
// the entry points of `instance`. Thread-safe.
void load_loader(PFN_vkGetInstanceProcAddr caller_entry = nullptr);
void load_instance(VkInstance instance);

}  // namespace vidkv::rt
