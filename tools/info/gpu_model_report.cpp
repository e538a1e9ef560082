// The model's JSON and text output (gpu_model.hpp); the model itself is gpu_model.cpp.
#include <cstdio>

#include "gpu_model.hpp"

namespace vidkv::info {
namespace {

// Bounds of labelled dispatches or stages, each an object naming its kernel(s) under `key`.
template <class Labelled>
json::Value times_json(const Labelled& times, const char* key) {
  json::Value list = json::Value::array();
  for (const auto& [label, t] : times) {
    json::Value d = json::Value::object();
    d.set(key, label);
    d.set("bandwidth_us", t.bandwidth_us);
    d.set("issue_us", t.issue_us);
    d.set("latency_us", t.latency_us);
    d.set("total_us", t.total_us);
    list.push_back(d);
  }
  return list;
}

}  // namespace

json::Value model_json(const ModelResult& model) {
  json::Value list = json::Value::array();
  for (const ModelEntry& e : model.entries) {
    json::Value o = json::Value::object();
    o.set("gpu", e.gpu);
    o.set("preset", e.preset);
    o.set("tokens", e.tokens);
    o.set("predicted_ms", e.predicted_ms);
    o.set("fp16_predicted_ms", e.fp16_predicted_ms);
    o.set("speedup_vs_fp16", e.speedup_vs_fp16);
    o.set("bandwidth_fraction", e.bandwidth_fraction);
    o.set("code_from", e.code_from);
    o.set("bytes", e.bytes);
    json::Value per = json::Value::object();
    for (size_t i = 0; i < kInstrClasses; ++i) per.set(instr_class_name(InstrClass(i)), e.per_token[i]);
    o.set("instructions_per_token_and_kv_head", per);
    o.set("dispatches", times_json(e.dispatches, "kernel"));
    o.set("stages", times_json(e.stages, "kernels"));
    list.push_back(o);
  }
  return list;
}

json::Value kernels_json(const ModelResult& model) {
  json::Value list = json::Value::array();
  for (const KernelSummary& k : model.kernels) {
    json::Value o = json::Value::object();
    o.set("name", k.label);
    o.set("kernel", k.kernel);
    o.set("wave", k.wave);
    o.set("loops", double(k.loops));
    json::Value st = json::Value::object(), per = json::Value::object();
    for (size_t i = 0; i < kInstrClasses; ++i) {
      st.set(instr_class_name(InstrClass(i)), k.static_counts[i]);
      per.set(instr_class_name(InstrClass(i)), k.per_token[i]);
    }
    o.set("static_instructions", st);
    o.set("instructions_per_token_and_kv_head", per);
    o.set("fp32_valu_per_token_and_kv_head", k.fp32_valu_per_token);
    o.set("vm_round_trips_per_wave", k.vm_round_trips);
    o.set("lgkm_round_trips_per_wave", k.lgkm_round_trips);
    if (!k.error.empty()) o.set("error", k.error);
    list.push_back(o);
  }
  return list;
}

void print_model(const ModelResult& model) {
  if (model.entries.empty()) {
    std::printf("\n%s\n", model.note.c_str());
    return;
  }
  std::printf("\nAttention kernels (%s code): loops, per cached token and KV head of a full split, and the serial\n"
              "round trips (memory, LDS/scalar) of one of its waves:\n",
              model.device_code.c_str());
  std::printf("%-38s %4s %5s %8s %6s %8s %8s %8s %8s %8s %8s %8s\n", "pipeline", "wave", "loops", "valu", "fp32", "salu",
              "smem", "vmem", "lds", "waitcnt", "vm rt", "lgkm rt");
  for (const KernelSummary& k : model.kernels) {
    std::printf("%-38s %4u %5zu", k.label.c_str(), k.wave, k.loops);
    if (!k.error.empty()) {
      std::printf("  %s\n", k.error.c_str());
      continue;
    }
    if (k.kernel == "attention_query" || k.kernel == "attention_reduce") {
      std::printf("  (once per step, not per token)\n");
      continue;
    }
    std::printf(" %8.2f %6.2f", k.per_token[size_t(InstrClass::valu)], k.fp32_valu_per_token);
    for (InstrClass c : {InstrClass::salu, InstrClass::smem, InstrClass::vmem, InstrClass::lds, InstrClass::waitcnt}) {
      std::printf(" %8.2f", k.per_token[size_t(c)]);
    }
    std::printf(" %8.0f %8.0f\n", k.vm_round_trips, k.lgkm_round_trips);
  }
  std::printf("\nGPU model (docs/gpu.md), from %s code: per decode step of one layer\n", model.device_code.c_str());
  std::printf("%-12s %-11s %6s %9s %9s %7s %6s  %s\n", "gpu", "preset", "tokens", "pred ms", "fp16 ms", "speedup",
              "bw", "per token+KV head: valu salu smem vmem lds waits");
  for (const ModelEntry& e : model.entries) {
    std::printf("%-12s %-11s %6u %9.4f %9.4f %6.2fx %5.0f%%  %.1f %.1f %.2f %.2f %.1f %.2f\n", e.gpu.c_str(),
                e.preset.c_str(), e.tokens, e.predicted_ms, e.fp16_predicted_ms, e.speedup_vs_fp16,
                100 * e.bandwidth_fraction, e.per_token[size_t(InstrClass::valu)], e.per_token[size_t(InstrClass::salu)],
                e.per_token[size_t(InstrClass::smem)], e.per_token[size_t(InstrClass::vmem)],
                e.per_token[size_t(InstrClass::lds)], e.per_token[size_t(InstrClass::waitcnt)]);
  }
}

}  // namespace vidkv::info
