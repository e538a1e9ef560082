// vidkv-bench --sequences: batched decode steps against per-sequence calls and fp16 (batch_decode.hpp).
#include "bench/batch_decode.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "common/attention_checks.hpp"
#include "vidkv/cache.hpp"
#include "vidkv/error.hpp"
#include "vidkv/presets.hpp"

namespace vidkv::bench {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

double p99(std::vector<double> v) {  // nearest rank
  std::sort(v.begin(), v.end());
  if (v.empty()) return 0.0;
  const size_t rank = size_t(std::ceil(0.99 * double(v.size())));
  return v[std::max<size_t>(rank, 1) - 1];
}

struct StepTimes {
  std::vector<double> all, flushing;
};

// `warmup` untimed appends and two untimed steps (the cache's pipelines and scratch, a flush's
// included), then `steps` timed decode steps over `count` sequences prefilled with the same
// tokens; batched or not.
StepTimes run_steps(const std::shared_ptr<rt::Context>& ctx, const CacheSettings& settings,
                    const BatchDecodeGeometry& g, const tools::RandomKv& prefill, uint32_t count, uint32_t warmup,
                    uint32_t steps, bool batched, uint64_t seed) {
  const CacheGeometry cg{1, g.kv_heads, g.q_heads, g.head_dim};
  Cache cache(ctx, cg, settings, g.tokens + warmup + steps + 3);
  std::vector<uint32_t> ids;
  for (uint32_t i = 0; i < count; ++i) {
    ids.push_back(cache.create_sequence());
    if (settings.stp) {
      cache.prefill(ids.back(), 0, prefill.keys, prefill.values, g.tokens, CacheStpInput{});
    } else {
      cache.prefill(ids.back(), 0, prefill.keys, prefill.values, g.tokens);
    }
  }
  const uint64_t halves = uint64_t(g.kv_heads) * g.head_dim, floats = uint64_t(g.q_heads) * g.head_dim;
  const tools::RandomKv tokens = tools::random_kv(g.kv_heads, count, g.head_dim, seed);
  std::vector<float> q(count * floats);
  for (size_t i = 0; i < q.size(); ++i) q[i] = float((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
  std::vector<std::vector<uint16_t>> k1(count), v1(count);
  std::vector<std::vector<float>> q1(count);
  for (uint32_t i = 0; i < count; ++i) {
    k1[i].assign(tokens.keys.begin() + i * halves, tokens.keys.begin() + (i + 1) * halves);
    v1[i].assign(tokens.values.begin() + i * halves, tokens.values.begin() + (i + 1) * halves);
    q1[i].assign(q.begin() + i * floats, q.begin() + (i + 1) * floats);
  }
  StepTimes t;
  const bool quantized = settings.key_mode != CacheSettings::KeyMode::fp16;
  // Warm-up: appends only (a residual's worth makes the flush's pipelines), then two whole steps.
  for (uint32_t s = 0; s < warmup; ++s) {
    if (batched) {
      cache.append_batch(0, ids, tokens.keys, tokens.values);
    } else {
      for (uint32_t i = 0; i < count; ++i) cache.append(ids[i], 0, k1[i], v1[i]);
    }
  }
  for (uint32_t s = 0; s < 2 + steps; ++s) {
    const uint32_t before = cache.stats().segments;
    const auto start = Clock::now();
    if (batched) {
      cache.append_batch(0, ids, tokens.keys, tokens.values);
      cache.attention_batch(0, ids, q);
    } else {
      for (uint32_t i = 0; i < count; ++i) cache.append(ids[i], 0, k1[i], v1[i]);
      for (uint32_t i = 0; i < count; ++i) cache.attention(ids[i], 0, q1[i]);
    }
    const double ms = ms_since(start);
    if (s < 2) continue;
    t.all.push_back(ms);
    if (quantized && cache.stats().segments != before) t.flushing.push_back(ms);
  }
  return t;
}

double mean(const std::vector<double>& v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
}

}  // namespace

std::vector<BatchDecodeResult> measure_batch_decode(const std::shared_ptr<rt::Context>& ctx,
                                                    const BatchDecodeGeometry& g,
                                                    const std::vector<std::string>& presets,
                                                    const std::vector<uint32_t>& sequences, uint64_t seed) {
  const tools::RandomKv prefill = tools::random_kv(g.kv_heads, g.tokens, g.head_dim, seed);
  std::vector<BatchDecodeResult> out;
  for (uint32_t count : sequences) {
    double fp16_ms = 0;
    // fp16 first: every other preset's row compares against it.
    uint32_t fp16_residual = 128;
    for (const std::string& p : presets) {
      try {
        const CacheSettings s = parse_settings(p);
        if (s.key_mode != CacheSettings::KeyMode::fp16) {
          fp16_residual = s.residual_length;
          break;
        }
      } catch (const Error&) {
      }
    }
    std::vector<std::string> order = {"fp16"};
    for (const std::string& p : presets)
      if (p != "fp16") order.push_back(p);
    for (const std::string& name : order) {
      BatchDecodeResult r;
      r.preset = name;
      r.sequences = count;
      r.tokens = g.tokens;
      try {
        const CacheSettings settings = parse_settings(name);
        // A residual's worth of warm-up appends (a flush among them), then a residual's worth of
        // timed steps: one in which every sequence flushes (fp16, which never flushes, takes the
        // first other preset's count).
        const uint32_t residual = settings.key_mode == CacheSettings::KeyMode::fp16 ? fp16_residual
                                                                                  : settings.residual_length;
        const uint32_t warmup = residual;
        r.steps = residual;
        const StepTimes b = run_steps(ctx, settings, g, prefill, count, warmup, r.steps, true, seed + 1);
        // fp16 per-sequence only when fp16 itself was asked for (its batched time is the baseline).
        const bool asked = std::find(presets.begin(), presets.end(), name) != presets.end();
        const StepTimes u = asked ? run_steps(ctx, settings, g, prefill, count, warmup, r.steps, false, seed + 1)
                                  : StepTimes{};
        r.step_ms = median(b.all);
        r.step_p99_ms = p99(b.all);
        r.flush_step_ms = mean(b.flushing);
        r.unbatched_step_ms = median(u.all);
        r.unbatched_step_p99_ms = p99(u.all);
        r.unbatched_flush_step_ms = mean(u.flushing);
        if (name == "fp16") fp16_ms = r.step_ms;
      } catch (const Error& e) {
        r.error = e.what();
      }
      r.fp16_step_ms = fp16_ms;
      if (std::find(presets.begin(), presets.end(), name) != presets.end()) out.push_back(r);
    }
  }
  return out;
}

void print_batch_table(std::FILE* out, const std::vector<BatchDecodeResult>& results) {
  std::fprintf(out, "batched decode: one step of one layer (append + attention) per sequence, wall time\n");
  std::fprintf(out, "%-16s %5s %7s %9s %9s %9s %11s %9s %9s %9s\n", "preset", "seqs", "tokens", "step ms",
               "p99 ms", "flush ms", "unbatched", "x unbat", "fp16 ms", "x fp16");
  for (const BatchDecodeResult& r : results) {
    if (!r.error.empty()) {
      std::fprintf(out, "%-16s %5u %7u  %s\n", r.preset.c_str(), r.sequences, r.tokens, r.error.c_str());
      continue;
    }
    std::fprintf(out, "%-16s %5u %7u %9.3f %9.3f %9.3f %11.3f %9.2f %9.3f %9.2f\n", r.preset.c_str(), r.sequences,
                 r.tokens, r.step_ms, r.step_p99_ms, r.flush_step_ms, r.unbatched_step_ms, r.speedup_vs_unbatched(),
                 r.fp16_step_ms, r.speedup_vs_fp16());
  }
}

json::Value batch_results_json(const std::vector<BatchDecodeResult>& results) {
  json::Value arr = json::Value::array();
  for (const BatchDecodeResult& r : results) {
    json::Value o = json::Value::object();
    o.set("preset", r.preset);
    o.set("sequences", r.sequences);
    o.set("tokens", r.tokens);
    o.set("steps", r.steps);
    const bool ok = r.error.empty();
    auto num = [&](const char* key, double v) { o.set(key, ok ? json::Value(v) : json::Value(nullptr)); };
    num("step_ms", r.step_ms);
    num("step_p99_ms", r.step_p99_ms);
    num("flush_step_ms", r.flush_step_ms);
    num("unbatched_step_ms", r.unbatched_step_ms);
    num("unbatched_step_p99_ms", r.unbatched_step_p99_ms);
    num("unbatched_flush_step_ms", r.unbatched_flush_step_ms);
    num("fp16_step_ms", r.fp16_step_ms);
    num("speedup_vs_unbatched", r.speedup_vs_unbatched());
    num("speedup_vs_fp16", r.speedup_vs_fp16());
    if (!ok) o.set("error", r.error);
    arr.push_back(o);
  }
  return arr;
}

}  // namespace vidkv::bench
