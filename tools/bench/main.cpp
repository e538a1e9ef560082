// vidkv-bench: the profiling and benchmark tool, and the project's main job. For each preset it
// quantizes a video LLM's KV cache on the default Vulkan device (vidkv::Cache) and reports
// effective bits, memory, reconstruction and attention error against a float64 reference, prefill
// time, and decode attention time beside the fp16 shader and a copy bandwidth measured in the same
// run; GPU time per kernel from the runtime profiler; optionally JSON, a Chrome trace and an SVG
// plot. With --head-scores every preset is measured at each sparsity under per-head policies. `--help` lists the options; README "The benchmark" explains the output.
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench/batch_decode.hpp"
#include "bench/head_policies.hpp"
#include "bench/measure.hpp"
#include "bench/options.hpp"
#include "bench/progress.hpp"
#include "bench/report_json.hpp"
#include "bench/report_table.hpp"
#include "bench/run_profile.hpp"
#include "bench/svg_plot.hpp"
#include "bench/trace_writer.hpp"
#include "bench/workload.hpp"
#include "vidkv/error.hpp"
#include "vidkv/runtime/context.hpp"
#include "vidkv/runtime/profiler.hpp"
#include "vidkv/version.hpp"

using namespace vidkv;
using namespace vidkv::bench;

namespace {

// One workload per context length asked for; made up front (cheap: no data yet) so that the
// progress bar knows the whole run.
std::vector<std::unique_ptr<Workload>> make_workloads(BenchOptions& o) {
  std::vector<std::unique_ptr<Workload>> out;
  if (!o.kv_dir.empty()) {
    DumpSelection sel;
    sel.layers = o.layers;
    sel.q_heads = o.q_heads;
    sel.first_visual = o.first_visual;
    sel.visual_tokens = o.visual_tokens;
    sel.text_tokens = o.text_tokens;
    const std::vector<uint32_t> sizes = o.tokens.empty() ? std::vector<uint32_t>{0} : o.tokens;
    for (uint32_t t : sizes) {
      sel.tokens = t;
      out.push_back(make_dump_workload(o.kv_dir, sel));
    }
    return out;
  }
  VideoKvSpec spec = model_spec(o.model);
  if (o.layers) spec.layers = o.layers;
  if (o.q_heads) spec.q_heads = o.q_heads;
  if (o.rope_base > 0) spec.rope_base = o.rope_base;
  o.rope_base = spec.rope_base;  // the JSON reports the base used
  spec.tokens_per_frame = o.tokens_per_frame;
  spec.text_tokens = o.text_tokens;
  spec.frame_correlation = o.frame_correlation;
  spec.seed = o.seed;
  for (uint32_t f : o.frames) {
    spec.visual_tokens = f * o.tokens_per_frame;
    out.push_back(make_generated_workload(spec));
  }
  for (uint32_t t : o.tokens) {
    if (t <= o.text_tokens)
      throw Error(ErrorCode::invalid_argument, "--tokens " + std::to_string(t) + " leaves no visual tokens beside " +
                                                   std::to_string(o.text_tokens) + " text tokens");
    spec.visual_tokens = t - o.text_tokens;
    out.push_back(make_generated_workload(spec));
  }
  return out;
}

// --sequences: batched decode steps only (batch_decode.hpp).
int run_batch_decode(const BenchOptions& o) {
  const auto wall_start = std::chrono::steady_clock::now();
  const VideoKvSpec spec = model_spec(o.model);
  BatchDecodeGeometry g;
  g.kv_heads = spec.kv_heads;
  g.q_heads = o.q_heads ? o.q_heads : spec.q_heads;
  g.head_dim = spec.head_dim;
  g.tokens = !o.tokens.empty() ? o.tokens.front() : o.frames.front() * o.tokens_per_frame + o.text_tokens;
  auto ctx = rt::Context::create();
  const auto& info = ctx->info();
  std::printf("vidkv-bench %s on %s (%s, %s %s)\n", VIDKV_VERSION_STRING, info.name.c_str(),
              rt::device_type_name(info.type), info.driver_name.c_str(), info.driver_info.c_str());
  std::printf("batched decode: %s geometry (%u KV heads, %u query heads, head_dim %u), %u tokens per sequence\n\n",
              o.model.c_str(), g.kv_heads, g.q_heads, g.head_dim, g.tokens);
  const auto results = measure_batch_decode(ctx, g, o.presets, o.sequences, o.seed);
  print_batch_table(stdout, results);
  const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  if (!o.json_path.empty()) {
    json::Value root = json::Value::object();
    root.set("version", std::string(VIDKV_VERSION_STRING));
    json::Value device = json::Value::object();
    device.set("name", info.name);
    device.set("type", std::string(rt::device_type_name(info.type)));
    device.set("driver", info.driver_name);
    root.set("device", device);
    root.set("mode", "batched_decode");
    root.set("model", o.model);
    root.set("kv_heads", g.kv_heads);
    root.set("q_heads", g.q_heads);
    root.set("head_dim", g.head_dim);
    root.set("wall_s", wall_s);
    root.set("results", batch_results_json(results));
    write_text_file(o.json_path, json::write(root, true) + "\n");
  }
  std::printf("\ndone in %.1f s%s\n", wall_s, o.json_path.empty() ? "" : ("; JSON " + o.json_path).c_str());
  if (ctx->validation_message_count() > 0) {
    for (const auto& m : ctx->validation_messages()) std::fprintf(stderr, "validation: %s\n", m.text.c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  BenchOptions options;
  try {
    options = parse_options(argc, argv);
  } catch (const Error& e) {
    std::fprintf(stderr, "vidkv-bench: %s\n", e.what());
    return 2;
  }
  if (options.help) {
    std::fputs(usage_text().c_str(), stdout);
    return 0;
  }
  if (options.version) {
    std::printf("vidkv-bench %s\n", VIDKV_VERSION_STRING);
    return 0;
  }
  if (!options.sequences.empty()) {
    try {
      return run_batch_decode(options);
    } catch (const Error& e) {
      std::fprintf(stderr, "\nvidkv-bench: %s\n", e.what());
      return 1;
    }
  }
  const auto wall_start = std::chrono::steady_clock::now();
  try {
    auto workloads = make_workloads(options);
    // Head scores are read (or made) and checked against the geometry before any device work.
    std::optional<HeadPolicySpec> head_policies;
    if (options.head_policies()) {
      const WorkloadInfo& g = workloads.front()->info();
      head_policies = head_policy_spec(options, g.layers, g.kv_heads);
    }
    auto ctx = rt::Context::create();
    const auto& info = ctx->info();
    std::printf("vidkv-bench %s on %s (%s, %s %s)\n", VIDKV_VERSION_STRING, info.name.c_str(),
                rt::device_type_name(info.type), info.driver_name.c_str(), info.driver_info.c_str());
    std::printf("workload: %s\n", workloads.front()->info().description.c_str());
    if (workloads.size() > 1) {
      std::printf("sweep over %zu context lengths:", workloads.size());
      for (const auto& w : workloads) std::printf(" %u", w->info().tokens);
      std::printf(" tokens\n");
    }
    if (head_policies) {
      std::printf("per-head policies: scores %s; below the sparsity quantile %s, above it %s",
                  head_policies->score_source.c_str(), options.low_policy.c_str(), options.high_policy.c_str());
      if (options.low_policy == "window") std::printf(" (window: sink %u, recent %u)", options.window_sink,
                                                      options.window_recent);
      std::printf("\n");
      if (options.low_policy != "vidkv" && options.high_policy != "vidkv")
        std::printf("note: no head takes the preset (--low-policy and --high-policy are not vidkv): every preset "
                    "gives the same cache\n");
    }
    std::printf("\n");
    std::fflush(stdout);

    std::unique_ptr<rt::Profiler> profiler;
    try {
      // Room for a decode round's kernels: up to 1024 cycled layer copies of a few dispatches each.
      profiler = std::make_unique<rt::Profiler>(ctx, 16384);
    } catch (const Error& e) {
      std::printf("note: %s; times are wall-clock\n", e.what());
    }
    RunProfile profile(profiler.get());
    MeasurePlan plan{options.presets, options.error_layers, options.queries, options.runs, options.seed};
    plan.head_policies = head_policies;
    plan.decode_layers = options.decode_layers;
    plan.cycle_bytes = options.cycle_bytes;
    plan.sparsities = options.sparsity;
    uint64_t steps = 0;
    for (const auto& w : workloads) steps += progress_steps(w->info(), plan);
    Progress progress(options.progress, steps);

    std::vector<SizeResults> sizes;
    const std::string description = workloads.front()->info().description;
    for (auto& w : workloads) {
      sizes.push_back(measure_size(ctx, *w, plan, profile, progress));
      w.reset();  // its kept layers go before the next size's
      progress.clear();
      print_size_table(stdout, sizes.back(), options.queries, options.runs);
      std::fflush(stdout);
    }
    progress.finish();
    const auto kernels = profile.kernel_totals();
    print_kernel_table(stdout, kernels, profile.dropped_kernels());

    RunSummary run;
    run.device = info;
    run.workload = description;
    run.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    run.validation_messages = ctx->validation_message_count();
    run.dropped_kernels = profile.dropped_kernels();
    if (!options.json_path.empty())
      write_text_file(options.json_path, json::write(report_json(run, options, sizes, kernels), true) + "\n");
    if (!options.trace_path.empty()) write_text_file(options.trace_path, trace_json(profile.events(), info.name));
    if (!options.plot_path.empty())
      write_text_file(options.plot_path,
                      memory_decode_svg(sizes, "vidkv-bench on " + info.name + ": memory and decode time"));
    std::printf("\ndone in %.1f s%s%s%s\n", run.wall_s, options.json_path.empty() ? "" : ("; JSON " + options.json_path).c_str(),
                options.trace_path.empty() ? "" : ("; trace " + options.trace_path).c_str(),
                options.plot_path.empty() ? "" : ("; plot " + options.plot_path).c_str());
    if (run.validation_messages > 0) {
      // With VIDKV_VALIDATION=1 a run is also a validation check: any message fails it.
      for (const auto& m : ctx->validation_messages()) std::fprintf(stderr, "validation: %s\n", m.text.c_str());
      std::fprintf(stderr, "vidkv-bench: %zu validation message(s)\n", run.validation_messages);
      return 1;
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "\nvidkv-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
