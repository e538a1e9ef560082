#include "vidkv/runtime/pipeline.hpp"

#include <vector>

#include "vidkv/runtime/context.hpp"
#include "vk.hpp"

namespace vidkv::rt {

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
    check(vkCreateComputePipelines(device, context_->pipeline_cache(), 1, &info, nullptr, &pipeline_),
          ("vkCreateComputePipelines(" + name_ + ")").c_str());
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
  vkCmdDispatch(cmd, groups_x, groups_y, groups_z);
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

}  // namespace vidkv::rt
