#pragma once
// Command recording. vidkv either records into its own command buffer and submits and waits
// (CommandRunner), or records into a caller's command buffer and submits nothing. In the second
// case the caller must (1) make its writes of vidkv's input buffers visible to compute-shader reads
// before the recorded work (a barrier from its stage/access to COMPUTE_SHADER/SHADER_READ), and
// (2) put a barrier from COMPUTE_SHADER/SHADER_WRITE to its own stage/access before it reads
// vidkv's outputs. Between its own dispatches vidkv records the barriers it needs.
#include <functional>
#include <memory>
#include <vector>

#include <vulkan/vulkan_core.h>

#include "vidkv/export.hpp"
#include "vidkv/runtime/buffer.hpp"

namespace vidkv::rt {

class Context;

// Its command pool, command buffer and fence are made on the first run(), not at construction: a
// class that owns a runner can then be built on a device that only creates pipelines (RADV's null
// devices for vidkv-info --pipelines, where vkCreateFence fails).
class VIDKV_API CommandRunner {
 public:
  explicit CommandRunner(std::shared_ptr<Context> context);
  ~CommandRunner();
  CommandRunner(const CommandRunner&) = delete;
  CommandRunner& operator=(const CommandRunner&) = delete;

  // Records with `record`, submits on the context's queue and waits for completion. Throws
  // Error(device_lost) and the like, naming the failing call.
  void run(const std::function<void(VkCommandBuffer)>& record);
  // Whether the pool, command buffer and fence exist yet (after the first run()).
  bool ready() const { return fence_ != VK_NULL_HANDLE; }

 private:
  void create_objects();

  std::shared_ptr<Context> context_;
  VkCommandPool pool_ = VK_NULL_HANDLE;
  VkCommandBuffer cmd_ = VK_NULL_HANDLE;
  VkFence fence_ = VK_NULL_HANDLE;
};

// Records a buffer-to-buffer copy (the profiling tools measure copy bandwidth with it).
VIDKV_API void record_copy(VkCommandBuffer cmd, const BufferView& src, const BufferView& dst, VkDeviceSize bytes);
// One copy command of several regions between two buffers; offsets are relative to the views and
// every region must lie inside both (checked, Error(buffer_too_small)).
struct CopyRegion {
  VkDeviceSize src_offset = 0, dst_offset = 0, bytes = 0;
};
VIDKV_API void record_copy_regions(VkCommandBuffer cmd, const BufferView& src, const BufferView& dst,
                                   const std::vector<CopyRegion>& regions);
// Fills the first `bytes` (a multiple of 4) of a view with a 32-bit pattern.
VIDKV_API void record_fill(VkCommandBuffer cmd, const BufferView& view, VkDeviceSize bytes, uint32_t pattern);

// Makes compute-shader writes visible to later compute-shader reads and writes and transfers.
VIDKV_API void compute_to_compute_barrier(VkCommandBuffer cmd);
// Makes transfer writes (copies, fills) visible to compute-shader reads.
VIDKV_API void transfer_to_compute_barrier(VkCommandBuffer cmd);
// Makes compute-shader writes visible to transfers (copies back to the host).
VIDKV_API void compute_to_transfer_barrier(VkCommandBuffer cmd);
// Orders everything after all earlier compute and transfer work, and makes its writes visible to
// both (an operation that reuses scratch buffers opens with it).
VIDKV_API void compute_transfer_barrier(VkCommandBuffer cmd);

}  // namespace vidkv::rt
