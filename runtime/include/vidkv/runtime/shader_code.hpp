#pragma once
// SPIR-V embedded in the library at build time (cmake/CompileShaders.cmake).
#include <cstddef>
#include <cstdint>

namespace vidkv {

struct ShaderCode {
  const char* name;
  const uint32_t* words;
  size_t word_count;
};

}  // namespace vidkv
