#include "cache_tool/compress.hpp"

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "common/npy.hpp"
#include "vidkv/cache.hpp"
#include "vidkv/presets.hpp"

namespace vidkv::cache_tool {

void compress(const CompressOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  const tools::KvDump dump = tools::scan_kv_dir(o.kv_dir);  // headers only: every file checked first
  const CacheSettings settings = parse_settings(o.settings);
  for (const std::string& key : settings.ignored_keys) {
    std::fprintf(stderr, "vidkv-cache: warning: configuration key '%s' is not used by vidkv\n", key.c_str());
  }
  CacheGeometry g{dump.layers, dump.kv_heads, o.q_heads, dump.head_dim};
  if (g.q_heads == 0) g.q_heads = dump.head_dim == 128 ? dump.kv_heads * 7 : dump.kv_heads;
  const uint32_t max_tokens = o.max_tokens ? o.max_tokens : dump.tokens;

  auto ctx = rt::Context::create();
  std::printf("device:    %s\n", ctx->info().name.c_str());
  std::printf("dump:      %s: %u layers of %u tokens x %u KV heads x %u channels\n", o.kv_dir.c_str(), dump.layers,
              dump.tokens, dump.kv_heads, dump.head_dim);
  Cache cache(ctx, g, settings, max_tokens);  // checks geometry, settings and max_tokens
  if (dump.tokens > max_tokens) {
    throw Error(ErrorCode::invalid_argument, "the dump holds " + std::to_string(dump.tokens) +
                                                 " tokens per layer, above --max-tokens " + std::to_string(max_tokens));
  }
  const uint32_t seq = cache.create_sequence();
  namespace fs = std::filesystem;
  for (uint32_t l = 0; l < dump.layers; ++l) {
    // One layer's fp16 K and V in memory at a time.
    const auto k = tools::npy_to_fp16(tools::read_npy((fs::path(o.kv_dir) / ("k_" + std::to_string(l) + ".npy")).string()));
    const auto v = tools::npy_to_fp16(tools::read_npy((fs::path(o.kv_dir) / ("v_" + std::to_string(l) + ".npy")).string()));
    cache.prefill(seq, l, k, v, dump.tokens);
  }
  cache.save(o.output);
  const CacheStats st = cache.stats();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("settings:  %s\n", describe(settings).c_str());
  std::printf("saved:     %s: sequence %u, %llu bytes (fp16 K and V: %llu bytes); keys %.4f, values %.4f bits per "
              "quantized value; %llu tokens in fp16 residuals; %.2f s\n",
              o.output.c_str(), seq, (unsigned long long)fs::file_size(o.output),
              (unsigned long long)st.fp16_equivalent_bytes, st.key_bits, st.value_bits,
              (unsigned long long)st.residual_tokens, seconds);
}

}  // namespace vidkv::cache_tool
