// Inputs for the vidkv-cache ctest (test_cache_file_tool.cmake), which CMake alone cannot write:
//   vidkv_cache_tool_data dump DIR [LAYERS TOKENS KV_HEADS HEAD_DIM]
//                                                a K/V dump, by default 2 layers x 70 tokens x 2 KV
//                                                heads x 64 channels (even layers fp16, odd fp32)
//   vidkv_cache_tool_data flip IN OUT OFFSET     IN with the byte at OFFSET inverted
//   vidkv_cache_tool_data cut IN OUT BYTES       the first BYTES bytes of IN
//   vidkv_cache_tool_data corpus DIR             the fuzzer's seed files (fuzz/corpus): tiny caches
//                                                saved by Cache::save (an STP one and one with
//                                                per-head policies among them), one rewritten as
//                                                format version 1, one as version 2, two damaged
//                                                copies
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "common/npy.hpp"
#include "vidkv/cache.hpp"
#include "vidkv/cache_file.hpp"
#include "vidkv/fp16.hpp"

namespace {

std::vector<char> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

void write_all(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

void dump(const std::string& dir, uint32_t layers, uint64_t tokens, uint64_t heads, uint64_t dim) {
  using vidkv::tools::NpyArray;
  using vidkv::tools::NpyType;
  std::filesystem::create_directories(dir);
  const uint64_t n = tokens * heads * dim;
  std::mt19937_64 rng(20250311);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (uint32_t layer = 0; layer < layers; ++layer) {
    const bool half = layer % 2 == 0;
    for (const char* kind : {"k", "v"}) {
      NpyArray a;
      a.type = half ? NpyType::f16 : NpyType::f32;
      a.shape = {tokens, heads, dim};
      a.data.resize(n * (half ? 2 : 4));
      for (uint64_t i = 0; i < n; ++i) {
        const float x = normal(rng) * (i % dim == 3 ? 12.0f : 1.0f);  // one outlier channel
        if (half) {
          const uint16_t h = vidkv::fp16::from_float(x);
          std::memcpy(a.data.data() + 2 * i, &h, 2);
        } else {
          std::memcpy(a.data.data() + 4 * i, &x, 4);
        }
      }
      vidkv::tools::write_npy(dir + "/" + kind + "_" + std::to_string(layer) + ".npy", a);
    }
  }
}

// Tiny caches (1 layer, 1 KV head, head_dim 64) of each kind, saved by the library itself.
void corpus(const std::string& dir) {
  std::filesystem::create_directories(dir);
  auto ctx = vidkv::rt::Context::create();
  std::mt19937_64 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto halves = [&](uint32_t tokens) {
    std::vector<uint16_t> h(size_t(tokens) * 64);
    for (auto& x : h) x = vidkv::fp16::from_float(normal(rng));
    return h;
  };
  struct Seed {
    const char* preset;
    uint32_t prefill, appends;
  };
  for (const Seed& s : {Seed{"k1.5-v1.58", 40, 0}, Seed{"2bit", 33, 2}, Seed{"kivi", 32, 0}, Seed{"fp16", 5, 1},
                        Seed{"k1.5-v2", 0, 3}}) {
    vidkv::Cache cache(ctx, {1, 1, 1, 64}, vidkv::preset(s.preset), 64);
    const uint32_t seq = cache.create_sequence();
    if (s.prefill > 0) cache.prefill(seq, 0, halves(s.prefill), halves(s.prefill), s.prefill);
    for (uint32_t i = 0; i < s.appends; ++i) cache.append(seq, 0, halves(1), halves(1));
    cache.create_sequence();  // an empty second sequence
    cache.save(dir + "/" + s.preset + ".vkv");
  }
  // Semantic token protection: a prefill protecting its second group, with a tail, then appends
  // across a flush (an STP segment, a plain one and a residual); a second layer's prefill protects
  // nothing (an STP segment of 1.58-bit values only).
  {
    vidkv::Cache cache(ctx, {2, 1, 1, 64}, vidkv::preset("k1.5-v1.58-stp"), 256);
    const uint32_t seq = cache.create_sequence();
    vidkv::CacheStpInput stp;
    for (uint32_t t = 32; t < 64; ++t) stp.protected_tokens.push_back(t);
    cache.prefill(seq, 0, halves(70), halves(70), 70, stp);
    for (uint32_t i = 0; i < 130; ++i) cache.append(seq, 0, halves(1), halves(1));
    cache.prefill(seq, 1, halves(32), halves(32), 32, vidkv::CacheStpInput{});
    cache.save(dir + "/k1.5-v1.58-stp.vkv");
  }
  // Per-head policies (an explicit list): layer 0 mixes vidkv, full and window heads, layer 1 has
  // no preset head; a prefill of a group and a tail, then appends past the window's 2 + 6 slots.
  {
    using P = vidkv::HeadPolicy;
    vidkv::CacheSettings s = vidkv::preset("k1.5-v1.58");
    s.head_policies.heads = {P::vidkv, P::full, P::window, P::full, P::window, P::window};
    s.head_policies.sink = 2;
    s.head_policies.recent = 6;
    s.name = vidkv::settings_name(s);
    vidkv::Cache cache(ctx, {2, 3, 3, 64}, s, 64);
    const uint32_t seq = cache.create_sequence();
    for (uint32_t layer = 0; layer < 2; ++layer) {
      cache.prefill(seq, layer, halves(3 * 33), halves(3 * 33), 33);
      for (uint32_t i = 0; i < 2; ++i) cache.append(seq, layer, halves(3), halves(3));
    }
    cache.create_sequence();  // an empty second sequence
    cache.save(dir + "/k1.5-v1.58-heads.vkv");
  }
  // The same plain cache in format versions 1 (no segment flags) and 2 (no per-head policies),
  // which the parser still reads.
  for (uint32_t version : {1u, 2u}) {
    vidkv::CacheFileContents old = vidkv::read_cache_file(dir + "/k1.5-v1.58.vkv");
    old.format_version = version;
    const std::vector<uint8_t> bytes = vidkv::serialize_cache_file(old);
    write_all(dir + "/format" + std::to_string(version) + "-k1.5-v1.58.vkv",
              std::vector<char>(bytes.begin(), bytes.end()));
  }

  std::vector<char> bytes = read_all(dir + "/k1.5-v1.58.vkv");
  std::vector<char> flipped = bytes;
  flipped[flipped.size() / 2] = char(flipped[flipped.size() / 2] ^ 0x04);
  write_all(dir + "/damaged-flip.vkv", flipped);
  bytes.resize(bytes.size() * 2 / 3);
  write_all(dir + "/damaged-cut.vkv", bytes);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string command = argc > 1 ? argv[1] : "";
    if (command == "dump" && argc == 3) {
      dump(argv[2], 2, 70, 2, 64);
      return 0;
    }
    if (command == "dump" && argc == 7) {
      dump(argv[2], uint32_t(std::stoul(argv[3])), std::stoull(argv[4]), std::stoull(argv[5]), std::stoull(argv[6]));
      return 0;
    }
    if (command == "corpus" && argc == 3) {
      corpus(argv[2]);
      return 0;
    }
    if ((command == "flip" || command == "cut") && argc == 5) {
      std::vector<char> bytes = read_all(argv[2]);
      const size_t at = std::strtoull(argv[4], nullptr, 10);
      if (at >= bytes.size()) throw std::runtime_error("offset beyond the file");
      if (command == "flip") {
        bytes[at] = char(~bytes[at]);
      } else {
        bytes.resize(at);
      }
      write_all(argv[3], bytes);
      return 0;
    }
    std::fprintf(stderr, "usage: vidkv_cache_tool_data dump DIR [LAYERS TOKENS KV_HEADS HEAD_DIM] | flip IN OUT OFFSET | cut IN OUT BYTES | corpus DIR\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vidkv_cache_tool_data: %s\n", e.what());
    return 1;
  }
}
