#include "common/gpu_checks_coverage.hpp"

#include <algorithm>
#include <set>

#include "vidkv/gpu_attention.hpp"

#ifndef VIDKV_SHADER_SOURCES
#error "tools/common/CMakeLists.txt passes the stems of shaders/*.comp, comma-separated, as VIDKV_SHADER_SOURCES"
#endif

namespace vidkv::tools {

namespace {

// SPIR-V capability numbers (the SPIR-V specification, "Capability") that need a device feature.
struct GatedCapability {
  uint32_t id;
  const char* name;
  bool rt::EnabledFeatures::*feature;  // nullptr: a feature vidkv never enables
};
const GatedCapability kGated[] = {
    {9, "Float16", &rt::EnabledFeatures::shader_float16},
    {10, "Float64", nullptr},
    {11, "Int64", nullptr},
    {22, "Int16", nullptr},
    {39, "Int8", &rt::EnabledFeatures::shader_int8},
    {4433, "StorageBuffer16BitAccess", &rt::EnabledFeatures::storage_buffer_16bit},
    {4434, "UniformAndStorageBuffer16BitAccess", nullptr},
    {4435, "StoragePushConstant16", nullptr},
    {4436, "StorageInputOutput16", nullptr},
    {4448, "StorageBuffer8BitAccess", &rt::EnabledFeatures::storage_buffer_8bit},
    {4449, "UniformAndStorageBuffer8BitAccess", nullptr},
    {4450, "StoragePushConstant8", nullptr},
};

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = std::min(text.find(',', start), text.size());
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string on_off(bool b) { return b ? "on" : "off"; }

}  // namespace

std::vector<std::string> shader_sources() {
  auto list = split_list(VIDKV_SHADER_SOURCES);
  std::sort(list.begin(), list.end());
  return list;
}

std::string capability_name(uint32_t capability) {
  for (const auto& g : kGated) {
    if (g.id == capability) return g.name;
  }
  switch (capability) {
    case 1: return "Shader";
    case 61: return "GroupNonUniform";
    case 62: return "GroupNonUniformVote";
    case 63: return "GroupNonUniformArithmetic";
    case 64: return "GroupNonUniformBallot";
    case 65: return "GroupNonUniformShuffle";
    case 66: return "GroupNonUniformShuffleRelative";
    case 67: return "GroupNonUniformClustered";
    case 68: return "GroupNonUniformQuad";
    case 5345: return "VulkanMemoryModel";
  }
  return std::to_string(capability);
}

std::vector<UnusedShader> shaders_unused_on(const rt::Context& context) {
  std::vector<UnusedShader> unused;
  if (GpuAttention::subgroup8_default(context)) return unused;
  const uint32_t size = context.effective_subgroup_size();
  const std::string why = std::string("GpuAttention takes the portable attention shaders on this ") +
                          rt::device_type_name(context.info().type) + " device with subgroup size " +
                          (size ? std::to_string(size) : std::string("varying")) +
                          " (the subgroup-of-8 ones need a CPU device, subgroups of exactly 8 and shuffles)";
  const std::string prefix = "attention_", suffix = "_sg8";
  for (const auto& s : shader_sources()) {
    const bool sg8 = s.size() > prefix.size() + suffix.size() && s.compare(0, prefix.size(), prefix) == 0 &&
                     s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
    if (sg8) unused.push_back({s, why});
  }
  return unused;
}

CheckResult shader_coverage_check(const std::string& name, const std::vector<rt::PipelineRecord>& pipelines,
                                  const std::vector<UnusedShader>& unused) {
  std::set<std::string> created;
  for (const auto& p : pipelines) created.insert(p.name);
  std::set<std::string> not_expected;
  for (const auto& u : unused) not_expected.insert(u.name);
  const auto sources = shader_sources();
  std::string missing, unexpected, not_used;
  size_t failures = 0;
  auto append = [](std::string& list, const std::string& item) { list += (list.empty() ? "" : ", ") + item; };
  for (const auto& s : sources) {
    const bool ran = created.count(s) != 0;
    if (not_expected.count(s)) {
      append(ran ? unexpected : not_used, s);
      failures += ran;
    } else if (!ran) {
      append(missing, s);
      ++failures;
    }
  }
  CheckResult r{name, std::to_string(sources.size()) + " shaders", double(failures), failures == 0, ""};
  if (failures == 0) {
    r.detail = not_used.empty() ? "every shaders/*.comp ran" : "every shader this device uses ran";
    r.detail += ", as " + std::to_string(pipelines.size()) + " pipelines";
    if (!not_used.empty()) r.detail += "; not used on this device: " + not_used;
  } else {
    if (!missing.empty()) r.detail = "never run: " + missing;
    if (!unexpected.empty()) {
      r.detail += (r.detail.empty() ? "" : "; ") + std::string("ran though not used on this device: ") + unexpected;
    }
  }
  return r;
}

CheckResult spirv_capability_check(const std::string& name, const std::vector<rt::PipelineRecord>& pipelines,
                                   const rt::EnabledFeatures& enabled) {
  std::set<std::string> offences;
  for (const auto& p : pipelines) {
    for (uint32_t cap : p.capabilities) {
      for (const auto& g : kGated) {
        if (g.id == cap && (g.feature == nullptr || !(enabled.*g.feature))) offences.insert(p.name + ":" + g.name);
      }
    }
  }
  CheckResult r{name, std::to_string(pipelines.size()) + " pipelines", double(offences.size()), offences.empty(), ""};
  if (offences.empty()) {
    r.detail = "no module declares a capability needing a feature that is off";
  } else {
    for (const auto& o : offences) r.detail += (r.detail.empty() ? "" : ", ") + o;
  }
  return r;
}

json::Value pipelines_json(const std::vector<rt::PipelineRecord>& pipelines) {
  json::Value out = json::Value::array();
  for (const auto& p : pipelines) {
    json::Value v = json::Value::object();
    v.set("shader", p.name);
    json::Value spec = json::Value::array();
    for (uint32_t s : p.specialization) spec.push_back(s);
    v.set("specialization", spec);
    json::Value size = json::Value::array();
    for (uint32_t s : p.local_size) size.push_back(s);
    v.set("local_size", size);
    v.set("required_subgroup_size", p.required_subgroup_size);
    v.set("full_subgroups", p.full_subgroups);
    json::Value caps = json::Value::array();
    for (uint32_t c : p.capabilities) caps.push_back(capability_name(c));
    v.set("capabilities", caps);
    out.push_back(v);
  }
  return out;
}

std::string features_line(const rt::EnabledFeatures& e, uint32_t effective_subgroup_size) {
  std::string line = "shaderFloat16 " + on_off(e.shader_float16) + ", shaderInt8 " + on_off(e.shader_int8) +
                     ", storageBuffer16BitAccess " + on_off(e.storage_buffer_16bit) + ", storageBuffer8BitAccess " +
                     on_off(e.storage_buffer_8bit) + ", subgroup size ";
  if (e.required_subgroup_size != 0) {
    line += std::to_string(e.required_subgroup_size) + " (required" +
            std::string(e.compute_full_subgroups ? ", full subgroups)" : ")");
  } else {
    line += effective_subgroup_size ? std::to_string(effective_subgroup_size) + " (driver default, fixed)"
                                    : std::string("driver default (varies)");
  }
  return line;
}

json::Value features_json(const rt::EnabledFeatures& e, uint32_t effective_subgroup_size) {
  json::Value v = json::Value::object();
  v.set("shader_float16", e.shader_float16);
  v.set("shader_int8", e.shader_int8);
  v.set("storage_buffer_16bit", e.storage_buffer_16bit);
  v.set("storage_buffer_8bit", e.storage_buffer_8bit);
  v.set("subgroup_size_control", e.subgroup_size_control);
  v.set("compute_full_subgroups", e.compute_full_subgroups);
  v.set("required_subgroup_size", e.required_subgroup_size);
  v.set("effective_subgroup_size", effective_subgroup_size);
  return v;
}

}  // namespace vidkv::tools
