#pragma once
// vidkv-info --pipelines: every pipeline a decode step and the quantize paths create for the
// benchmark geometry, fp16 and each preset, with what the driver reports of its compiled code.
#include <memory>
#include <string>
#include <vector>

#include "common/json.hpp"
#include "vidkv/gpu_attention.hpp"
#include "vidkv/runtime/context.hpp"

namespace vidkv::info {

// The benchmark's layer (DESIGN section 8): LLaVA-OneVision-7B, 4 KV heads, 28 query heads, D 128.
AttentionGeometry benchmark_geometry();

struct PipelineReport {
  std::string label;                 // e.g. attention_vidkv[trits]
  std::vector<std::string> presets;  // the presets (and "fp16") that use it
  rt::PipelineRecord record;         // with the captured executables
};

// Creates every pipeline on `context` (made with capture_pipeline_statistics) and reads what was
// captured; one report per distinct (shader, specialization), in order of first use. The quantized
// presets take `group_size` (32, 64 or 128) as their key and value group size.
std::vector<PipelineReport> collect_pipelines(const std::shared_ptr<rt::Context>& context,
                                              const AttentionGeometry& geometry, uint32_t group_size = 32);

// Sum of the statistics whose name says "spill" (RADV: Spilled SGPRs, Spilled VGPRs); -1 when the
// driver reports none such.
double spill_count(const rt::PipelineRecord& record);
// The executable's statistic of that name, or -1.
double statistic(const rt::PipelineExecutable& executable, const std::string& name);
// The text of the representation named "Assembly" (ACO's disassembly on RADV), or "".
std::string assembly_text(const rt::PipelineRecord& record);

json::Value pipeline_json(const PipelineReport& report);
// The text table: one row per pipeline with the statistics named in the header.
void print_pipelines(const rt::DeviceInfo& device, const std::vector<PipelineReport>& reports);

}  // namespace vidkv::info
