#pragma once
// Internal helpers shared by the GPU operations of cache/.
#include <cstdint>
#include <string>
#include <vector>

#include "shader_registry.hpp"
#include "vidkv/error.hpp"
#include "vidkv/runtime/buffer.hpp"
#include "vidkv/runtime/pipeline.hpp"

namespace vidkv::gpu {

constexpr uint32_t kWorkgroupSize = 64;

// The embedded shader of that name; Error(invalid_argument) if the build did not embed it.
inline const ShaderCode& shader(const char* name) {
  const ShaderCode* code = shaders::find(name);
  if (code == nullptr) throw Error(ErrorCode::invalid_argument, std::string("no embedded shader ") + name);
  return *code;
}

// A pipeline description: workgroup size as constant 0, then `constants` as 1, 2, ...
inline rt::PipelineDesc pipeline(const char* name, std::vector<uint32_t> constants, uint32_t buffers,
                                 uint32_t push_bytes) {
  rt::PipelineDesc desc;
  desc.shader = &shader(name);
  desc.specialization = {kWorkgroupSize};
  desc.specialization.insert(desc.specialization.end(), constants.begin(), constants.end());
  desc.buffer_count = buffers;
  desc.push_constant_bytes = push_bytes;
  return desc;
}

}  // namespace vidkv::gpu
