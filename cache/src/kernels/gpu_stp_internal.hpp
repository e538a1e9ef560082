#pragma once
// Helpers shared by gpu_stp.cpp (scores, selection) and gpu_stp_values.cpp (token split).
#include <cstdint>
#include <string>

#include "vidkv/error.hpp"
#include "vidkv/runtime/buffer.hpp"
#include "vidkv/runtime/context.hpp"

namespace vidkv::stp_detail {

// Bytes of `elements` values of `element_bytes` each, rounded up to whole 32-bit words (the
// shaders read and write fp16 data two halves per word).
inline uint64_t word_bytes(uint64_t elements, uint32_t element_bytes) { return (elements * element_bytes + 3) / 4 * 4; }

// A caller's buffer view: not null, large enough, offset aligned for a storage-buffer binding.
inline void require_view(const rt::Context& ctx, const rt::BufferView& view, uint64_t bytes, const char* what) {
  if (view.buffer == VK_NULL_HANDLE) {
    throw Error(ErrorCode::invalid_argument, std::string(what) + " buffer is VK_NULL_HANDLE");
  }
  if (view.size < bytes) {
    throw Error(ErrorCode::buffer_too_small, std::string(what) + " buffer holds " + std::to_string(view.size) +
                                                 " bytes; " + std::to_string(bytes) + " are needed");
  }
  const uint64_t align = ctx.info().min_storage_buffer_offset_alignment;
  if (align > 1 && view.offset % align != 0) {
    throw Error(ErrorCode::invalid_argument, std::string(what) + " buffer offset " + std::to_string(view.offset) +
                                                 " is not a multiple of minStorageBufferOffsetAlignment " +
                                                 std::to_string(align));
  }
}

// Index arithmetic in the shaders is 32-bit.
inline void require_addressable(uint64_t elements, const char* what) {
  if (elements > 0xffffffffull) {
    throw Error(ErrorCode::invalid_argument, std::string(what) + " spans " + std::to_string(elements) +
                                                 " elements; at most 2^32 - 1 are addressed by one call");
  }
}

}  // namespace vidkv::stp_detail
