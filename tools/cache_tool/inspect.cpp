#include "cache_tool/inspect.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "vidkv/cache_file.hpp"

namespace vidkv::cache_tool {
namespace {

void print_part(const char* name, const CachePartBytes& p, double bits) {
  std::printf("  %-8s %14llu %14llu %14llu %12llu %14llu %10.4f\n", name, (unsigned long long)p.codes,
              (unsigned long long)p.scales, (unsigned long long)p.mins, (unsigned long long)p.maps,
              (unsigned long long)p.total(), bits);
}

void print_sequence(const CacheFileContents& c, const CacheFileSequence& s, bool layers) {
  uint32_t lo = UINT32_MAX, hi = 0;
  uint64_t quantized = 0, residual = 0, segments = 0, protected_tokens = 0, stp_segments = 0;
  for (const CacheFileLayer& l : s.layers) {
    const uint32_t tokens = l.mixed ? l.count : l.quantized + l.residual;
    lo = std::min(lo, tokens);
    hi = std::max(hi, tokens);
    quantized += l.quantized;
    residual += l.residual;
    segments += l.segments.size();
    for (const CacheFileSegment& seg : l.segments) {
      stp_segments += seg.stp ? 1 : 0;
      protected_tokens += seg.protected_count;
    }
  }
  const std::string per_layer = lo == hi ? std::to_string(lo) : std::to_string(lo) + ".." + std::to_string(hi);
  const std::string stp = stp_segments == 0 ? std::string()
                                            : "; " + std::to_string(protected_tokens) + " tokens protected (STP) in " +
                                                  std::to_string(stp_segments) + " segments";
  std::printf("  id %u: %s tokens per layer; over %u layers %llu quantized in %llu segments, %llu in residuals%s\n",
              s.id, per_layer.c_str(), c.geometry.layers, (unsigned long long)quantized, (unsigned long long)segments,
              (unsigned long long)residual, stp.c_str());
  if (!layers) return;
  const std::vector<CacheFileLayerHeads> heads = cache_file_layer_heads(c.geometry, c.settings);
  for (size_t i = 0; i < s.layers.size(); ++i) {
    const CacheFileLayer& l = s.layers[i];
    std::string sizes;
    for (const CacheFileSegment& seg : l.segments) {
      if (!sizes.empty()) sizes += '+';
      sizes += std::to_string(seg.tokens);
      // Semantic token protection: how many of the segment's tokens keep 2-bit values.
      if (seg.stp) sizes += " (STP: " + std::to_string(seg.protected_count) + " protected)";
    }
    // Per-head policies: the segments and residual hold the preset heads only.
    std::string mixed;
    if (l.mixed) {
      const CacheFileLayerHeads& h = heads[i];
      const uint64_t window = std::min<uint64_t>(l.count, uint64_t(c.settings.head_policies.sink) +
                                                              c.settings.head_policies.recent);
      mixed = "; heads: " + std::to_string(h.preset) + " vidkv, " + std::to_string(h.full) + " full, " +
              std::to_string(h.window) + " window (holding " + std::to_string(h.window ? window : 0) + " tokens)";
    }
    std::printf("    layer %zu: %u tokens, segments [%s], residual %u%s%s%s\n", i,
                l.mixed ? l.count : l.quantized + l.residual, sizes.c_str(), l.residual,
                l.prefilled ? ", prefilled" : "", l.appended ? ", appended" : "", mixed.c_str());
  }
}

}  // namespace

void inspect(const InspectOptions& o) {
  // The parser checks every section's CRC-32C and every count before returning anything.
  const auto start = std::chrono::steady_clock::now();
  const CacheFileContents c = read_cache_file(o.path);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const uint64_t file_bytes = std::filesystem::file_size(o.path);
  const CacheStats st = cache_file_stats(c);
  const CacheGeometry& g = c.geometry;
  const uint64_t sections = 2 + uint64_t(c.sequences.size()) * (1 + g.layers);
  std::printf("file:      %s\n", o.path.c_str());
  std::printf("           %llu bytes, format version %u, written by vidkv %s; %llu sections, every CRC-32C "
              "checksum matches (read and checked in %.1f ms, %.0f MB/s)\n",
              (unsigned long long)file_bytes, c.format_version, c.library_version.c_str(),
              (unsigned long long)sections, seconds * 1e3, seconds > 0 ? double(file_bytes) / seconds / 1e6 : 0.0);
  std::printf("settings:  %s\n", describe(c.settings).c_str());
  std::printf("geometry:  %u layers, %u KV heads, %u query heads, head_dim %u; max_tokens %u\n", g.layers, g.kv_heads,
              g.q_heads, g.head_dim, c.max_tokens);
  std::printf("sequences: %zu\n", c.sequences.size());
  for (const CacheFileSequence& s : c.sequences) print_sequence(c, s, o.layers);

  if (c.settings.head_policies.uniform()) {
    std::printf("quantized store: %llu tokens x %u KV heads x %u channels, K and V (bytes; bits per value)\n",
                (unsigned long long)st.quantized_tokens, g.kv_heads, g.head_dim);
  } else {
    std::printf("quantized store: %llu tokens of the vidkv heads x %u channels, K and V (bytes; bits per value)\n",
                (unsigned long long)st.quantized_tokens, g.head_dim);
  }
  std::printf("  %-8s %14s %14s %14s %12s %14s %10s\n", "part", "codes", "scales", "mins", "maps", "total", "bits");
  print_part("keys", st.keys, st.key_bits);
  print_part("values", st.values, st.value_bits);
  std::printf("  effective bits per value, K and V averaged: %.4f\n", (st.key_bits + st.value_bits) / 2);
  std::printf("residual:  %llu tokens, %llu bytes of fp16 K and V\n", (unsigned long long)st.residual_tokens,
              (unsigned long long)st.residual_bytes);
  if (!c.settings.head_policies.uniform()) {
    // Per-head policies: the table above is the vidkv heads' store; full and window heads are fp16.
    std::printf("policies:  (layer, KV head) pairs, tokens held x heads, bytes allocated on load\n");
    for (HeadPolicy p : {HeadPolicy::vidkv, HeadPolicy::full, HeadPolicy::window}) {
      const CachePolicyStats& ps = st.policies[size_t(p)];
      std::printf("  %-8s %8u heads %14llu tokens %14llu bytes\n", head_policy_name(p), ps.heads,
                  (unsigned long long)ps.tokens, (unsigned long long)ps.bytes);
    }
  }
  const uint64_t held = st.keys.total() + st.values.total() + st.residual_bytes;
  std::printf("total:     %llu bytes held for %llu tokens; fp16 would take %llu (%.2fx smaller)\n",
              (unsigned long long)held, (unsigned long long)st.tokens, (unsigned long long)st.fp16_equivalent_bytes,
              held > 0 ? double(st.fp16_equivalent_bytes) / double(held) : 0.0);
}

}  // namespace vidkv::cache_tool
