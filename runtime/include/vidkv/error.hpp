#pragma once
// The single error type of vidkv. Every failure (bad argument, missing device or feature, Vulkan
// error) is reported as a vidkv::Error carrying a code and a message that names the bad value.
#include <stdexcept>
#include <string>

#include "vidkv/export.hpp"

namespace vidkv {

enum class ErrorCode {
  invalid_argument,    // a size, index or option outside what is accepted
  unsupported_bits,    // a bit width that the chosen path does not implement
  bad_group_size,      // group size that is not accepted or does not divide the axis
  buffer_too_small,    // a caller's buffer cannot hold what the operation reads or writes
  no_device,           // no Vulkan device, or none matching VIDKV_DEVICE
  missing_feature,     // the device lacks an extension, feature or layer that is required
  vulkan_error,        // a Vulkan call failed; the message names the call and the VkResult
  device_lost,         // VK_ERROR_DEVICE_LOST
  out_of_memory,       // host or device memory exhausted
  io_error,            // a file could not be read or written
  corrupt_data,        // a file or buffer does not hold what its header claims
};

VIDKV_API const char* error_code_name(ErrorCode code) noexcept;

class VIDKV_API Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message);
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace vidkv
