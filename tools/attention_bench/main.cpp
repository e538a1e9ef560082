// vidkv-attention-bench: the decode step of one layer (LLaVA-OneVision-7B geometry by default:
// 4 KV heads, 28 query heads, D = 128) on the default device: the fp16 attention shader beside
// fused VidKV attention over the packed cache (k1.5-v1.58, with and without semantic token
// protection, k1.5-v2 and 2bit), timed with GPU timestamps (median of --runs), with the bytes
// each reads, the achieved bandwidth, and a buffer copy's bandwidth measured in the same run.
// Each run cycles through distinct copies of the layer (distinct buffers) until their bytes exceed
// a last-level-cache bound, so that no case is timed out of a GPU's L2 (one 32768-token layer of
// k1.5-v1.58 is 9 MB, of fp16 67 MB: timing one layer again and again flatters the packed cache).
// Speed only: the packed data is random (the shaders' work does not depend on the values);
// correctness is the tests' job.
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

// At most this many copies of a layer per case: beyond it a run's per-layer overhead is all that
// a larger count would change (and memory runs out first on most devices).
constexpr uint32_t kMaxLayers = 1024;

// The quantized cases (fp16 and the copy always run).
struct PresetCase {
  const char* name;
  double nbits;
  ValueFormat values;
};
const PresetCase kPresets[] = {{"k1.5-v1.58", 1.5, ValueFormat::ternary_trits},
                               {"k1.5-v1.58-stp", 1.5, ValueFormat::ternary_stp},
                               {"k1.5-v2", 1.5, ValueFormat::b2_channel},
                               {"2bit", 2.0, ValueFormat::b2_channel},
                               {"kivi", 2.0, ValueFormat::b2_token}};
// What --case accepts: a preset, "fp16", or "none" (copy and fp16 only).
bool known_case(const std::string& name) {
  if (name == "fp16" || name == "none") return true;
  for (const PresetCase& p : kPresets)
    if (name == p.name) return true;
  return false;
}

struct Options {
  uint32_t tokens = 32768, kv_heads = 4, q_heads = 28, dim = 128, runs = 7, split = 0;  // split 0: the library's default
  uint32_t layers = 0;       // --layers: distinct layer copies every case cycles through; 0: by --cycle-bytes
  uint64_t cycle_bytes = 0;  // --cycle-bytes: each case cycles through layers until their bytes exceed this; 0: device default
  bool markdown = false;     // --markdown: also the results as markdown table rows (scripts/gpu-check)
  std::vector<std::string> only;  // --case: run only these presets (copy and fp16 always run)
  bool portable = false;          // --portable: the shaders GPUs run, even on a subgroup-of-8 device
  bool policies = false;          // --policies: also whole caches with per-head policies (policy_cases.hpp)
  // --causal N: also, per case, causal attention of the newest N tokens (one set of dispatches,
  // workgroup z = query) beside N single-token attentions recorded one after another.
  uint32_t causal = 0;
  uint32_t group = 32;  // --group: the quantized layers' key and value group size (32, 64 or 128)
  bool wanted(const std::string& name) const {
    return only.empty() || std::find(only.begin(), only.end(), name) != only.end();
  }
};

std::unique_ptr<rt::Buffer> random_buffer(const std::shared_ptr<rt::Context>& ctx, uint64_t bytes, bool halves,
                                          std::mt19937_64& rng) {
  bytes = std::max<uint64_t>((bytes + 3) / 4 * 4, 16);
  std::vector<uint16_t> data(bytes / 2);
  uint64_t bits = 0;
  for (size_t i = 0; i < data.size(); ++i) {
    // Four halves per draw (every layer copy is generated: speed matters). Finite halves around 1
    // for values and scales (random sign and mantissa), raw bits for codes.
    if (i % 4 == 0) bits = rng();
    const uint16_t h = uint16_t(bits >> (16 * (i % 4)));
    data[i] = halves ? uint16_t(0x3800u | (h & 0x83ffu)) : h;
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

// One timed case: `record` records one step over layer copy `layer` (0..layers-1).
struct Case {
  std::string name;
  uint64_t bytes = 0;   // bytes read per layer step
  uint32_t layers = 1;  // distinct layer copies each run cycles through
  std::function<void(VkCommandBuffer, uint32_t layer)> record;
  std::vector<double> ms, cpu;  // per layer step: each run's time over its layers
  uint64_t cycled_bytes() const { return bytes * layers; }
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

// One run of a case: every layer copy once, in one command buffer, a barrier between layers (as in
// a model, where a layer's attention waits for the previous layer), timestamps around the whole.
// Records GPU ms per layer step and the process's CPU ms per layer step meanwhile (on a CPU device
// such as lavapipe the work itself, unaffected by other processes on the machine).
void run_once(rt::CommandRunner& runner, rt::TimestampQueries& ts, Case& c, bool keep) {
  const double cpu0 = cpu_ms();
  runner.run([&](VkCommandBuffer cmd) {
    ts.reset(cmd);
    ts.write(cmd, 0);
    for (uint32_t l = 0; l < c.layers; ++l) {
      if (l > 0) rt::compute_to_compute_barrier(cmd);
      c.record(cmd, l);
    }
    ts.write(cmd, 1);
  });
  const double cpu = cpu_ms() - cpu0;
  if (!keep) return;
  c.ms.push_back(ts.elapsed_ms(0, 1) / c.layers);
  c.cpu.push_back(cpu / c.layers);
}

struct Layer {
  QuantizedLayerBuffers buffers;
  uint64_t bytes = 0;  // packed bytes + residual bytes read per step
  std::vector<std::unique_ptr<rt::Buffer>> owned;
};

// Random trit bytes for `shape` (5 digits per byte, as trit_pack writes them).
std::vector<uint8_t> random_trits(const TensorShape& shape, uint32_t group, std::mt19937_64& rng) {
  std::vector<uint8_t> bytes(trit_packed_bytes(shape, group));
  uint64_t draw = 0;
  uint32_t left = 0;
  for (auto& d : bytes) {
    uint8_t five[5];
    for (auto& x : five) {
      if (left == 0) {  // 40 base-3 digits per 64-bit draw (3^40 < 2^64; the bias is negligible here)
        draw = rng();
        left = 40;
      }
      x = uint8_t(draw % 3);
      draw /= 3;
      --left;
    }
    d = pack_trit_byte(five);
  }
  return bytes;
}

// One quantized segment of all tokens (a multiple of the group size G) plus T mod G residual
// tokens. For ternary_stp, a fifth of the segment's tokens (whole groups), spread at random, are
// protected.
Layer make_layer(const std::shared_ptr<rt::Context>& ctx, const Options& o, double nbits, ValueFormat values,
                 std::mt19937_64& rng) {
  Layer l;
  const uint32_t H = o.kv_heads, D = o.dim, G = o.group, Tq = o.tokens / G * G, R = o.tokens - Tq;
  l.buffers.keys = KeySpec{nbits, G, ChannelScope::head, FftLayout::half};
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
      const PackedBytes b = packed_bytes({QuantBits::b2, QuantAxis::channel, G}, {H, Tq, k});
      seg.key_anomalous = {add(b.codes, false), add(b.scales, true), add(b.mins, true)};
    }
    if (S > 0) {
      const PackedBytes b = packed_bytes({QuantBits::b1, QuantAxis::channel, G}, {H, Tq, S});
      seg.key_normal = {add(b.codes, false), add(b.scales, true), {}};
    }
    const uint32_t n = values == ValueFormat::ternary_stp ? uint32_t(std::lround(0.2 * Tq / G)) * G : 0;
    const TensorShape vshape{H, Tq - n, D};
    if (values == ValueFormat::ternary_trits || values == ValueFormat::ternary_stp) {
      const std::vector<uint8_t> digits = random_trits(vshape, G, rng);
      l.owned.push_back(std::make_unique<rt::Buffer>(ctx, std::max<uint64_t>((digits.size() + 3) / 4 * 4, 16)));
      if (!digits.empty()) l.owned.back()->upload(digits.data(), digits.size());
      l.bytes += digits.size();
      seg.values.codes = l.owned.back()->view();
      seg.values.scales = add(packed_bytes({QuantBits::b1_58, QuantAxis::channel, G}, vshape).scales, true);
    } else {
      // 2 bits per channel, or per token (KIVI)
      const QuantAxis axis = values == ValueFormat::b2_token ? QuantAxis::token : QuantAxis::channel;
      const PackedBytes b = packed_bytes({QuantBits::b2, axis, G}, vshape);
      seg.values = {add(b.codes, false), add(b.scales, true), add(b.mins, true)};
    }
    if (n > 0) {
      const PackedBytes b = packed_bytes({QuantBits::b2, QuantAxis::channel, G}, {H, n, D});
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

// "268435456", "256M", "256MiB", "1G": bytes (K, M, G binary). Returns 0 for anything else.
uint64_t parse_bytes(const std::string& text) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (end == text.c_str() || text[0] == '-') return 0;
  std::string unit = end;
  if (unit.size() == 3 && unit.substr(1) == "iB") unit = unit.substr(0, 1);
  const uint64_t scale = unit.empty() ? 1 : unit == "K" ? 1ull << 10 : unit == "M" ? 1ull << 20 : unit == "G" ? 1ull << 30 : 0;
  return v > (1ull << 50) ? 0 : v * scale;
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
    else if (a == "--layers") ok = value(o.layers) && o.layers > 0 && o.layers <= kMaxLayers;
    else if (a == "--cycle-bytes" && i + 1 < argc) ok = (o.cycle_bytes = parse_bytes(argv[++i])) > 0;
    else if (a == "--case" && i + 1 < argc) {
      o.only.push_back(argv[++i]);
      if (!known_case(o.only.back())) {
        std::string known = "fp16";
        for (const PresetCase& p : kPresets) known += std::string(", ") + p.name;
        known += ", none";
        std::fprintf(stderr, "vidkv-attention-bench: no case '%s' (cases: %s)\n", o.only.back().c_str(), known.c_str());
        return false;
      }
    }
    else if (a == "--portable") o.portable = true;
    else if (a == "--policies") o.policies = true;
    else if (a == "--markdown") o.markdown = true;
    else if (a == "--causal") ok = value(o.causal) && o.causal > 0 && o.causal <= 65535;
    else if (a == "--group") ok = value(o.group) && (o.group == 32 || o.group == 64 || o.group == 128);
    else ok = false;
    if (!ok) {
      std::fprintf(stderr,
                   "vidkv-attention-bench: bad option or value at '%s'\n"
                   "usage: vidkv-attention-bench [--tokens N] [--runs N] [--split N] [--kv-heads N] [--q-heads N] "
                   "[--dim N] [--case PRESET]... [--portable] [--policies] [--layers N (1..%u)] "
                   "[--cycle-bytes BYTES (e.g. 256M)] [--causal N] [--group 32|64|128] [--markdown]\n",
                   a.c_str(), kMaxLayers);
      return false;
    }
  }
  return o.runs > 0 && o.tokens > 0 && o.causal <= o.tokens;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, o)) return 2;
  try {
    auto ctx = rt::Context::create();
    const rt::DeviceInfo& info = ctx->info();
    std::printf("device: %s (%s)\n", info.name.c_str(), info.driver_info.c_str());
    std::printf("device type: %s\n", rt::device_type_name(info.type));
    std::mt19937_64 rng(1);
    GpuAttention attention(ctx);
    attention.set_portable(o.portable);
    if (o.split != 0) attention.set_split_tokens(o.split);
    std::printf("shaders: %s\n", attention.subgroup8_path() ? "subgroup-of-8 path (attention_*_sg8.comp)"
                                                             : "portable path (attention_fp16.comp, attention_vidkv.comp)");
    std::printf("layer: %u KV heads, %u query heads, dim %u, %u tokens, group %u, split %u, median of %u runs\n",
                o.kv_heads, o.q_heads, o.dim, o.tokens, o.group, attention.split_tokens(), o.runs);

    // Cycling: every case reads distinct copies of its layer until their bytes exceed the bound.
    // 256 MiB is more than any current GPU's L2 or Infinity Cache; on a CPU device 64 MiB keeps
    // memory and time modest (more than one core complex's L3 on this project's test machines).
    const bool cpu_device = info.type == rt::DeviceType::cpu;
    const uint64_t bound = o.cycle_bytes ? o.cycle_bytes : (cpu_device ? 64ull : 256ull) << 20;
    // Half the largest device-local heap for all cases together (one share per case below).
    const uint64_t budget = info.device_local_bytes / 2;
    const uint32_t planned_cases = 5 + (o.policies ? 8 : 0);
    bool capped = false;
    auto copies_for = [&](uint64_t layer_bytes) {
      uint64_t n = o.layers ? o.layers : bound / std::max<uint64_t>(layer_bytes, 1) + 1;
      const uint64_t fit = budget / planned_cases / std::max<uint64_t>(layer_bytes, 1);
      if (budget > 0 && n > std::max<uint64_t>(fit, 1)) {
        n = std::max<uint64_t>(fit, 1);
        capped = true;
      }
      return uint32_t(std::min<uint64_t>(n, kMaxLayers));
    };
    if (o.layers)
      std::printf("decode: each run cycles through %u distinct copies of the layer per case (--layers)\n", o.layers);
    else
      std::printf("decode: each run cycles through distinct copies of the layer per case until their bytes exceed "
                  "%.4g MiB (%s), the time per step is the run's mean over them\n",
                  bound / 1048576.0, o.cycle_bytes ? "--cycle-bytes" : cpu_device ? "CPU device default" : "default");

    rt::CommandRunner runner(ctx);
    rt::TimestampQueries ts(ctx, 2);
    const AttentionGeometry g{o.kv_heads, o.q_heads, o.dim};
    const uint64_t q_bytes = uint64_t(o.q_heads) * o.dim * 4;
    auto q = random_buffer(ctx, q_bytes, true, rng);
    rt::Buffer out(ctx, q_bytes);

    // The copy reads at least the bound too, so that its bandwidth is the memory's, not a cache's.
    const uint64_t kv_bytes = uint64_t(o.tokens) * o.kv_heads * o.dim * 2;
    const uint64_t copy_bytes = std::max<uint64_t>(2 * kv_bytes, std::min<uint64_t>(bound, budget / planned_cases) / 4 * 4);
    rt::Buffer copy_dst(ctx, copy_bytes);
    auto copy_src = random_buffer(ctx, copy_bytes, false, rng);
    std::vector<Case> cases;
    cases.push_back({"copy", copy_bytes, 1, [&](VkCommandBuffer cmd, uint32_t) {
                       rt::record_copy(cmd, copy_src->view(), copy_dst.view(), copy_bytes);
                     }});
    std::vector<std::unique_ptr<rt::Buffer>> fp16_kv;  // keys, values of each copy
    const uint32_t fp16_layers = copies_for(2 * kv_bytes);
    for (uint32_t l = 0; l < fp16_layers; ++l) {
      fp16_kv.push_back(random_buffer(ctx, kv_bytes, true, rng));
      fp16_kv.push_back(random_buffer(ctx, kv_bytes, true, rng));
    }
    rt::Buffer fp16_partials(ctx, attention.partial_bytes_fp16(g, o.tokens));
    cases.push_back({"fp16", 2 * kv_bytes, fp16_layers, [&](VkCommandBuffer cmd, uint32_t l) {
                       const Fp16KvBuffers kv{o.tokens, fp16_kv[2 * l]->view(), fp16_kv[2 * l + 1]->view()};
                       attention.record_fp16(cmd, g, kv, q->view(), fp16_partials.view(), out.view());
                     }});
    // Per preset its layer copies (each with its own random data in its own buffers) and one
    // scratch buffer (the layers run one after another).
    std::vector<std::vector<Layer>> layers;
    std::vector<std::unique_ptr<rt::Buffer>> partials;
    layers.reserve(std::size(kPresets));
    for (const auto& p : kPresets) {
      if (!o.wanted(p.name)) continue;
      layers.emplace_back();
      std::vector<Layer>* copies = &layers.back();
      copies->push_back(make_layer(ctx, o, p.nbits, p.values, rng));
      const uint32_t n = copies_for(copies->front().bytes);
      while (copies->size() < n) copies->push_back(make_layer(ctx, o, p.nbits, p.values, rng));
      partials.push_back(std::make_unique<rt::Buffer>(ctx, attention.partial_bytes(g, copies->front().buffers)));
      rt::Buffer* scratch = partials.back().get();
      cases.push_back({p.name, copies->front().bytes, n, [&, copies, scratch](VkCommandBuffer cmd, uint32_t l) {
                         attention.record_vidkv(cmd, g, (*copies)[l].buffers, q->view(), scratch->view(), out.view());
                       }});
    }
    std::vector<std::unique_ptr<Cache>> caches;
    if (o.policies) {
      // The first fp16 copy is finite halves around 1: a real prefill input. Whole caches are not
      // cycled: one layer each, so their times may be flattered by a cache (the line says so).
      for (auto& c : tools::make_policy_cases(ctx, {o.tokens, o.kv_heads, o.q_heads, o.dim, fp16_kv[0]->view(0, kv_bytes),
                                                    fp16_kv[1]->view(0, kv_bytes), q->view(0, q_bytes), out.view()},
                                              caches)) {
        auto record = c.record;
        cases.push_back({c.name, c.bytes, 1, [record](VkCommandBuffer cmd, uint32_t) { record(cmd); }});
      }
    }
    // --causal N: for fp16 and each preset, the newest N tokens' queries as one causal attention
    // and as N single-token attentions in order (each reads the whole layer: the same bytes).
    std::unique_ptr<rt::Buffer> causal_q, causal_out, causal_partials;
    if (o.causal > 0) {
      const uint32_t N = o.causal;
      causal_q = random_buffer(ctx, q_bytes * N, true, rng);
      causal_out = std::make_unique<rt::Buffer>(ctx, q_bytes * N);
      uint64_t scratch = attention.partial_bytes_fp16(g, o.tokens, N);
      for (const auto& copies : layers) scratch = std::max(scratch, attention.partial_bytes(g, copies.front().buffers, N));
      causal_partials = std::make_unique<rt::Buffer>(ctx, scratch);
      for (size_t i = 1; i < 2 + layers.size(); ++i) {  // fp16, then the presets (not --policies' caches)
        const std::string name = cases[i].name;
        const bool fp16 = name == "fp16";
        std::vector<Layer>* copies = fp16 ? nullptr : &layers[i - 2];
        auto one = [&, fp16, copies](VkCommandBuffer cmd, uint32_t l, const rt::BufferView& qv,
                                     const rt::BufferView& ov, uint32_t causal) {
          if (fp16) {
            const Fp16KvBuffers kv{o.tokens, fp16_kv[2 * l]->view(), fp16_kv[2 * l + 1]->view()};
            attention.record_fp16(cmd, g, kv, qv, causal_partials->view(), ov, causal);
          } else {
            attention.record_vidkv(cmd, g, (*copies)[l].buffers, qv, causal_partials->view(), ov, causal);
          }
        };
        cases.push_back({name + " causal " + std::to_string(N), cases[i].bytes * N, cases[i].layers,
                         [&, one, N](VkCommandBuffer cmd, uint32_t l) {
                           one(cmd, l, causal_q->view(), causal_out->view(), N);
                         }});
        cases.push_back({name + " " + std::to_string(N) + " steps", cases[i].bytes * N, cases[i].layers,
                         [&, one, N](VkCommandBuffer cmd, uint32_t l) {
                           for (uint32_t z = 0; z < N; ++z) {
                             if (z > 0) rt::compute_to_compute_barrier(cmd);  // the steps share the scratch
                             one(cmd, l, causal_q->view(z * q_bytes, q_bytes), causal_out->view(z * q_bytes, q_bytes), 0);
                           }
                         }});
      }
    }
    if (capped) std::printf("note: layer copies capped by device memory (half of its %.1f GiB heap)\n",
                            info.device_local_bytes / 1073741824.0);
    // Runs interleave the cases (one warm-up round first), so a load change on the machine hits
    // all of them alike; medians per case.
    for (uint32_t i = 0; i <= o.runs; ++i)
      for (Case& c : cases) run_once(runner, ts, c, i > 0);
    const double copy_ms = cases[0].median(), copy_gbs = cases[0].bytes / (copy_ms * 1e6);
    const double fp16_ms = cases[1].median();
    std::printf("%-15s %9.3f ms  %9.2f MB read  %8.2f GB/s (bytes read per second; as many written)\n", "copy",
                copy_ms, cases[0].bytes / 1e6, copy_gbs);
    for (size_t i = 1; i < cases.size(); ++i) {
      const double ms = cases[i].median(), gbs = cases[i].bytes / (ms * 1e6);
      std::printf("%-15s %9.3f ms  %9.2f MB read  %8.2f GB/s (%5.1f%% of copy)  speed-up vs fp16 %5.2fx"
                  "  (min %.3f ms, %.2fx; process CPU %.1f ms, %.2fx)  layers %u (%.1f MB)\n",
                  cases[i].name.c_str(), ms, cases[i].bytes / 1e6, gbs, 100.0 * gbs / copy_gbs, fp16_ms / ms,
                  cases[i].min(), cases[1].min() / cases[i].min(), cases[i].median_cpu(),
                  cases[1].median_cpu() / cases[i].median_cpu(), cases[i].layers, cases[i].cycled_bytes() / 1e6);
    }
    std::printf("(per layer step: each run's time over its layers / layers; MB read: one layer's)\n");
    for (size_t i = 0; i < cases.size(); ++i) {
      const std::string suffix = " causal " + std::to_string(o.causal);
      if (o.causal == 0 || cases[i].name.size() <= suffix.size() ||
          cases[i].name.compare(cases[i].name.size() - suffix.size(), suffix.size(), suffix) != 0) {
        continue;
      }
      const double causal_ms = cases[i].median(), steps_ms = cases[i + 1].median();
      std::printf("%-15s causal attention of %u queries %9.3f ms, %u single-token attentions %9.3f ms: %.2fx\n",
                  cases[i].name.substr(0, cases[i].name.size() - suffix.size()).c_str(), o.causal, causal_ms, o.causal,
                  steps_ms, steps_ms / causal_ms);
    }
    if (o.markdown) {
      // Rows for scripts/gpu-check, which prints the header once for several runs. The model (DESIGN
      // section 8): decode is memory-bound, so its floor is the bytes a step reads at the copy's
      // bandwidth, and the speed-up it predicts is fp16's bytes over the preset's.
      std::printf("\nmarkdown rows: | preset | tokens | layers cycled | MB cycled | decode ms | speed-up vs fp16 | "
                  "GB/s | %% of copy | model ms | model speed-up |\n");
      for (size_t i = 1; i < cases.size(); ++i) {
        const double ms = cases[i].median(), gbs = cases[i].bytes / (ms * 1e6);
        std::printf("| %s | %u | %u | %.1f | %.3f | %.2fx | %.2f | %.1f%% | %.3f | %.2fx |\n", cases[i].name.c_str(),
                    o.tokens, cases[i].layers, cases[i].cycled_bytes() / 1e6, ms, fp16_ms / ms, gbs,
                    100.0 * gbs / copy_gbs, cases[i].bytes / (copy_gbs * 1e6), double(cases[1].bytes) / cases[i].bytes);
      }
      std::printf("| copy | %u | 1 | %.1f | %.3f | | %.2f | 100.0%% | | |\n", o.tokens, cases[0].bytes / 1e6, copy_ms,
                  copy_gbs);
    }
    if (ctx->validation_message_count() > 0) {
      // With VIDKV_VALIDATION=1 a run is also a validation check (barriers between the cycled layers).
      for (const auto& m : ctx->validation_messages()) std::fprintf(stderr, "validation: %s\n", m.text.c_str());
      std::fprintf(stderr, "vidkv-attention-bench: %zu validation message(s)\n", ctx->validation_message_count());
      return 1;
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
