#include "vidkv/runtime/pipeline.hpp"

#include <map>
#include <vector>

#include "vidkv/runtime/context.hpp"
#include "vidkv/runtime/profiler.hpp"
#include "pipeline_executables.hpp"
#include "vk.hpp"

namespace vidkv::rt {

namespace {

// What pipeline creation needs to know of a module: its workgroup size after specialization (a
// required subgroup size must divide the width for full subgroups, and the workgroup must fit in
// maxComputeWorkgroupSubgroups subgroups) and its declared capabilities (for coverage reports).
struct ModuleFacts {
  uint32_t local_size[3] = {0, 0, 0};
  std::vector<uint32_t> capabilities;
};

ModuleFacts read_module(const ShaderCode& code, const std::vector<uint32_t>& specialization) {
  constexpr uint32_t kOpCapability = 17, kOpExecutionMode = 16, kOpExecutionModeId = 331, kOpDecorate = 71;
  constexpr uint32_t kOpConstant = 43, kOpConstantComposite = 44, kOpSpecConstant = 50,
                     kOpSpecConstantComposite = 51;
  constexpr uint32_t kModeLocalSize = 17, kModeLocalSizeId = 38, kDecorationBuiltIn = 11, kDecorationSpecId = 1,
                     kBuiltInWorkgroupSize = 25;
  ModuleFacts facts;
  std::map<uint32_t, uint32_t> scalars, spec_ids;
  std::map<uint32_t, std::vector<uint32_t>> composites;
  uint32_t workgroup_size_id = 0;
  std::vector<uint32_t> local_size_ids;
  const uint32_t* w = code.words;
  for (size_t i = 5; i < code.word_count;) {
    const uint32_t count = w[i] >> 16, op = w[i] & 0xffffu;
    if (count == 0 || i + count > code.word_count) break;  // malformed: report what was read
    const uint32_t* a = w + i + 1;
    const uint32_t n = count - 1;
    if (op == kOpCapability && n >= 1) facts.capabilities.push_back(a[0]);
    if (op == kOpExecutionMode && n >= 5 && a[1] == kModeLocalSize) {
      for (int d = 0; d < 3; ++d) facts.local_size[d] = a[2 + d];
    }
    if (op == kOpExecutionModeId && n >= 5 && a[1] == kModeLocalSizeId) local_size_ids.assign(a + 2, a + 5);
    if (op == kOpDecorate && n >= 3 && a[1] == kDecorationBuiltIn && a[2] == kBuiltInWorkgroupSize) {
      workgroup_size_id = a[0];
    }
    if (op == kOpDecorate && n >= 3 && a[1] == kDecorationSpecId) spec_ids[a[0]] = a[2];
    if ((op == kOpConstant || op == kOpSpecConstant) && n >= 3) scalars[a[1]] = a[2];
    if ((op == kOpConstantComposite || op == kOpSpecConstantComposite) && n >= 2) {
      composites[a[1]].assign(a + 2, a + n);
    }
    i += count;
  }
  auto value_of = [&](uint32_t id) -> uint32_t {
    auto spec = spec_ids.find(id);
    if (spec != spec_ids.end() && spec->second < specialization.size()) return specialization[spec->second];
    auto it = scalars.find(id);
    return it == scalars.end() ? 0 : it->second;
  };
  // The WorkgroupSize built-in overrides LocalSize (that is how local_size_x_id is compiled).
  std::vector<uint32_t> ids = local_size_ids;
  if (workgroup_size_id != 0 && composites.count(workgroup_size_id)) ids = composites[workgroup_size_id];
  if (ids.size() == 3) {
    for (int d = 0; d < 3; ++d) facts.local_size[d] = value_of(ids[d]);
  }
  return facts;
}

}  // namespace

ComputePipeline::ComputePipeline(std::shared_ptr<Context> context, const PipelineDesc& desc)
    : context_(std::move(context)),
      name_(desc.shader ? desc.shader->name : ""),
      buffer_count_(desc.buffer_count),
      push_constant_bytes_(desc.push_constant_bytes) {
  if (desc.shader == nullptr) throw Error(ErrorCode::invalid_argument, "pipeline without a shader");
  if (desc.push_constant_bytes > context_->info().max_push_constants) {
    throw Error(ErrorCode::missing_feature, name_ + " needs " + std::to_string(desc.push_constant_bytes) +
                                                " bytes of push constants; the device offers " +
                                                std::to_string(context_->info().max_push_constants));
  }
  VkDevice device = context_->device();
  try {
    VkShaderModuleCreateInfo module_info{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
    module_info.codeSize = desc.shader->word_count * sizeof(uint32_t);
    module_info.pCode = desc.shader->words;
    check(vkCreateShaderModule(device, &module_info, nullptr, &module_), "vkCreateShaderModule");

    std::vector<VkDescriptorSetLayoutBinding> bindings(buffer_count_);
    for (uint32_t i = 0; i < buffer_count_; ++i) {
      bindings[i] = {i, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, nullptr};
    }
    VkDescriptorSetLayoutCreateInfo set_info{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
    set_info.flags = VK_DESCRIPTOR_SET_LAYOUT_CREATE_PUSH_DESCRIPTOR_BIT_KHR;
    set_info.bindingCount = buffer_count_;
    set_info.pBindings = bindings.data();
    check(vkCreateDescriptorSetLayout(device, &set_info, nullptr, &set_layout_), "vkCreateDescriptorSetLayout");

    VkPushConstantRange range{VK_SHADER_STAGE_COMPUTE_BIT, 0, push_constant_bytes_};
    VkPipelineLayoutCreateInfo layout_info{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
    layout_info.setLayoutCount = 1;
    layout_info.pSetLayouts = &set_layout_;
    layout_info.pushConstantRangeCount = push_constant_bytes_ > 0 ? 1 : 0;
    layout_info.pPushConstantRanges = &range;
    check(vkCreatePipelineLayout(device, &layout_info, nullptr, &layout_), "vkCreatePipelineLayout");

    std::vector<VkSpecializationMapEntry> entries(desc.specialization.size());
    for (uint32_t i = 0; i < entries.size(); ++i) {
      entries[i] = {i, static_cast<uint32_t>(i * sizeof(uint32_t)), sizeof(uint32_t)};
    }
    VkSpecializationInfo spec{static_cast<uint32_t>(entries.size()), entries.data(),
                              desc.specialization.size() * sizeof(uint32_t), desc.specialization.data()};
    VkComputePipelineCreateInfo info{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
    info.stage = {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO};
    info.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
    info.stage.module = module_;
    info.stage.pName = "main";
    info.stage.pSpecializationInfo = entries.empty() ? nullptr : &spec;
    info.layout = layout_;

    PipelineRecord record;
    record.name = name_;
    record.specialization = desc.specialization;
    const ModuleFacts facts = read_module(*desc.shader, desc.specialization);
    for (int d = 0; d < 3; ++d) record.local_size[d] = facts.local_size[d];
    record.capabilities = facts.capabilities;
    // The context's required subgroup size, where Vulkan allows it for this workgroup: at most
    // maxComputeWorkgroupSubgroups subgroups (else the driver's size, and the record says 0), and
    // full subgroups only when the width is a multiple of the size.
    const EnabledFeatures& features = context_->enabled_features();
    VkPipelineShaderStageRequiredSubgroupSizeCreateInfoEXT required{
        VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_REQUIRED_SUBGROUP_SIZE_CREATE_INFO_EXT};
    const uint32_t size = features.required_subgroup_size;
    const uint64_t invocations = uint64_t(facts.local_size[0]) * facts.local_size[1] * facts.local_size[2];
    if (size != 0 && invocations > 0 && invocations <= uint64_t(features.max_compute_workgroup_subgroups) * size) {
      required.requiredSubgroupSize = size;
      info.stage.pNext = &required;
      record.required_subgroup_size = size;
      if (features.compute_full_subgroups && facts.local_size[0] % size == 0) {
        info.stage.flags |= VK_PIPELINE_SHADER_STAGE_CREATE_REQUIRE_FULL_SUBGROUPS_BIT_EXT;
        record.full_subgroups = true;
      }
    }
    // Capturing bypasses the pipeline cache: a pipeline found there might come without the
    // captured statistics and representations.
    const bool capture = features.pipeline_statistics;
    if (capture) {
      info.flags |= VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR |
                    VK_PIPELINE_CREATE_CAPTURE_INTERNAL_REPRESENTATIONS_BIT_KHR;
    }
    check(vkCreateComputePipelines(device, capture ? VK_NULL_HANDLE : context_->pipeline_cache(), 1, &info,
                                   nullptr, &pipeline_),
          ("vkCreateComputePipelines(" + name_ + ")").c_str());
    if (capture) record.executables = read_pipeline_executables(device, pipeline_);
    context_->record_pipeline(std::move(record));
  } catch (...) {
    release();
    throw;
  }
}

ComputePipeline::~ComputePipeline() { release(); }

void ComputePipeline::release() {
  VkDevice device = context_->device();
  if (pipeline_) vkDestroyPipeline(device, pipeline_, nullptr);
  if (layout_) vkDestroyPipelineLayout(device, layout_, nullptr);
  if (set_layout_) vkDestroyDescriptorSetLayout(device, set_layout_, nullptr);
  if (module_) vkDestroyShaderModule(device, module_, nullptr);
  pipeline_ = VK_NULL_HANDLE;
  layout_ = VK_NULL_HANDLE;
  set_layout_ = VK_NULL_HANDLE;
  module_ = VK_NULL_HANDLE;
}

void ComputePipeline::dispatch(VkCommandBuffer cmd, std::span<const BufferView> buffers,
                               const void* push_constants, uint32_t groups_x, uint32_t groups_y,
                               uint32_t groups_z) const {
  if (buffers.size() != buffer_count_) {
    throw Error(ErrorCode::invalid_argument, name_ + " takes " + std::to_string(buffer_count_) +
                                                 " buffers, got " + std::to_string(buffers.size()));
  }
  std::vector<VkDescriptorBufferInfo> infos(buffer_count_);
  std::vector<VkWriteDescriptorSet> writes(buffer_count_);
  for (uint32_t i = 0; i < buffer_count_; ++i) {
    infos[i] = {buffers[i].buffer, buffers[i].offset, buffers[i].size};
    writes[i] = {VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
    writes[i].dstBinding = i;
    writes[i].descriptorCount = 1;
    writes[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    writes[i].pBufferInfo = &infos[i];
  }
  vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline_);
  vkCmdPushDescriptorSetKHR(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, layout_, 0, buffer_count_, writes.data());
  if (push_constant_bytes_ > 0) {
    vkCmdPushConstants(cmd, layout_, VK_SHADER_STAGE_COMPUTE_BIT, 0, push_constant_bytes_, push_constants);
  }
  // Timestamps around the dispatch only while a profiler is attached (profiler.hpp).
  Profiler* const profiler = context_->profiler();
  const uint32_t slot = profiler ? profiler->begin(cmd, name_) : Profiler::kNoSlot;
  vkCmdDispatch(cmd, groups_x, groups_y, groups_z);
  if (profiler) profiler->end(cmd, slot);
}

const ComputePipeline& PipelineSet::get(const PipelineDesc& desc) {
  std::lock_guard lock(mutex_);
  auto key = std::make_pair(std::string(desc.shader->name), desc.specialization);
  auto it = pipelines_.find(key);
  if (it == pipelines_.end()) {
    it = pipelines_.emplace(key, std::make_unique<ComputePipeline>(context_, desc)).first;
  }
  return *it->second;
}

PreparedPipeline PipelineSet::prepare(const std::string& label, const PipelineDesc& desc) {
  get(desc);
  return {label, desc.shader->name, desc.specialization};
}

}  // namespace vidkv::rt
