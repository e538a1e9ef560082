#pragma once
// Internal: reading a physical device's properties and choosing one.
#include <string>
#include <vector>

#include "vidkv/runtime/device_info.hpp"
#include "vk.hpp"

namespace vidkv::rt {

DeviceInfo query_device(VkPhysicalDevice device, uint32_t index);
bool has_device_extension(VkPhysicalDevice device, const char* name);
// Creates a bare instance (API 1.2+, optional validation layer and debug-utils extension, and with
// it optionally the layer's synchronization validation).
VkInstance create_instance(bool validation, bool synchronization_validation = false);
// Picks the index into `devices` that `selector` names (an index or a case-insensitive name
// substring) or, when empty, the preferred type: discrete, integrated, virtual, CPU, other.
// Throws Error(no_device) naming the selector and the devices seen when nothing matches.
size_t select_device(const std::vector<DeviceInfo>& devices, const std::string& selector);

}  // namespace vidkv::rt
