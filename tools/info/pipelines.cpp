#include "pipelines.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "vidkv/gpu_keys.hpp"
#include "vidkv/gpu_quantizer.hpp"
#include "vidkv/presets.hpp"

namespace vidkv::info {

namespace {

// The attention format of a preset, as the Cache maps it (cache_layer.cpp).
ValueFormat value_format_of(const CacheSettings& s) {
  switch (s.value_mode) {
    case CacheSettings::ValueMode::per_channel_ternary: return s.stp ? ValueFormat::ternary_stp : ValueFormat::ternary_trits;
    case CacheSettings::ValueMode::per_token_2bit: return ValueFormat::b2_token;
    default: return ValueFormat::b2_channel;
  }
}

KeySpec key_spec_of(const CacheSettings& s) {
  if (s.key_mode == CacheSettings::KeyMode::vidkv) return s.keys;
  KeySpec k;  // plain 2-bit keys: every channel anomalous (Cache::Impl::key_spec)
  k.nbits = 2.0;
  k.group_size = s.group_size;
  return k;
}

QuantSpec value_spec_of(const CacheSettings& s) {
  switch (s.value_mode) {
    case CacheSettings::ValueMode::per_channel_ternary:
      return {QuantBits::b1_58, QuantAxis::channel, s.group_size, s.ternary};
    case CacheSettings::ValueMode::per_token_2bit: return {QuantBits::b2, QuantAxis::token, s.group_size};
    default: return {QuantBits::b2, QuantAxis::channel, s.group_size};
  }
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

AttentionGeometry benchmark_geometry() { return {4, 28, 128, 0.0f}; }

std::vector<PipelineReport> collect_pipelines(const std::shared_ptr<rt::Context>& context,
                                              const AttentionGeometry& g, uint32_t group_size) {
  GpuAttention attention(context);
  GpuQuantizer quantizer(context);
  GpuKeyQuantizer key_quantizer(context);
  std::vector<std::pair<std::string, rt::PreparedPipeline>> made;  // (preset, pipeline)
  for (const auto& p : attention.prepare_pipelines_fp16(g)) made.emplace_back("fp16", p);
  for (const std::string& name : preset_names()) {
    CacheSettings s = preset(name);
    s.group_size = s.keys.group_size = group_size;
    if (s.key_mode == CacheSettings::KeyMode::fp16 || s.value_mode == CacheSettings::ValueMode::fp16) continue;
    // KIVI's value groups run along the channels: a head_dim that is not a multiple of the group
    // (80 or 112 at 32) has no such preset.
    if (s.value_mode == CacheSettings::ValueMode::per_token_2bit && g.dim % group_size != 0) continue;
    for (const auto& p : attention.prepare_pipelines(g, key_spec_of(s), value_format_of(s))) made.emplace_back(name, p);
    // Keys: the prefill selects the channels, later blocks reuse them (the forward FFT is VkFFT's
    // own pipeline, not listed). Values are quantized from fp16 (the cache converts fp32 input).
    for (bool select : {true, false}) {
      for (const auto& p : key_quantizer.prepare_quantize_pipelines(key_spec_of(s), g.dim, select)) {
        made.emplace_back(name, p);
      }
    }
    const bool trits = s.value_mode == CacheSettings::ValueMode::per_channel_ternary && s.trits_base3;
    for (const auto& p : quantizer.prepare_quantize_pipelines(value_spec_of(s), ElementType::f16, trits)) {
      made.emplace_back(name, p);
    }
  }
  const std::vector<rt::PipelineRecord> records = context->pipeline_records();
  std::vector<PipelineReport> reports;
  for (const auto& [preset_name, p] : made) {
    auto same = [&](const PipelineReport& r) {
      return r.record.name == p.shader && r.record.specialization == p.specialization;
    };
    auto it = std::find_if(reports.begin(), reports.end(), same);
    if (it == reports.end()) {
      auto rec = std::find_if(records.begin(), records.end(), [&](const rt::PipelineRecord& r) {
        return r.name == p.shader && r.specialization == p.specialization;
      });
      if (rec == records.end()) continue;  // (cannot happen: prepare created it)
      reports.push_back({p.label, {}, *rec});
      it = reports.end() - 1;
    }
    if (std::find(it->presets.begin(), it->presets.end(), preset_name) == it->presets.end()) {
      it->presets.push_back(preset_name);
    }
  }
  return reports;
}

double spill_count(const rt::PipelineRecord& record) {
  double total = -1;
  for (const auto& e : record.executables) {
    for (const auto& s : e.statistics) {
      if (lower(s.name).find("spill") == std::string::npos) continue;
      total = std::max(total, 0.0) + s.value;
    }
  }
  return total;
}

double statistic(const rt::PipelineExecutable& executable, const std::string& name) {
  for (const auto& s : executable.statistics) {
    if (s.name == name) return s.value;
  }
  return -1;
}

std::string assembly_text(const rt::PipelineRecord& record) {
  for (const auto& e : record.executables) {
    for (const auto& r : e.representations) {
      if (r.name == "Assembly") return r.text;
    }
  }
  return "";
}

json::Value pipeline_json(const PipelineReport& report) {
  json::Value o = json::Value::object();
  o.set("name", report.label);
  o.set("shader", report.record.name);
  json::Value spec = json::Value::array();
  for (uint32_t v : report.record.specialization) spec.push_back(v);
  o.set("specialization", spec);
  json::Value presets = json::Value::array();
  for (const auto& p : report.presets) presets.push_back(p);
  o.set("presets", presets);
  json::Value stats = json::Value::object();
  uint32_t subgroup = 0;
  for (const auto& e : report.record.executables) {
    subgroup = e.subgroup_size;
    for (const auto& s : e.statistics) {
      if (s.is_bool) {
        stats.set(s.name, s.value != 0);
      } else {
        stats.set(s.name, s.value);
      }
    }
  }
  o.set("subgroup_size", subgroup);
  o.set("stats", stats);
  const double spills = spill_count(report.record);
  o.set("spills", spills < 0 ? json::Value() : json::Value(spills));
  return o;
}

void print_pipelines(const rt::DeviceInfo& device, const std::vector<PipelineReport>& reports) {
  std::printf("%s (%s)\n", device.name.c_str(), device.driver_info.c_str());
  // The columns RADV reports; other drivers' statistics follow each row by name.
  const char* columns[] = {"SGPRs", "VGPRs", "Spilled SGPRs", "Spilled VGPRs", "LDS size", "Subgroups per SIMD",
                           "Instructions", "Code size"};
  std::printf("%-38s %5s", "pipeline", "wave");
  for (const char* c : columns) std::printf(" %8.8s", c);
  std::printf("\n");
  for (const auto& r : reports) {
    std::printf("%-38s", r.label.c_str());
    if (r.record.executables.empty()) {
      std::printf(" (the driver reported no executable)\n");
      continue;
    }
    const rt::PipelineExecutable& e = r.record.executables.front();
    std::printf(" %5u", e.subgroup_size);
    std::string others;
    for (const char* c : columns) {
      const double v = statistic(e, c);
      if (v < 0) {
        std::printf(" %8s", "-");
      } else {
        std::printf(" %8.0f", v);
      }
    }
    for (const auto& s : e.statistics) {
      if (std::find_if(std::begin(columns), std::end(columns), [&](const char* c) { return s.name == c; }) !=
          std::end(columns)) {
        continue;
      }
      char buf[64];
      std::snprintf(buf, sizeof(buf), "%s%s=%g", others.empty() ? "" : ", ", s.name.c_str(), s.value);
      others += buf;
    }
    std::printf("\n");
    if (!others.empty() && device.driver_name.find("radv") == std::string::npos) std::printf("    %s\n", others.c_str());
  }
  std::printf("spills: %s\n", [&] {
    double total = 0;
    bool known = false;
    for (const auto& r : reports) {
      const double s = spill_count(r.record);
      if (s >= 0) {
        known = true;
        total += s;
      }
    }
    return known ? (total == 0 ? "none" : "SOME (see the Spilled columns)") : "not reported by this driver";
  }());
}

}  // namespace vidkv::info
