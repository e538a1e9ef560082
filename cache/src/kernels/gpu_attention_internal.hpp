#pragma once
// Internal: what gpu_attention.cpp (recording) and gpu_attention_pipelines.cpp (preparation) share.
#include <cstdint>
#include <string>

#include "vidkv/gpu_attention.hpp"

namespace vidkv {

// VALUE_MODE of attention_vidkv*.comp for a segment of this format with that many protected tokens.
uint32_t value_mode(ValueFormat format, uint32_t protected_tokens);

// Throws Error naming `name` when the view has no buffer or fewer than `bytes` bytes.
void attention_check_view(const rt::BufferView& view, uint64_t bytes, const std::string& name);

}  // namespace vidkv
