#pragma once
// Internal: reading what VK_KHR_pipeline_executable_properties reports of a created pipeline.
#include <vector>

#include "vidkv/runtime/context.hpp"
#include "vk.hpp"

namespace vidkv::rt {

// Every executable of `pipeline` with its statistics and internal representations. The pipeline
// must have been created with the CAPTURE_STATISTICS and CAPTURE_INTERNAL_REPRESENTATIONS flags on
// a device with pipelineExecutableInfo enabled. Throws Error naming the failing call.
std::vector<PipelineExecutable> read_pipeline_executables(VkDevice device, VkPipeline pipeline);

}  // namespace vidkv::rt
