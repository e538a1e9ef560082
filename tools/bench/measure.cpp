#include "bench/measure.hpp"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <optional>

#include "bench/attention_reference.hpp"
#include "bench/head_policies.hpp"
#include "bench/random.hpp"
#include "bench/stp_input.hpp"
#include "vidkv/cache.hpp"
#include "vidkv/error.hpp"
#include "vidkv/runtime/commands.hpp"
#include "vidkv/runtime/timestamps.hpp"

namespace vidkv::bench {
namespace {

// The one place a layer enters a cache; with STP, the scores computed from the workload itself.
void prefill_layer(Cache& cache, uint32_t seq, uint32_t layer, const LayerKv& kv, const StpLayerInput* stp) {
  if (stp)
    cache.prefill(seq, layer, kv.keys, kv.values, kv.tokens,
                  CacheStpInput{stp->first_visual, stp->visual_tokens, stp->scores, {}});
  else
    cache.prefill(seq, layer, kv.keys, kv.values, kv.tokens);
}

std::optional<StpLayerInput> stp_for(const CacheSettings& settings, const LayerKv& kv, const WorkloadInfo& info) {
  if (!settings.stp) return std::nullopt;
  return stp_layer_input(kv, info);
}

// A one-layer cache per preset, kept for the timing rounds so that the presets' decode steps can
// interleave (a load change on a shared machine then hits all of them alike).
struct TimingSlot {
  std::string label;
  std::optional<size_t> result;  // index into results; none for a baseline not asked for
  bool fp16 = false;
  std::unique_ptr<Cache> cache;
  std::vector<uint32_t> sequences;  // distinct copies of the timing layer (layer 0 of each)
  uint64_t bytes = 0;               // of one copy
  std::vector<double> ms;           // per layer step
};

// The decode copies' bound: each preset's copies exceed it. 256 MiB is more than any current GPU's
// L2 or Infinity Cache; on a CPU device 64 MiB keeps memory and time modest. 0: a fixed count.
uint64_t cycle_bound(const MeasurePlan& plan, const rt::DeviceInfo& device) {
  if (plan.decode_layers) return 0;
  if (plan.cycle_bytes) return plan.cycle_bytes;
  return (device.type == rt::DeviceType::cpu ? 64ull : 256ull) << 20;
}

// Copies of one layer: the fixed count, or enough to exceed the bound; at most what `share` bytes
// of device memory hold (`capped` says so) and 1024.
uint32_t decode_copies(const MeasurePlan& plan, uint64_t bound, uint64_t layer_bytes, uint64_t share, bool& capped) {
  layer_bytes = std::max<uint64_t>(layer_bytes, 1);
  uint64_t n = plan.decode_layers ? plan.decode_layers : bound / layer_bytes + 1;
  if (share > 0 && n > std::max<uint64_t>(share / layer_bytes, 1)) {
    n = std::max<uint64_t>(share / layer_bytes, 1);
    capped = true;
  }
  return uint32_t(std::min<uint64_t>(n, 1024));
}

// Fills the slot's cache with distinct copies of its one-layer sequence (their own buffers): saved
// once and loaded back as new sequences, a file round trip instead of a prefill per copy.
void add_copies(TimingSlot& slot, uint32_t copies) {
  if (slot.sequences.size() >= copies) return;
  namespace fs = std::filesystem;
  const fs::path file = fs::temp_directory_path() / ("vidkv-bench-" + std::to_string(::getpid()) + "-timing.vkvc");
  slot.cache->save(file.string(), slot.sequences.front());
  try {
    while (slot.sequences.size() < copies) {
      const std::vector<uint32_t> ids = slot.cache->load_sequences(file.string());
      slot.sequences.insert(slot.sequences.end(), ids.begin(), ids.end());
    }
  } catch (...) {
    fs::remove(file);
    throw;
  }
  fs::remove(file);
}

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// workload.layer(l), as a phase of its own the first time (generating or reading a layer takes
// a noticeable share of the run).
const LayerKv& load_layer(Workload& workload, uint32_t layer, RunProfile& profile, const std::string& at) {
  if (workload.kept(layer)) return workload.layer(layer);
  const LayerKv* kv = nullptr;
  profile.phase((workload.info().source == "generator" ? "generate layer " : "read layer ") + std::to_string(layer) + at,
                "workload", [&] { kv = &workload.layer(layer); });
  return *kv;
}

// The preset heads' quantized store and the residual tokens they hold, plus the fp16 stores of
// full and window heads (zero without per-head policies).
uint64_t bytes_held(const CacheStats& s) {
  return s.keys.total() + s.values.total() + s.residual_bytes + s.policies[size_t(HeadPolicy::full)].bytes +
         s.policies[size_t(HeadPolicy::window)].bytes;
}

uint64_t steps_per_preset(const WorkloadInfo& info, const MeasurePlan& plan) {
  return info.layers + 2 * sample_layers(info.layers, plan.error_layers).size() + 1;
}

}  // namespace

uint64_t progress_steps(const WorkloadInfo& info, const MeasurePlan& plan) {
  return sample_layers(info.layers, plan.error_layers).size() +
         plan.presets.size() * plan.runs_per_preset() * steps_per_preset(info, plan) + plan.runs + 1;
}

SizeResults measure_size(const std::shared_ptr<rt::Context>& context, Workload& workload, const MeasurePlan& plan,
                         RunProfile& profile, Progress& progress) {
  const WorkloadInfo info = workload.info();
  SizeResults out;
  out.workload = info;
  out.error_layers = sample_layers(info.layers, plan.error_layers);
  out.timing_layer = info.layers / 2;
  out.cycle_bytes = cycle_bound(plan, context->info());
  const std::string at = " @" + std::to_string(info.tokens);
  const CacheGeometry geometry{info.layers, info.kv_heads, info.q_heads, info.head_dim};

  std::vector<LayerReference> references;
  for (uint32_t l : out.error_layers) {
    const LayerKv& kv = load_layer(workload, l, profile, at);
    profile.phase("reference attention, layer " + std::to_string(l) + at, "reference", [&] {
      references.push_back(attention_reference(kv, info, l, plan.queries, plan.seed));
    });
    progress.step("float64 reference, layer " + std::to_string(l));
  }

  // Each preset, at each sparsity with per-head policies.
  struct Run {
    std::string preset;
    std::optional<double> sparsity;
  };
  std::vector<Run> runs;
  for (const std::string& p : plan.presets) {
    if (!plan.head_policies) runs.push_back({p, std::nullopt});
    else
      for (double s : plan.sparsities) runs.push_back({p, s});
  }

  std::vector<TimingSlot> timing;
  // Half the largest device-local heap for the decode copies, one share per preset and the baseline.
  const uint64_t share = context->info().device_local_bytes / 2 / (runs.size() + 1);
  // One timing slot: a one-layer cache of the timing layer's data, copied into distinct sequences.
  auto make_slot = [&](TimingSlot& slot, const CacheSettings& settings, const LayerKv& kv,
                       const StpLayerInput* stp) {
    slot.cache = std::make_unique<Cache>(context, CacheGeometry{1, info.kv_heads, info.q_heads, info.head_dim},
                                         settings, info.tokens);
    slot.sequences = {slot.cache->create_sequence()};
    prefill_layer(*slot.cache, slot.sequences.front(), 0, kv, stp);
    slot.bytes = bytes_held(slot.cache->stats());
    add_copies(slot, decode_copies(plan, out.cycle_bytes, slot.bytes, share, out.cycle_capped));
  };
  for (const Run& run : runs) {
    PresetResult r;
    r.preset = run.preset;
    r.sparsity = run.sparsity;
    r.tokens = info.tokens;
    r.frames = info.frames;
    const std::string name = r.label();
    CacheSettings settings = parse_settings(run.preset);
    if (plan.head_policies) {
      settings.head_policies = *plan.head_policies;
      settings.head_policies.sparsity = *run.sparsity;
    }
    r.settings = describe(settings);
    uint64_t steps_left = steps_per_preset(info, plan);
    auto step = [&](const std::string& what) {
      progress.step(name + ": " + what);
      --steps_left;
    };
    // What the cache refuses is "unsupported" (at construction, or an unsupported_bits /
    // missing_feature error later); anything else "failed". Stages done so far stay reported.
    auto stop = [&](const Error& e, bool at_construction) {
      const bool unsupported = at_construction || e.code() == ErrorCode::unsupported_bits ||
                               e.code() == ErrorCode::missing_feature;
      r.error = std::string(unsupported ? "unsupported: " : "failed: ") + e.what();
      progress.step(name + (unsupported ? ": unsupported" : ": failed"), steps_left);
    };
    std::unique_ptr<Cache> cache;
    try {
      cache = std::make_unique<Cache>(context, geometry, settings, info.tokens);
    } catch (const Error& e) {
      stop(e, true);
      out.results.push_back(r);
      continue;
    }
    try {
      const uint32_t seq = cache->create_sequence();
      for (uint32_t l = 0; l < info.layers; ++l) {
        const LayerKv& kv = load_layer(workload, l, profile, at);
        const auto stp = stp_for(settings, kv, info);
        const PhaseTimes t = profile.phase(name + " prefill, layer " + std::to_string(l) + at, "prefill",
                                           [&] { prefill_layer(*cache, seq, l, kv, stp ? &*stp : nullptr); });
        r.prefill_ms += t.host_ms;
        r.prefill_gpu_ms += t.gpu_sum_ms;
        step("prefill layer " + std::to_string(l));
      }
      const CacheStats stats = cache->stats();
      r.bits_k = stats.key_bits;
      r.bits_v = stats.value_bits;
      r.bytes = bytes_held(stats);
      r.fp16_bytes = stats.fp16_equivalent_bytes;
      r.residual_bytes = stats.residual_bytes;
      r.bits_total = r.fp16_bytes ? 16.0 * double(r.bytes) / double(r.fp16_bytes) : 0.0;
      for (size_t p = 0; p < 3; ++p) {
        r.policy_heads[p] = stats.policies[p].heads;
        r.policy_bytes[p] = stats.policies[p].bytes;
      }
      r.done = Stage::stored;

      ErrorSum keys, values, attention;
      for (const LayerReference& ref : references) {
        const LayerKv& kv = load_layer(workload, ref.layer, profile, at);
        std::vector<uint16_t> k, v;
        profile.phase(name + " dequantize, layer " + std::to_string(ref.layer) + at, "dequantize",
                      [&] { cache->dequantize(seq, ref.layer, k, v); });
        keys.add_halves(k, kv.keys);
        values.add_halves(v, kv.values);
        step("K/V error, layer " + std::to_string(ref.layer));
      }
      r.k_rel_l2 = keys.relative();
      r.v_rel_l2 = values.relative();
      r.done = Stage::reconstructed;
      for (const LayerReference& ref : references) {
        for (size_t i = 0; i < ref.queries.size(); ++i) {
          std::vector<float> o;
          profile.phase(name + " attention, layer " + std::to_string(ref.layer) + at, "attention",
                        [&] { o = cache->attention(seq, ref.layer, ref.queries[i]); });
          r.attn_rel_err_max = std::max(r.attn_rel_err_max, attention.add(o, ref.outputs[i]));
        }
        step("attention error, layer " + std::to_string(ref.layer));
      }
      r.attn_rel_err = attention.relative();
      r.done = Stage::attended;
      cache.reset();  // its memory goes back before the next preset's cache is made

      // The timing cache is one layer: with per-head policies its heads take the timing layer's
      // policies, so that the step timed is that layer's, one attention pass per policy in it.
      CacheSettings one_layer = settings;
      if (plan.head_policies) {
        one_layer.head_policies =
            layer_policy_spec(settings.head_policies, info.layers, info.kv_heads, out.timing_layer);
        r.timing_policies = one_layer.head_policies.heads;
      }
      TimingSlot slot;
      slot.label = name;
      slot.result = out.results.size();
      // The speed-up's baseline is the plain fp16 cache, not fp16 heads under policies.
      slot.fp16 = settings.key_mode == CacheSettings::KeyMode::fp16 && settings.head_policies.uniform();
      const LayerKv& kv = load_layer(workload, out.timing_layer, profile, at);
      const auto stp = stp_for(settings, kv, info);
      make_slot(slot, one_layer, kv, stp ? &*stp : nullptr);
      timing.push_back(std::move(slot));
      step("timing cache");
    } catch (const Error& e) {
      stop(e, false);
    }
    out.results.push_back(r);
  }

  // The speed-up needs the fp16 shader even when the fp16 preset was not asked for.
  if (std::none_of(timing.begin(), timing.end(), [](const TimingSlot& s) { return s.fp16; })) {
    TimingSlot slot;
    slot.label = "fp16 (baseline)";
    slot.fp16 = true;
    make_slot(slot, preset("fp16"), load_layer(workload, out.timing_layer, profile, at), nullptr);
    timing.push_back(std::move(slot));
  }

  // Decode rounds: a buffer copy of one layer's fp16 K and V (the bytes the fp16 shader reads), or
  // of the cycle bound if that is more (a copy out of a cache would flatter the bandwidth), then
  // each preset's cycled layers; the first round warms up and is not counted.
  out.copy_bytes = std::max<uint64_t>({uint64_t(info.tokens) * info.kv_heads * info.head_dim * 2 * 2, 1u << 20,
                                       std::min(out.cycle_bytes, share) / 4 * 4});
  rt::Buffer copy_src(context, out.copy_bytes), copy_dst(context, out.copy_bytes);
  rt::CommandRunner runner(context);
  std::optional<rt::TimestampQueries> stamps;
  if (profile.has_gpu_timestamps()) stamps.emplace(context, 2);
  Rng rng(plan.seed, {0x7e});
  std::vector<float> q(size_t(info.q_heads) * info.head_dim);
  for (auto& x : q) x = rng.normal();
  rt::Buffer q_buffer(context, q.size() * 4), out_buffer(context, q.size() * 4);
  q_buffer.upload(q.data(), q.size() * 4);
  std::vector<double> copy_ms;
  for (uint32_t round = 0; round <= plan.runs; ++round) {
    if (stamps) {
      double ms = 0;
      profile.phase("buffer copy" + at, "copy", [&] {
        runner.run([&](VkCommandBuffer cmd) {
          stamps->reset(cmd);
          stamps->write(cmd, 0);
          rt::record_copy(cmd, copy_src.view(), copy_dst.view(), out.copy_bytes);
          stamps->write(cmd, 1);
        });
        ms = stamps->elapsed_ms(0, 1);
      });
      profile.add_gpu_interval("buffer copy", "copy", ms);
      if (round > 0) copy_ms.push_back(ms);
    }
    for (TimingSlot& slot : timing) {
      // One command buffer: every copy once, a barrier between them (as between a model's layers).
      const PhaseTimes t = profile.phase(slot.label + " decode" + at, "decode", [&] {
        runner.run([&](VkCommandBuffer cmd) {
          rt::transfer_to_compute_barrier(cmd);
          for (size_t i = 0; i < slot.sequences.size(); ++i) {
            if (i > 0) rt::compute_to_compute_barrier(cmd);
            slot.cache->record_attention(cmd, slot.sequences[i], 0, q_buffer.view(), out_buffer.view());
          }
        });
        slot.cache->release_retired();
      });
      // Device time of the attention kernels per layer step; wall time only on a device without timestamps.
      const double n = double(slot.sequences.size());
      if (round > 0) slot.ms.push_back((t.kernels > 0 ? t.gpu_span_ms : t.host_ms) / n);
    }
    progress.step("decode round " + std::to_string(round));
  }
  out.copy_ms = median(copy_ms);
  out.copy_gbps = out.copy_ms > 0 ? double(out.copy_bytes) / (out.copy_ms * 1e6) : 0.0;
  double fp16_ms = 0;
  for (const TimingSlot& s : timing)
    if (s.fp16) fp16_ms = median(s.ms);
  for (const TimingSlot& s : timing) {
    if (!s.result) continue;
    PresetResult& r = out.results[*s.result];
    r.done = Stage::timed;
    r.decode_ms = median(s.ms);
    r.fp16_decode_ms = fp16_ms;
    r.speedup_vs_fp16 = r.decode_ms > 0 ? fp16_ms / r.decode_ms : 0.0;
    r.decode_bytes = s.bytes;
    r.decode_layers = uint32_t(s.sequences.size());
    r.decode_cycled_bytes = s.bytes * s.sequences.size();
    r.achieved_gbps = r.decode_ms > 0 ? double(s.bytes) / (r.decode_ms * 1e6) : 0.0;
    r.copy_gbps = out.copy_gbps;
  }
  return out;
}

}  // namespace vidkv::bench
