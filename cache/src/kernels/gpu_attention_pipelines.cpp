// GpuAttention::prepare_pipelines*: every pipeline of a decode step made without buffers or
// dispatches (gpu_attention.hpp). The descriptions come from the same *_desc functions the
// record functions use, so what is prepared is what a step runs.
#include <string>

#include "kernels/gpu_attention_internal.hpp"
#include "vidkv/gpu_attention.hpp"
#include "vidkv/runtime/pipeline.hpp"

namespace vidkv {

namespace {

// The attention_vidkv label of a value mode: what the shader's VALUE_MODE selects.
const char* mode_label(uint32_t mode) {
  switch (mode) {
    case 0: return "trits";
    case 1: return "b2_channel";
    case 2: return "b2_token";
    case 3: return "stp";
  }
  return "?";
}

}  // namespace

std::vector<GpuAttention::PreparedPipeline> GpuAttention::prepare_pipelines_fp16(const AttentionGeometry& g) {
  check_geometry(g);
  std::vector<PreparedPipeline> out;
  for (const rt::PipelineDesc& desc : {fp16_desc(g), reduce_desc(g)}) out.push_back(pipelines_.prepare(desc.shader->name, desc));
  return out;
}

std::vector<GpuAttention::PreparedPipeline> GpuAttention::prepare_pipelines(const AttentionGeometry& g,
                                                                           const KeySpec& keys, ValueFormat values,
                                                                           uint32_t value_group_size) {
  check_geometry(g);
  validate(keys, {g.kv_heads, keys.group_size, g.dim});
  const uint32_t vg = value_group_size != 0 ? value_group_size : keys.group_size;
  check_group_sizes(keys.group_size, vg);
  std::vector<PreparedPipeline> out;
  auto add = [&](const std::string& label, const rt::PipelineDesc& desc) { out.push_back(pipelines_.prepare(label, desc)); };
  // Keys decide the query transform's and the attention's shape: k anomalous channels, S streams.
  const uint32_t k = anomalous_channel_count(keys, g.dim), S = coefficient_streams(keys.fft, g.dim - k);
  const std::string key_part = "k" + std::to_string(k) + " s" + std::to_string(S);
  // Only the subgroup-of-8 path transforms the query in a dispatch of its own.
  if (subgroup8_path()) add("attention_query[" + key_part + "]", query_desc(g, keys));
  // An STP layer also holds segments without protected tokens (the residual's flushes).
  std::vector<uint32_t> modes = {value_mode(values, 1)};
  if (values == ValueFormat::ternary_stp) modes.push_back(value_mode(values, 0));
  for (uint32_t mode : modes) {
    const rt::PipelineDesc desc = vidkv_desc(g, keys, mode, mode_split(g, keys, mode, vg), vg);
    add(std::string(desc.shader->name) + "[" + mode_label(mode) + ", " + key_part + "]", desc);
  }
  add(fp16_desc(g).shader->name + std::string("[residual]"), fp16_desc(g));
  add(reduce_desc(g).shader->name, reduce_desc(g));
  return out;
}

}  // namespace vidkv
