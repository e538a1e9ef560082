#pragma once
// GPU timestamps around recorded work, for the profiling tools.
#include <cstdint>
#include <memory>
#include <vector>

#include <vulkan/vulkan_core.h>

#include "vidkv/export.hpp"

namespace vidkv::rt {

class Context;

class VIDKV_API TimestampQueries {
 public:
  // Throws Error(missing_feature) when the queue family has no timestamp support.
  TimestampQueries(std::shared_ptr<Context> context, uint32_t count);
  ~TimestampQueries();
  TimestampQueries(const TimestampQueries&) = delete;
  TimestampQueries& operator=(const TimestampQueries&) = delete;

  void reset(VkCommandBuffer cmd);
  // Writes timestamp `index` once all earlier work has finished.
  void write(VkCommandBuffer cmd, uint32_t index);
  // Milliseconds between two written timestamps; waits for the results.
  double elapsed_ms(uint32_t begin_index, uint32_t end_index) const;

 private:
  std::shared_ptr<Context> context_;
  VkQueryPool pool_ = VK_NULL_HANDLE;
  uint32_t count_ = 0;
};

}  // namespace vidkv::rt
