#pragma once
// `vidkv-cache compress`: a K/V dump (k_<layer>.npy, v_<layer>.npy) quantized by the cache on the
// default device and saved as one sequence.
#include <cstdint>
#include <string>

namespace vidkv::cache_tool {

struct CompressOptions {
  std::string kv_dir;
  std::string settings;  // a preset name or the original's configuration dictionary
  std::string output;
  uint32_t max_tokens = 0;  // 0: the dump's token count
  uint32_t q_heads = 0;     // 0: kv_heads x 7 at head_dim 128 (Qwen2-7B-style GQA), else kv_heads
};

// Prints a summary to stdout. Throws vidkv::Error for a bad dump, settings or device failure.
void compress(const CompressOptions& options);

}  // namespace vidkv::cache_tool
