#include "pipeline_executables.hpp"

#include <string>

namespace vidkv::rt {

namespace {

PipelineStatistic to_statistic(const VkPipelineExecutableStatisticKHR& s) {
  PipelineStatistic out;
  out.name = s.name;
  out.description = s.description;
  switch (s.format) {
    case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_BOOL32_KHR:
      out.is_bool = true;
      out.value = s.value.b32 ? 1.0 : 0.0;
      break;
    case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_INT64_KHR: out.value = double(s.value.i64); break;
    case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_UINT64_KHR: out.value = double(s.value.u64); break;
    case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_FLOAT64_KHR:
      out.is_float = true;
      out.value = s.value.f64;
      break;
    default: break;
  }
  return out;
}

std::vector<PipelineRepresentation> read_representations(VkDevice device, const VkPipelineExecutableInfoKHR& info) {
  uint32_t count = 0;
  check(vkGetPipelineExecutableInternalRepresentationsKHR(device, &info, &count, nullptr),
        "vkGetPipelineExecutableInternalRepresentationsKHR");
  std::vector<VkPipelineExecutableInternalRepresentationKHR> reps(
      count, {VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_INTERNAL_REPRESENTATION_KHR});
  // First call: the sizes; second: the text into buffers of those sizes.
  check(vkGetPipelineExecutableInternalRepresentationsKHR(device, &info, &count, reps.data()),
        "vkGetPipelineExecutableInternalRepresentationsKHR");
  std::vector<std::string> texts(count);
  for (uint32_t i = 0; i < count; ++i) {
    texts[i].assign(reps[i].dataSize, '\0');
    reps[i].pData = texts[i].data();
  }
  const VkResult r = vkGetPipelineExecutableInternalRepresentationsKHR(device, &info, &count, reps.data());
  if (r != VK_INCOMPLETE) check(r, "vkGetPipelineExecutableInternalRepresentationsKHR");
  std::vector<PipelineRepresentation> out;
  for (uint32_t i = 0; i < count; ++i) {
    std::string text = texts[i].substr(0, reps[i].dataSize);
    if (!text.empty() && text.back() == '\0') text.pop_back();  // text representations end in NUL
    out.push_back({reps[i].name, reps[i].description, reps[i].isText ? std::move(text) : std::string()});
  }
  return out;
}

}  // namespace

std::vector<PipelineExecutable> read_pipeline_executables(VkDevice device, VkPipeline pipeline) {
  VkPipelineInfoKHR pipeline_info{VK_STRUCTURE_TYPE_PIPELINE_INFO_KHR};
  pipeline_info.pipeline = pipeline;
  uint32_t count = 0;
  check(vkGetPipelineExecutablePropertiesKHR(device, &pipeline_info, &count, nullptr),
        "vkGetPipelineExecutablePropertiesKHR");
  std::vector<VkPipelineExecutablePropertiesKHR> props(count, {VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_PROPERTIES_KHR});
  check(vkGetPipelineExecutablePropertiesKHR(device, &pipeline_info, &count, props.data()),
        "vkGetPipelineExecutablePropertiesKHR");
  std::vector<PipelineExecutable> out;
  for (uint32_t e = 0; e < count; ++e) {
    PipelineExecutable exe;
    exe.name = props[e].name;
    exe.description = props[e].description;
    exe.subgroup_size = props[e].subgroupSize;
    VkPipelineExecutableInfoKHR info{VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_INFO_KHR};
    info.pipeline = pipeline;
    info.executableIndex = e;
    uint32_t n = 0;
    check(vkGetPipelineExecutableStatisticsKHR(device, &info, &n, nullptr), "vkGetPipelineExecutableStatisticsKHR");
    std::vector<VkPipelineExecutableStatisticKHR> stats(n, {VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_STATISTIC_KHR});
    check(vkGetPipelineExecutableStatisticsKHR(device, &info, &n, stats.data()), "vkGetPipelineExecutableStatisticsKHR");
    for (uint32_t i = 0; i < n; ++i) exe.statistics.push_back(to_statistic(stats[i]));
    exe.representations = read_representations(device, info);
    out.push_back(std::move(exe));
  }
  return out;
}

}  // namespace vidkv::rt
