#include "bench/report_json.hpp"

#include <algorithm>
#include <fstream>

#include "vidkv/error.hpp"
#include "vidkv/version.hpp"

namespace vidkv::bench {
namespace {

json::Value result_json(const PresetResult& r, const SizeResults& size) {
  json::Value o = json::Value::object();
  o.set("preset", r.preset);
  o.set("settings", r.settings);
  o.set("tokens", r.tokens);
  o.set("frames", size.workload.frames > 0 ? json::Value(r.frames) : json::Value(nullptr));
  auto num = [&](const char* key, double v, Stage needed, bool known = true) {
    o.set(key, known && r.reached(needed) ? json::Value(v) : json::Value(nullptr));
  };
  // With per-head policies the run's sparsity sits beside the other settings; bits are the
  // preset heads' and null when no head takes the preset.
  if (r.sparsity) o.set("sparsity", *r.sparsity);
  num("bits_k", r.bits_k, Stage::stored, r.has_bits());
  num("bits_v", r.bits_v, Stage::stored, r.has_bits());
  num("bits_total", r.bits_total, Stage::stored);
  num("bytes", double(r.bytes), Stage::stored);
  num("fp16_bytes", double(r.fp16_bytes), Stage::stored);
  num("residual_bytes", double(r.residual_bytes), Stage::stored);
  num("k_rel_l2", r.k_rel_l2, Stage::reconstructed);
  num("v_rel_l2", r.v_rel_l2, Stage::reconstructed);
  num("attn_rel_err", r.attn_rel_err, Stage::attended);
  num("attn_rel_err_max", r.attn_rel_err_max, Stage::attended);
  num("prefill_ms", r.prefill_ms, Stage::stored);
  num("prefill_gpu_ms", r.prefill_gpu_ms, Stage::stored);
  num("decode_ms", r.decode_ms, Stage::timed);
  num("fp16_decode_ms", r.fp16_decode_ms, Stage::timed);
  num("speedup_vs_fp16", r.speedup_vs_fp16, Stage::timed);
  num("decode_bytes", double(r.decode_bytes), Stage::timed);
  num("decode_layers", double(r.decode_layers), Stage::timed);
  num("decode_cycled_bytes", double(r.decode_cycled_bytes), Stage::timed);
  num("achieved_gbps", r.achieved_gbps, Stage::timed);
  num("copy_gbps", r.copy_gbps, Stage::timed);
  if (r.sparsity) {
    // Per policy: (layer, KV head) pairs and bytes over all layers; the timing layer's policies.
    json::Value heads = json::Value::object(), bytes = json::Value::object();
    for (HeadPolicy p : {HeadPolicy::vidkv, HeadPolicy::full, HeadPolicy::window}) {
      const size_t i = size_t(p);
      heads.set(head_policy_name(p), r.reached(Stage::stored) ? json::Value(r.policy_heads[i]) : json::Value(nullptr));
      bytes.set(head_policy_name(p),
                r.reached(Stage::stored) ? json::Value(double(r.policy_bytes[i])) : json::Value(nullptr));
    }
    o.set("policy_heads", heads);
    o.set("policy_bytes", bytes);
    json::Value timing = json::Value::array();
    for (HeadPolicy p : r.timing_policies) timing.push_back(std::string(head_policy_name(p)));
    o.set("timing_layer_policies", timing);
  }
  if (!r.error.empty()) o.set("error", r.error);
  return o;
}

json::Value uint_array(const std::vector<uint32_t>& v) {
  json::Value a = json::Value::array();
  for (uint32_t x : v) a.push_back(x);
  return a;
}

}  // namespace

json::Value report_json(const RunSummary& run, const BenchOptions& options, const std::vector<SizeResults>& sizes,
                        const std::vector<KernelTotal>& kernels) {
  json::Value root = json::Value::object();
  root.set("tool", "vidkv-bench");
  root.set("version", VIDKV_VERSION_STRING);
  json::Value device = json::Value::object();
  device.set("name", run.device.name);
  device.set("type", std::string(rt::device_type_name(run.device.type)));
  device.set("driver", run.device.driver_name);
  device.set("driver_info", run.device.driver_info);
  device.set("api_version", rt::version_string(run.device.api_version));
  root.set("device", device);

  json::Value workload = json::Value::object();
  const WorkloadInfo& w = sizes.empty() ? WorkloadInfo{} : sizes.front().workload;
  workload.set("source", w.source);
  workload.set("description", run.workload);
  workload.set("layers", w.layers);
  workload.set("kv_heads", w.kv_heads);
  workload.set("q_heads", w.q_heads);
  workload.set("head_dim", w.head_dim);
  if (w.source == "generator") {
    workload.set("model", options.model);
    workload.set("tokens_per_frame", w.tokens_per_frame);
    workload.set("text_tokens", w.text_tokens);
    workload.set("rope_base", options.rope_base);
    workload.set("frame_correlation", options.frame_correlation);
    // JSON numbers are doubles: a seed beyond 2^53 is written as a string so that it stays exact.
    if (options.seed < (1ull << 53)) workload.set("seed", double(options.seed));
    else workload.set("seed", std::to_string(options.seed));
  } else {
    workload.set("dir", options.kv_dir);
    workload.set("first_visual", w.first_visual);
    workload.set("visual_tokens", w.visual_tokens);
  }
  root.set("workload", workload);
  if (options.head_policies()) {
    json::Value hp = json::Value::object();
    hp.set("scores", options.head_scores);
    hp.set("low", options.low_policy);
    hp.set("high", options.high_policy);
    hp.set("sink", options.window_sink);
    hp.set("recent", options.window_recent);
    json::Value list = json::Value::array();
    for (double s : options.sparsity) list.push_back(s);
    hp.set("sparsities", list);
    root.set("head_policies", hp);
  }

  json::Value sampled = json::Value::object();
  sampled.set("memory_layers", w.layers);
  sampled.set("error_layers", sizes.empty() ? json::Value::array() : uint_array(sizes.front().error_layers));
  sampled.set("queries_per_layer", options.queries);
  sampled.set("timing_layer", sizes.empty() ? 0u : sizes.front().timing_layer);
  sampled.set("decode_runs", options.runs);
  // The decode copies' byte bound (0: --decode-layers fixed their count), the first size's.
  sampled.set("decode_cycle_bytes", sizes.empty() ? 0.0 : double(sizes.front().cycle_bytes));
  sampled.set("decode_layers_fixed", options.decode_layers);
  root.set("sampled", sampled);

  double copy = 0;
  for (const auto& s : sizes) copy = std::max(copy, s.copy_gbps);
  root.set("copy_gbps", copy);
  json::Value results = json::Value::array();
  json::Value size_list = json::Value::array();
  for (const auto& s : sizes) {
    for (const auto& r : s.results) results.push_back(result_json(r, s));
    json::Value so = json::Value::object();
    so.set("tokens", s.workload.tokens);
    so.set("frames", s.workload.frames);
    so.set("copy_gbps", s.copy_gbps);
    so.set("copy_bytes", double(s.copy_bytes));
    so.set("decode_cycle_bytes", double(s.cycle_bytes));
    so.set("decode_cycle_capped", s.cycle_capped);
    so.set("error_layers", uint_array(s.error_layers));
    size_list.push_back(so);
  }
  root.set("results", results);
  root.set("sizes", size_list);
  json::Value ks = json::Value::array();
  for (const auto& k : kernels) {
    json::Value o = json::Value::object();
    o.set("label", k.label);
    o.set("calls", double(k.calls));
    o.set("total_ms", k.total_ms);
    ks.push_back(o);
  }
  root.set("kernels", ks);
  root.set("dropped_kernel_timestamps", double(run.dropped_kernels));
  root.set("validation_messages", double(run.validation_messages));
  root.set("wall_s", run.wall_s);
  return root;
}

void write_text_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(ErrorCode::io_error, path + ": cannot open for writing");
  out << text;
  out.close();
  if (!out) throw Error(ErrorCode::io_error, path + ": write failed");
}

}  // namespace vidkv::bench
