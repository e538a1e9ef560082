#include <string>

#include "vk.hpp"

namespace vidkv::rt {

const char* result_name(VkResult result) noexcept {
  switch (result) {
#define VIDKV_RESULT_CASE(r) case r: return #r;
    VIDKV_RESULT_CASE(VK_SUCCESS)
    VIDKV_RESULT_CASE(VK_NOT_READY)
    VIDKV_RESULT_CASE(VK_TIMEOUT)
    VIDKV_RESULT_CASE(VK_INCOMPLETE)
    VIDKV_RESULT_CASE(VK_ERROR_OUT_OF_HOST_MEMORY)
    VIDKV_RESULT_CASE(VK_ERROR_OUT_OF_DEVICE_MEMORY)
    VIDKV_RESULT_CASE(VK_ERROR_INITIALIZATION_FAILED)
    VIDKV_RESULT_CASE(VK_ERROR_DEVICE_LOST)
    VIDKV_RESULT_CASE(VK_ERROR_MEMORY_MAP_FAILED)
    VIDKV_RESULT_CASE(VK_ERROR_LAYER_NOT_PRESENT)
    VIDKV_RESULT_CASE(VK_ERROR_EXTENSION_NOT_PRESENT)
    VIDKV_RESULT_CASE(VK_ERROR_FEATURE_NOT_PRESENT)
    VIDKV_RESULT_CASE(VK_ERROR_INCOMPATIBLE_DRIVER)
    VIDKV_RESULT_CASE(VK_ERROR_TOO_MANY_OBJECTS)
    VIDKV_RESULT_CASE(VK_ERROR_FORMAT_NOT_SUPPORTED)
    VIDKV_RESULT_CASE(VK_ERROR_FRAGMENTED_POOL)
    VIDKV_RESULT_CASE(VK_ERROR_UNKNOWN)
    VIDKV_RESULT_CASE(VK_ERROR_OUT_OF_POOL_MEMORY)
#undef VIDKV_RESULT_CASE
    default: return "VkResult(other)";
  }
}

void check(VkResult result, const char* call) {
  if (result == VK_SUCCESS) return;
  std::string message = std::string(call) + " failed with " + result_name(result) + " (" +
                        std::to_string(static_cast<int>(result)) + ")";
  switch (result) {
    case VK_ERROR_DEVICE_LOST:
      throw Error(ErrorCode::device_lost, message);
    case VK_ERROR_OUT_OF_HOST_MEMORY:
    case VK_ERROR_OUT_OF_DEVICE_MEMORY:
      throw Error(ErrorCode::out_of_memory, message);
    default:
      throw Error(ErrorCode::vulkan_error, message);
  }
}

}  // namespace vidkv::rt
