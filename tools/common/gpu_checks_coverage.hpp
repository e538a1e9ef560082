#pragma once
// Which shaders a conformance pass really ran, and what their SPIR-V asks of the device, from the
// pipelines its context created (rt::Context::pipeline_records). The shader list is every
// shaders/*.comp of the source tree at configure time, so a new shader that no check reaches
// fails the coverage check until one does; only shaders a device is not meant to use
// (shaders_unused_on) are expected not to run there.
#include <string>
#include <vector>

#include "common/check_result.hpp"
#include "common/json.hpp"
#include "vidkv/runtime/context.hpp"

namespace vidkv::tools {

// Stems of shaders/*.comp, sorted.
std::vector<std::string> shader_sources();

// A shader that a pass on some device legitimately never runs, and why.
struct UnusedShader {
  std::string name;
  std::string why;
};
// The shaders of shader_sources() a pass on `context` does not use: the subgroup-of-8 attention
// shaders (attention_*_sg8) wherever GpuAttention::subgroup8_default(context) is false, since
// GpuAttention then always takes the portable ones (every pass runs those).
std::vector<UnusedShader> shaders_unused_on(const rt::Context& context);
// Passes when every shader source not in `unused` was made into at least one pipeline and no
// shader in `unused` was (a device that is not meant to run it did: the device rule is wrong);
// names the missing and the unexpected ones, and lists the unused ones as "not used on this
// device".
CheckResult shader_coverage_check(const std::string& name, const std::vector<rt::PipelineRecord>& pipelines,
                                  const std::vector<UnusedShader>& unused = {});
// Passes when no pipeline's module declares a capability whose device feature the context did
// not enable (Float16, Int8, 16- and 8-bit storage access; Int16, Int64, Float64, which vidkv
// never enables); names each offending shader and capability.
CheckResult spirv_capability_check(const std::string& name, const std::vector<rt::PipelineRecord>& pipelines,
                                   const rt::EnabledFeatures& enabled);
// "Float16", "GroupNonUniformBallot", ... or the number for capabilities vidkv does not name.
std::string capability_name(uint32_t capability);
// [{"shader", "specialization", "local_size", "required_subgroup_size", "full_subgroups",
//   "capabilities"}] per pipeline.
json::Value pipelines_json(const std::vector<rt::PipelineRecord>& pipelines);
// The features a pass ran with, as one line and as JSON.
std::string features_line(const rt::EnabledFeatures& enabled, uint32_t effective_subgroup_size);
json::Value features_json(const rt::EnabledFeatures& enabled, uint32_t effective_subgroup_size);

}  // namespace vidkv::tools
