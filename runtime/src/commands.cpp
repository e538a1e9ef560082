#include "vidkv/runtime/commands.hpp"

#include <string>

#include "vidkv/runtime/context.hpp"
#include "vk.hpp"

namespace vidkv::rt {

CommandRunner::CommandRunner(std::shared_ptr<Context> context) : context_(std::move(context)) {}

void CommandRunner::create_objects() {
  VkDevice device = context_->device();
  VkCommandPoolCreateInfo pool_info{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
  pool_info.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
  pool_info.queueFamilyIndex = context_->queue_family();
  check(vkCreateCommandPool(device, &pool_info, nullptr, &pool_), "vkCreateCommandPool");
  VkCommandBufferAllocateInfo alloc{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  alloc.commandPool = pool_;
  alloc.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  alloc.commandBufferCount = 1;
  VkFenceCreateInfo fence_info{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  VkResult r = vkAllocateCommandBuffers(device, &alloc, &cmd_);
  if (r == VK_SUCCESS) r = vkCreateFence(device, &fence_info, nullptr, &fence_);
  if (r != VK_SUCCESS) {
    // Nothing half-made stays behind, so a later run() tries again from the start.
    vkDestroyCommandPool(device, pool_, nullptr);
    pool_ = VK_NULL_HANDLE;
    cmd_ = VK_NULL_HANDLE;
    fence_ = VK_NULL_HANDLE;
    check(r, "vkAllocateCommandBuffers/vkCreateFence");
  }
}

CommandRunner::~CommandRunner() {
  if (fence_) vkDestroyFence(context_->device(), fence_, nullptr);
  if (pool_) vkDestroyCommandPool(context_->device(), pool_, nullptr);
}

void CommandRunner::run(const std::function<void(VkCommandBuffer)>& record) {
  if (!ready()) create_objects();
  VkDevice device = context_->device();
  check(vkResetCommandBuffer(cmd_, 0), "vkResetCommandBuffer");
  VkCommandBufferBeginInfo begin{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  begin.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
  check(vkBeginCommandBuffer(cmd_, &begin), "vkBeginCommandBuffer");
  try {
    record(cmd_);
  } catch (...) {
    vkEndCommandBuffer(cmd_);
    throw;
  }
  // Everything written on the device becomes visible to the host once the fence signals.
  VkMemoryBarrier to_host{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  to_host.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
  to_host.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
  vkCmdPipelineBarrier(cmd_, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1,
                       &to_host, 0, nullptr, 0, nullptr);
  check(vkEndCommandBuffer(cmd_), "vkEndCommandBuffer");
  check(vkResetFences(device, 1, &fence_), "vkResetFences");
  VkSubmitInfo submit{VK_STRUCTURE_TYPE_SUBMIT_INFO};
  submit.commandBufferCount = 1;
  submit.pCommandBuffers = &cmd_;
  context_->submit(submit, fence_);
  check(vkWaitForFences(device, 1, &fence_, VK_TRUE, UINT64_MAX), "vkWaitForFences");
}

static void memory_barrier(VkCommandBuffer cmd, VkPipelineStageFlags src_stage, VkAccessFlags src_access,
                           VkPipelineStageFlags dst_stage, VkAccessFlags dst_access) {
  VkMemoryBarrier barrier{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  barrier.srcAccessMask = src_access;
  barrier.dstAccessMask = dst_access;
  vkCmdPipelineBarrier(cmd, src_stage, dst_stage, 0, 1, &barrier, 0, nullptr, 0, nullptr);
}

void record_copy(VkCommandBuffer cmd, const BufferView& src, const BufferView& dst, VkDeviceSize bytes) {
  if (bytes > src.size || bytes > dst.size) {
    throw Error(ErrorCode::buffer_too_small, "copy of " + std::to_string(bytes) + " bytes exceeds a view");
  }
  VkBufferCopy region{src.offset, dst.offset, bytes};
  vkCmdCopyBuffer(cmd, src.buffer, dst.buffer, 1, &region);
}

void record_copy_regions(VkCommandBuffer cmd, const BufferView& src, const BufferView& dst,
                         const std::vector<CopyRegion>& regions) {
  if (regions.empty()) return;
  std::vector<VkBufferCopy> copies;
  copies.reserve(regions.size());
  for (const CopyRegion& r : regions) {
    if (r.src_offset + r.bytes > src.size || r.dst_offset + r.bytes > dst.size) {
      throw Error(ErrorCode::buffer_too_small, "copy region of " + std::to_string(r.bytes) + " bytes at " +
                                                   std::to_string(r.src_offset) + " -> " +
                                                   std::to_string(r.dst_offset) + " exceeds a view");
    }
    copies.push_back({src.offset + r.src_offset, dst.offset + r.dst_offset, r.bytes});
  }
  vkCmdCopyBuffer(cmd, src.buffer, dst.buffer, uint32_t(copies.size()), copies.data());
}

void record_fill(VkCommandBuffer cmd, const BufferView& view, VkDeviceSize bytes, uint32_t pattern) {
  if (bytes > view.size || bytes % 4 != 0 || view.offset % 4 != 0) {
    throw Error(ErrorCode::invalid_argument, "fill of " + std::to_string(bytes) + " bytes at offset " +
                                                 std::to_string(view.offset) + " (a view of " +
                                                 std::to_string(view.size) + " bytes; 4-byte multiples)");
  }
  if (bytes > 0) vkCmdFillBuffer(cmd, view.buffer, view.offset, bytes, pattern);
}

void compute_to_compute_barrier(VkCommandBuffer cmd) {
  memory_barrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT,
                 VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                 VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT);
}

void transfer_to_compute_barrier(VkCommandBuffer cmd) {
  memory_barrier(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT,
                 VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
}

void compute_to_transfer_barrier(VkCommandBuffer cmd) {
  memory_barrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT,
                 VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_READ_BIT);
}

void compute_transfer_barrier(VkCommandBuffer cmd) {
  memory_barrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                 VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                 VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                 VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                     VK_ACCESS_TRANSFER_WRITE_BIT);
}

}  // namespace vidkv::rt
