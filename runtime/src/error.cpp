#include "vidkv/error.hpp"

namespace vidkv {

const char* error_code_name(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::invalid_argument: return "invalid_argument";
    case ErrorCode::unsupported_bits: return "unsupported_bits";
    case ErrorCode::bad_group_size: return "bad_group_size";
    case ErrorCode::buffer_too_small: return "buffer_too_small";
    case ErrorCode::no_device: return "no_device";
    case ErrorCode::missing_feature: return "missing_feature";
    case ErrorCode::vulkan_error: return "vulkan_error";
    case ErrorCode::device_lost: return "device_lost";
    case ErrorCode::out_of_memory: return "out_of_memory";
    case ErrorCode::io_error: return "io_error";
    case ErrorCode::corrupt_data: return "corrupt_data";
  }
  return "unknown";
}

Error::Error(ErrorCode code, const std::string& message)
    : std::runtime_error(std::string(error_code_name(code)) + ": " + message), code_(code) {}

}  // namespace vidkv
