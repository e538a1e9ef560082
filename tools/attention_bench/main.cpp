// vidkv-attention-bench: one decode step of one layer (LLaVA-OneVision-7B geometry by default:
// 4 KV heads, 28 query heads, D = 128) on the default device: the fp16 attention shader beside
// fused VidKV attention over the packed cache (k1.5-v1.58, with and without semantic token
// protection, k1.5-v2 and 2bit), timed with GPU timestamps (median of --runs), with the bytes
// each reads, the achieved bandwidth, and a buffer copy's bandwidth measured in the same run. Speed only: the packed data is random (the shaders' work
// does not depend on the values); correctness is the tests' job.
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "vidkv/error.hpp"
#include "vidkv/gpu_attention.hpp"
#include "vidkv/runtime/commands.hpp"
#include "vidkv/runtime/context.hpp"
#include "vidkv/runtime/timestamps.hpp"
#include "vidkv/ternary_pack.hpp"
#include "policy_cases.hpp"

using namespace vidkv;

namespace {

struct Options {
  uint32_t tokens = 32768, kv_heads = 4, q_heads = 28, dim = 128, runs = 7, split = 0;  // split 0: the library's default
  std::vector<std::string> only;  // --case: run only these presets (copy and fp16 always run)
  bool portable = false;          // --portable: the shaders GPUs run, even on a subgroup-of-8 device
  bool policies = false;          // --policies: also whole caches with per-head policies (policy_cases.hpp)
  bool wanted(const std::string& name) const {
    return only.empty() || std::find(only.begin(), only.end(), name) != only.end();
  }
};

std::unique_ptr<rt::Buffer> random_buffer(const std::shared_ptr<rt::Context>& ctx, uint64_t bytes, bool halves,
                                          std::mt19937_64& rng) {
  bytes = std::max<uint64_t>((bytes + 3) / 4 * 4, 16);
  std::vector<uint16_t> data(bytes / 2);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (auto& h : data) {
    // finite halves around 1 for values and scales (random sign and mantissa), raw bits for codes
    h = halves ? uint16_t(0x3800u | (rng() & 0x83ffu)) : uint16_t(rng());
  }
  auto buffer = std::make_unique<rt::Buffer>(ctx, bytes);
  buffer->upload(data.data(), bytes);
  return buffer;
}

// CPU milliseconds this process has used (user + system).
double cpu_ms() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e3 + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-3;
}

// GPU milliseconds of one recorded run; `cpu` gets the process's CPU milliseconds meanwhile (on a
// CPU device such as lavapipe the work itself, unaffected by other processes on the machine).
double run_once(rt::CommandRunner& runner, rt::TimestampQueries& ts, const std::function<void(VkCommandBuffer)>& record,
                double& cpu) {
  const double cpu0 = cpu_ms();
  runner.run([&](VkCommandBuffer cmd) {
    ts.reset(cmd);
    ts.write(cmd, 0);
    record(cmd);
    ts.write(cmd, 1);
  });
  cpu = cpu_ms() - cpu0;
  return ts.elapsed_ms(0, 1);
}

struct Case {
  std::string name;
  uint64_t bytes = 0;  // bytes read per run
  std::function<void(VkCommandBuffer)> record;
  std::vector<double> ms, cpu;
  double median_cpu() {
    std::sort(cpu.begin(), cpu.end());
    return cpu[cpu.size() / 2];
  }
  double median() {
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
  }
  double min() { return *std::min_element(ms.begin(), ms.end()); }
};

struct Layer {
  QuantizedLayerBuffers buffers;
  uint64_t bytes = 0;  // packed bytes + residual bytes read per step
  std::vector<std::unique_ptr<rt::Buffer>> owned;
};

// Random trit bytes for `shape` (5 digits per byte, as trit_pack writes them).
std::vector<uint8_t> random_trits(const TensorShape& shape, std::mt19937_64& rng) {
  std::vector<uint8_t> bytes(trit_packed_bytes(shape, 32));
  for (auto& d : bytes) {
    uint8_t five[5];
    for (auto& x : five) x = uint8_t(rng() % 3);
    d = pack_trit_byte(five);
  }
  return bytes;
}

// One quantized segment of all tokens (a multiple of 32) plus T mod 32 residual tokens. For
// ternary_stp, a fifth of the segment's tokens (whole groups), spread at random, are protected.
Layer make_layer(const std::shared_ptr<rt::Context>& ctx, const Options& o, double nbits, ValueFormat values,
                 std::mt19937_64& rng) {
  Layer l;
  const uint32_t H = o.kv_heads, D = o.dim, Tq = o.tokens / 32 * 32, R = o.tokens - Tq;
  l.buffers.keys = KeySpec{nbits, 32, ChannelScope::head, FftLayout::half};
  l.buffers.values = values;
  const uint32_t k = anomalous_channel_count(l.buffers.keys, D), S = coefficient_streams(FftLayout::half, D - k);
  std::vector<uint32_t> channels;
  for (uint32_t h = 0; h < H; ++h)
    for (uint32_t c = 0; c < D; ++c) channels.push_back(c);  // any partition: the first k are anomalous
  l.owned.push_back(std::make_unique<rt::Buffer>(ctx, channels.size() * 4));
  l.owned.back()->upload(channels.data(), channels.size() * 4);
  l.buffers.channels = l.owned.back()->view();
  auto add = [&](uint64_t bytes, bool halves) {
    l.owned.push_back(random_buffer(ctx, bytes, halves, rng));
    l.bytes += bytes;
    return l.owned.back()->view();
  };
  QuantizedSegmentBuffers seg;
  seg.tokens = Tq;
  if (Tq > 0) {
    if (k > 0) {
      const PackedBytes b = packed_bytes({QuantBits::b2, QuantAxis::channel, 32}, {H, Tq, k});
      seg.key_anomalous = {add(b.codes, false), add(b.scales, true), add(b.mins, true)};
    }
    if (S > 0) {
      const PackedBytes b = packed_bytes({QuantBits::b1, QuantAxis::channel, 32}, {H, Tq, S});
      seg.key_normal = {add(b.codes, false), add(b.scales, true), {}};
    }
    const uint32_t n = values == ValueFormat::ternary_stp ? uint32_t(std::lround(0.2 * Tq / 32)) * 32 : 0;
    const TensorShape vshape{H, Tq - n, D};
    if (values == ValueFormat::ternary_trits || values == ValueFormat::ternary_stp) {
      const std::vector<uint8_t> digits = random_trits(vshape, rng);
      l.owned.push_back(std::make_unique<rt::Buffer>(ctx, std::max<uint64_t>((digits.size() + 3) / 4 * 4, 16)));
      if (!digits.empty()) l.owned.back()->upload(digits.data(), digits.size());
      l.bytes += digits.size();
      seg.values.codes = l.owned.back()->view();
      seg.values.scales = add(packed_bytes({QuantBits::b1_58, QuantAxis::channel, 32}, vshape).scales, true);
    } else {
      const PackedBytes b = packed_bytes({QuantBits::b2, QuantAxis::channel, 32}, vshape);
      seg.values = {add(b.codes, false), add(b.scales, true), add(b.mins, true)};
    }
    if (n > 0) {
      const PackedBytes b = packed_bytes({QuantBits::b2, QuantAxis::channel, 32}, {H, n, D});
      seg.values_high = {add(b.codes, false), add(b.scales, true), add(b.mins, true)};
      std::vector<uint32_t> order(Tq), map(Tq);
      for (uint32_t t = 0; t < Tq; ++t) order[t] = t;
      std::shuffle(order.begin(), order.end(), rng);
      std::vector<bool> is_protected(Tq, false);
      for (uint32_t i = 0; i < n; ++i) is_protected[order[i]] = true;
      uint32_t high = 0, low = 0;
      for (uint32_t t = 0; t < Tq; ++t) map[t] = is_protected[t] ? (high++ | 0x80000000u) : low++;
      l.owned.push_back(std::make_unique<rt::Buffer>(ctx, uint64_t(Tq) * 4));
      l.owned.back()->upload(map.data(), uint64_t(Tq) * 4);
      l.bytes += uint64_t(Tq) * 4;
      seg.token_map = l.owned.back()->view();
      seg.protected_tokens = n;
    }
    l.buffers.segments.push_back(seg);
  }
  if (R > 0) {
    const uint64_t bytes = uint64_t(R) * H * D * 2;
    l.buffers.residual = {R, add(bytes, true), add(bytes, true)};
  }
  return l;
}

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](uint32_t& dst) {
      if (i + 1 >= argc) return false;
      dst = uint32_t(std::strtoul(argv[++i], nullptr, 10));
      return true;
    };
    bool ok = true;
    if (a == "--tokens") ok = value(o.tokens);
    else if (a == "--runs") ok = value(o.runs);
    else if (a == "--split") ok = value(o.split);
    else if (a == "--kv-heads") ok = value(o.kv_heads);
    else if (a == "--q-heads") ok = value(o.q_heads);
    else if (a == "--dim") ok = value(o.dim);
    else if (a == "--case" && i + 1 < argc) o.only.push_back(argv[++i]);
    else if (a == "--portable") o.portable = true;
    else if (a == "--policies") o.policies = true;
    else ok = false;
    if (!ok) {
      std::fprintf(stderr,
                   "usage: vidkv-attention-bench [--tokens N] [--runs N] [--split N] [--kv-heads N] [--q-heads N] "
                   "[--dim N] [--case PRESET]... [--portable] [--policies]\n");
      return false;
    }
  }
  return o.runs > 0 && o.tokens > 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, o)) return 2;
  try {
    auto ctx = rt::Context::create();
    std::printf("device: %s (%s)\n", ctx->info().name.c_str(), ctx->info().driver_info.c_str());
    std::mt19937_64 rng(1);
    GpuAttention attention(ctx);
    attention.set_portable(o.portable);
    if (o.split != 0) attention.set_split_tokens(o.split);
    std::printf("shaders: %s\n", attention.subgroup8_path() ? "subgroup-of-8 path (attention_*_sg8.comp)"
                                                             : "portable path (attention_fp16.comp, attention_vidkv.comp)");
    std::printf("layer: %u KV heads, %u query heads, dim %u, %u tokens, split %u, median of %u runs\n",
                o.kv_heads, o.q_heads, o.dim, o.tokens, attention.split_tokens(), o.runs);

    rt::CommandRunner runner(ctx);
    rt::TimestampQueries ts(ctx, 2);
    const AttentionGeometry g{o.kv_heads, o.q_heads, o.dim};
    const uint64_t q_bytes = uint64_t(o.q_heads) * o.dim * 4;
    auto q = random_buffer(ctx, q_bytes, true, rng);
    rt::Buffer out(ctx, q_bytes);

    const uint64_t kv_bytes = uint64_t(o.tokens) * o.kv_heads * o.dim * 2;
    auto keys = random_buffer(ctx, kv_bytes, true, rng), values = random_buffer(ctx, kv_bytes, true, rng);
    rt::Buffer copy_dst(ctx, 2 * kv_bytes);
    auto copy_src = random_buffer(ctx, 2 * kv_bytes, false, rng);
    std::vector<Case> cases;
    cases.push_back({"copy", 2 * kv_bytes, [&](VkCommandBuffer cmd) {
                       rt::record_copy(cmd, copy_src->view(), copy_dst.view(), 2 * kv_bytes);
                     }});
    const Fp16KvBuffers kv{o.tokens, keys->view(), values->view()};
    rt::Buffer fp16_partials(ctx, attention.partial_bytes_fp16(g, o.tokens));
    cases.push_back({"fp16", 2 * kv_bytes, [&](VkCommandBuffer cmd) {
                       attention.record_fp16(cmd, g, kv, q->view(), fp16_partials.view(), out.view());
                     }});
    const struct {
      const char* name;
      double nbits;
      ValueFormat values;
    } presets[] = {{"k1.5-v1.58", 1.5, ValueFormat::ternary_trits},
                   {"k1.5-v1.58-stp", 1.5, ValueFormat::ternary_stp},
                   {"k1.5-v2", 1.5, ValueFormat::b2_channel},
                   {"2bit", 2.0, ValueFormat::b2_channel}};
    std::vector<Layer> layers;
    std::vector<std::unique_ptr<rt::Buffer>> partials;
    layers.reserve(std::size(presets));
    for (const auto& p : presets) {
      if (!o.wanted(p.name)) continue;
      layers.push_back(make_layer(ctx, o, p.nbits, p.values, rng));
      Layer* layer = &layers.back();
      partials.push_back(std::make_unique<rt::Buffer>(ctx, attention.partial_bytes(g, layer->buffers)));
      rt::Buffer* scratch = partials.back().get();
      cases.push_back({p.name, layer->bytes, [&, layer, scratch](VkCommandBuffer cmd) {
                         attention.record_vidkv(cmd, g, layer->buffers, q->view(), scratch->view(), out.view());
                       }});
    }
    std::vector<std::unique_ptr<Cache>> caches;
    if (o.policies) {
      // The fp16 K/V above are finite halves around 1: a real prefill input.
      for (auto& c : tools::make_policy_cases(ctx, {o.tokens, o.kv_heads, o.q_heads, o.dim, keys->view(0, kv_bytes),
                                                    values->view(0, kv_bytes), q->view(0, q_bytes), out.view()},
                                              caches)) {
        cases.push_back({c.name, c.bytes, c.record});
      }
    }
    // Runs interleave the cases (one warm-up round first), so a load change on the machine hits
    // all of them alike; medians per case.
    for (uint32_t i = 0; i <= o.runs; ++i)
      for (Case& c : cases) {
        double cpu = 0;
        const double ms = run_once(runner, ts, c.record, cpu);
        if (i > 0) {
          c.ms.push_back(ms);
          c.cpu.push_back(cpu);
        }
      }
    const double copy_ms = cases[0].median(), copy_gbs = cases[0].bytes / (copy_ms * 1e6);
    const double fp16_ms = cases[1].median();
    std::printf("%-15s %9.3f ms  %9.2f MB read  %8.2f GB/s (bytes read per second; as many written)\n", "copy",
                copy_ms, cases[0].bytes / 1e6, copy_gbs);
    for (size_t i = 1; i < cases.size(); ++i) {
      const double ms = cases[i].median(), gbs = cases[i].bytes / (ms * 1e6);
      std::printf("%-15s %9.3f ms  %9.2f MB read  %8.2f GB/s (%5.1f%% of copy)  speed-up vs fp16 %5.2fx"
                  "  (min %.3f ms, %.2fx; process CPU %.1f ms, %.2fx)\n",
                  cases[i].name.c_str(), ms, cases[i].bytes / 1e6, gbs, 100.0 * gbs / copy_gbs, fp16_ms / ms,
                  cases[i].min(), cases[1].min() / cases[i].min(), cases[i].median_cpu(),
                  cases[1].median_cpu() / cases[i].median_cpu());
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
