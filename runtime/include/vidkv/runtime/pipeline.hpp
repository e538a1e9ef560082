#pragma once
// Compute pipelines from embedded SPIR-V. Buffers are bound with push descriptors, so recording a
// dispatch leaves nothing behind that must outlive the command buffer except the pipeline itself.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include <vulkan/vulkan_core.h>

#include "vidkv/export.hpp"
#include "vidkv/runtime/buffer.hpp"
#include "vidkv/runtime/shader_code.hpp"

namespace vidkv::rt {

class Context;

struct PipelineDesc {
  const ShaderCode* shader = nullptr;
  std::vector<uint32_t> specialization;  // constant_id i gets specialization[i] (32-bit each)
  uint32_t buffer_count = 0;             // storage buffers at bindings 0..buffer_count-1
  uint32_t push_constant_bytes = 0;
};

class VIDKV_API ComputePipeline {
 public:
  ComputePipeline(std::shared_ptr<Context> context, const PipelineDesc& desc);
  ~ComputePipeline();
  ComputePipeline(const ComputePipeline&) = delete;
  ComputePipeline& operator=(const ComputePipeline&) = delete;

  // Binds the pipeline and the buffers, pushes the constants and dispatches.
  void dispatch(VkCommandBuffer cmd, std::span<const BufferView> buffers, const void* push_constants,
                uint32_t groups_x, uint32_t groups_y = 1, uint32_t groups_z = 1) const;
  const std::string& name() const { return name_; }

 private:
  void release();

  std::shared_ptr<Context> context_;
  std::string name_;
  uint32_t buffer_count_ = 0;
  uint32_t push_constant_bytes_ = 0;
  VkShaderModule module_ = VK_NULL_HANDLE;
  VkDescriptorSetLayout set_layout_ = VK_NULL_HANDLE;
  VkPipelineLayout layout_ = VK_NULL_HANDLE;
  VkPipeline pipeline_ = VK_NULL_HANDLE;
};

// A pipeline made ahead of use (the prepare_pipelines functions of the GPU classes), named for
// reports; shader and specialization find its PipelineRecord on the context.
struct PreparedPipeline {
  std::string label;                     // shader and what distinguishes it, e.g. attention_vidkv[trits]
  std::string shader;                    // PipelineRecord::name
  std::vector<uint32_t> specialization;  // PipelineRecord::specialization
};

// Pipelines built once per (shader, specialization) and kept for the life of the cache.
class VIDKV_API PipelineSet {
 public:
  explicit PipelineSet(std::shared_ptr<Context> context) : context_(std::move(context)) {}
  const ComputePipeline& get(const PipelineDesc& desc);
  // get(desc), reported as `label`.
  PreparedPipeline prepare(const std::string& label, const PipelineDesc& desc);

 private:
  std::shared_ptr<Context> context_;
  std::mutex mutex_;
  std::map<std::pair<std::string, std::vector<uint32_t>>, std::unique_ptr<ComputePipeline>> pipelines_;
};

// Number of workgroups of `group_size` invocations needed to cover `count` items.
inline uint32_t workgroups_for(uint64_t count, uint32_t group_size) {
  return static_cast<uint32_t>((count + group_size - 1) / group_size);
}

// Workgroups for a grid-stride shader (one that loops by gl_NumWorkGroups.x * local size): capped
// at 65535, the x count every Vulkan device accepts, however many items there are.
inline uint32_t grid_workgroups(uint64_t count, uint32_t group_size) {
  const uint64_t groups = (count + group_size - 1) / group_size;
  return static_cast<uint32_t>(groups < 65535 ? (groups == 0 ? 1 : groups) : 65535);
}

}  // namespace vidkv::rt
