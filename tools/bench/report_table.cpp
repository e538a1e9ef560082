#include "bench/report_table.hpp"

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
  std::fprintf(out, "  decode: one layer (%u) of %u query heads, GPU timestamps, median of %u interleaved rounds\n",
               size.timing_layer, w.q_heads, runs);
  if (size.copy_gbps > 0)
    std::fprintf(out, "  buffer copy in the same rounds: %.2f GB/s (%.1f MB in %.3f ms)\n", size.copy_gbps,
                 size.copy_bytes / 1e6, size.copy_ms);
  std::fprintf(out, "\n%-16s %6s %6s %10s %7s %8s %8s %9s %10s %9s %8s %8s %6s\n", "preset", "K bits", "V bits",
               "memory MB", "vs fp16", "K relL2", "V relL2", "attn err", "prefill ms", "decode ms", "speed-up",
               "GB/s", "% copy");
  for (const PresetResult& r : size.results) {
    if (!r.reached(Stage::stored)) {
      std::fprintf(out, "%-16s %s\n", r.preset.c_str(), r.error.c_str());
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
    std::fprintf(out, "%-16s %6.3f %6.3f %10.2f %6.2fx %s %s %s %10.1f %s %s %s %s\n", r.preset.c_str(), r.bits_k,
                 r.bits_v, r.bytes / 1e6, ratio, cell(rec, "%8.4f", r.k_rel_l2, 8).c_str(),
                 cell(rec, "%8.4f", r.v_rel_l2, 8).c_str(), cell(att, "%9.2e", r.attn_rel_err, 9).c_str(),
                 r.prefill_ms, cell(tim, "%9.3f", r.decode_ms, 9).c_str(),
                 cell(tim, "%7.2fx", r.speedup_vs_fp16, 8).c_str(), cell(tim, "%8.2f", r.achieved_gbps, 8).c_str(),
                 cell(tim && size.copy_gbps > 0, "%5.1f%%", pct, 6).c_str());
    if (!r.error.empty()) std::fprintf(out, "%-16s   %s\n", "", r.error.c_str());
  }
  std::fprintf(out,
               "\nbits: over the quantized store (codes, scales, mins, channel maps; DESIGN section 4); memory: all "
               "layers incl. the fp16 residual;\nrelL2 / attn err: relative L2 against the input / a float64 "
               "reference over it; prefill: all layers, wall time of the cache calls;\ndecode: one layer, GB/s = "
               "packed + residual bytes read per step / decode time.\n\n");
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
