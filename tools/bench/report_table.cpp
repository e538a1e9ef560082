#include "bench/report_table.hpp"

#include <algorithm>
#include <string>

namespace vidkv::bench {
namespace {

// "0-27 (all 28)" or "3, 10, 17, 24 (4 of 28)".
std::string layer_list(const std::vector<uint32_t>& layers, uint32_t total) {
  if (layers.size() == total && total > 1)
    return std::to_string(layers.front()) + "-" + std::to_string(layers.back()) + " (all " + std::to_string(total) + ")";
  std::string s;
  for (size_t i = 0; i < layers.size(); ++i) s += (i ? ", " : "") + std::to_string(layers[i]);
  return s + " (" + std::to_string(layers.size()) + " of " + std::to_string(total) + ")";
}

// Per-head policies: each run's heads and memory per policy, and the timing layer's policies.
void print_policy_table(std::FILE* out, const SizeResults& size, int width) {
  std::fprintf(out,
               "\nmemory per head policy, all layers, as allocated (Cache::stats().policies): vidkv the quantized "
               "store and its\nresidual buffers at capacity (so the three can add up to more than memory MB, which "
               "counts the residual tokens\nheld), full every token in fp16, window sink + recent tokens in fp16; "
               "heads: (layer, KV head) pairs\n");
  std::fprintf(out, "%-*s %23s %10s %10s %10s  %s\n", width, "preset", "heads vidkv/full/window", "vidkv MB",
               "full MB", "window MB", "decode layer's heads");
  for (const PresetResult& r : size.results) {
    if (!r.sparsity || !r.reached(Stage::stored)) continue;
    char heads[48];
    std::snprintf(heads, sizeof heads, "%u/%u/%u", r.policy_heads[0], r.policy_heads[1], r.policy_heads[2]);
    std::string timing;
    for (size_t i = 0; i < r.timing_policies.size(); ++i)
      timing += std::string(i ? "," : "") + head_policy_name(r.timing_policies[i]);
    std::fprintf(out, "%-*s %23s %10.2f %10.2f %10.2f  %s\n", width, r.label().c_str(), heads,
                 r.policy_bytes[0] / 1e6, r.policy_bytes[1] / 1e6, r.policy_bytes[2] / 1e6,
                 timing.empty() ? "-" : timing.c_str());
  }
}

}  // namespace

void print_size_table(std::FILE* out, const SizeResults& size, uint32_t queries, uint32_t runs) {
  const WorkloadInfo& w = size.workload;
  if (w.frames > 0)
    std::fprintf(out, "context %u tokens (%u frames x %u visual tokens, %u text tokens)\n", w.tokens, w.frames,
                 w.tokens_per_frame, w.text_tokens);
  else
    std::fprintf(out, "context %u tokens (visual [%u, %u), %u prompt tokens after them)\n", w.tokens, w.first_visual,
                 w.first_visual + w.visual_tokens, w.text_tokens);
  std::fprintf(out, "  memory and bits: all %u layers; K/V and attention error: layers %s, %u random queries each\n",
               w.layers, layer_list(size.error_layers, w.layers).c_str(), queries);
  std::fprintf(out, "  decode: layer %u (%u query heads), GPU timestamps, median of %u interleaved rounds; each round cycles\n",
               size.timing_layer, w.q_heads, runs);
  if (size.cycle_bytes > 0)
    std::fprintf(out, "    through distinct copies of it per preset until they exceed %.4g MiB%s (column layers)\n",
                 size.cycle_bytes / 1048576.0, size.cycle_capped ? ", fewer where device memory ran short" : "");
  else
    std::fprintf(out, "    through the copies --decode-layers gives (column layers)%s\n",
                 size.cycle_capped ? ", fewer where device memory ran short" : "");
  if (size.copy_gbps > 0)
    std::fprintf(out, "  buffer copy in the same rounds: %.2f GB/s (%.1f MB in %.3f ms)\n", size.copy_gbps,
                 size.copy_bytes / 1e6, size.copy_ms);
  // Rows are labelled "preset" or, with per-head policies, "preset s=<sparsity>".
  int width = 16;
  bool policies = false;
  for (const PresetResult& r : size.results) {
    width = std::max(width, int(r.label().size()));
    policies = policies || r.sparsity.has_value();
  }
  std::fprintf(out, "\n%-*s %6s %6s %10s %7s %8s %8s %9s %10s %9s %8s %8s %6s %6s\n", width, "preset", "K bits",
               "V bits", "memory MB", "vs fp16", "K relL2", "V relL2", "attn err", "prefill ms", "decode ms", "speed-up",
               "GB/s", "% copy", "layers");
  for (const PresetResult& r : size.results) {
    if (!r.reached(Stage::stored)) {
      std::fprintf(out, "%-*s %s\n", width, r.label().c_str(), r.error.c_str());
      continue;
    }
    // Columns of stages not reached print as "-".
    auto cell = [](bool ok, const char* format, double v, int width) {
      char buf[32];
      if (ok) std::snprintf(buf, sizeof buf, format, v);
      else std::snprintf(buf, sizeof buf, "%*s", width, "-");
      return std::string(buf);
    };
    const bool rec = r.reached(Stage::reconstructed), att = r.reached(Stage::attended), tim = r.reached(Stage::timed);
    const double ratio = r.bytes ? double(r.fp16_bytes) / double(r.bytes) : 0.0;
    const double pct = size.copy_gbps > 0 ? 100.0 * r.achieved_gbps / size.copy_gbps : 0.0;
    std::fprintf(out, "%-*s %s %s %10.2f %6.2fx %s %s %s %10.1f %s %s %s %s %s\n", width, r.label().c_str(),
                 cell(r.has_bits(), "%6.3f", r.bits_k, 6).c_str(), cell(r.has_bits(), "%6.3f", r.bits_v, 6).c_str(),
                 r.bytes / 1e6, ratio, cell(rec, "%8.4f", r.k_rel_l2, 8).c_str(),
                 cell(rec, "%8.4f", r.v_rel_l2, 8).c_str(), cell(att, "%9.2e", r.attn_rel_err, 9).c_str(),
                 r.prefill_ms, cell(tim, "%9.3f", r.decode_ms, 9).c_str(),
                 cell(tim, "%7.2fx", r.speedup_vs_fp16, 8).c_str(), cell(tim, "%8.2f", r.achieved_gbps, 8).c_str(),
                 cell(tim && size.copy_gbps > 0, "%5.1f%%", pct, 6).c_str(),
                 cell(tim, "%6.0f", r.decode_layers, 6).c_str());
    if (!r.error.empty()) std::fprintf(out, "%-*s   %s\n", width, "", r.error.c_str());
  }
  if (policies) print_policy_table(out, size, width);
  std::fprintf(out,
               "\nbits: over the quantized store (codes, scales, mins, channel maps; DESIGN section 4); memory: all "
               "layers incl. the fp16 residual;\nrelL2 / attn err: relative L2 against the input / a float64 "
               "reference over it; prefill: all layers, wall time of the cache calls;\ndecode: per layer step, the mean over "
               "the cycled copies (layers: how many, each in its own buffers), GB/s = packed + residual\nbytes of "
               "one layer / decode time.\n");
  if (policies)
    std::fprintf(out,
                 "per-head policies: bits are the preset (vidkv) heads' (-: no head takes the preset); memory adds "
                 "the full and window\nheads' fp16 stores; K relL2 / V relL2 count the tokens a window head no longer "
                 "holds as zeros; attn err is\nagainst full attention over every token; decode: the timing layer's "
                 "heads keep their policies, one pass per policy.\n");
  std::fprintf(out, "\n");
}

void print_kernel_table(std::FILE* out, const std::vector<KernelTotal>& kernels, uint64_t dropped) {
  if (kernels.empty()) {
    std::fprintf(out, "no GPU timestamps on this device: no per-kernel table\n");
    return;
  }
  double total = 0;
  for (const auto& k : kernels) total += k.total_ms;
  std::fprintf(out, "GPU time per kernel, whole run (timestamps around every dispatch):\n");
  std::fprintf(out, "%-36s %8s %11s %10s %6s\n", "kernel", "calls", "total ms", "mean us", "share");
  for (const auto& k : kernels)
    std::fprintf(out, "%-36s %8llu %11.2f %10.1f %5.1f%%\n", k.label.c_str(), (unsigned long long)k.calls, k.total_ms,
                 1e3 * k.total_ms / double(k.calls), total > 0 ? 100.0 * k.total_ms / total : 0.0);
  std::fprintf(out, "%-36s %8s %11.2f\n", "total", "", total);
  if (dropped) std::fprintf(out, "(%llu kernel timestamps lost: profiler full or work not run)\n", (unsigned long long)dropped);
}

}  // namespace vidkv::bench
