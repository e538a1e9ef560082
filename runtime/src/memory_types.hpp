#pragma once
#include "vk.hpp"

namespace vidkv::rt {

// Index of the first memory type allowed by `type_bits` that has all of `required` and, among
// those, preferably all of `preferred`; UINT32_MAX when none has `required`.
uint32_t find_memory_type(VkPhysicalDevice device, uint32_t type_bits, VkMemoryPropertyFlags required,
                          VkMemoryPropertyFlags preferred);

}  // namespace vidkv::rt
