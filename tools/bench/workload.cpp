#include "bench/workload.hpp"

#include <algorithm>
#include <cstdio>

#include "common/npy.hpp"
#include "vidkv/error.hpp"
#include "vidkv/fp16.hpp"

namespace vidkv::bench {
namespace {

// Host memory the kept layers may use: the default run (28 layers x 6304 tokens) needs 0.36 GB;
// a 256-frame sweep point would need 2.9 GB and is generated again per preset instead.
constexpr uint64_t kKeepBudgetBytes = 2ull << 30;

class GeneratedWorkload : public Workload {
 public:
  explicit GeneratedWorkload(const VideoKvSpec& spec) : generator_(spec) {
    info_.source = "generator";
    info_.layers = spec.layers;
    info_.kv_heads = spec.kv_heads;
    info_.q_heads = spec.q_heads;
    info_.head_dim = spec.head_dim;
    info_.tokens = spec.tokens();
    info_.first_visual = 0;
    info_.visual_tokens = spec.visual_tokens;
    info_.text_tokens = spec.text_tokens;
    info_.frames = spec.frames();
    info_.tokens_per_frame = spec.tokens_per_frame;
    char rope[32], rho[32];
    std::snprintf(rope, sizeof rope, "%g", spec.rope_base);
    std::snprintf(rho, sizeof rho, "%g", spec.frame_correlation);
    info_.description = "video KV generator, " + spec.model + " geometry (" + std::to_string(spec.layers) +
                        " layers, " + std::to_string(spec.kv_heads) + " KV heads, " +
                        std::to_string(spec.q_heads) + " query heads, D " + std::to_string(spec.head_dim) +
                        "), " + std::to_string(spec.frames()) + " frames x " +
                        std::to_string(spec.tokens_per_frame) + " tokens + " + std::to_string(spec.text_tokens) +
                        " text = " + std::to_string(spec.tokens()) + " tokens, " +
                        (spec.model == "qwen2.5-vl-7b" ? "multimodal " : "") + "RoPE base " + rope +
                        ", frame correlation " + rho + ", seed " +
                        std::to_string(spec.seed);
  }

 protected:
  LayerKv load(uint32_t layer) override { return generator_.layer(layer); }

 private:
  VideoKvGenerator generator_;
};

class DumpWorkload : public Workload {
 public:
  DumpWorkload(const std::string& dir, const DumpSelection& sel) : dir_(dir) {
    const tools::KvDump dump = tools::scan_kv_dir(dir);
    dump_tokens_ = dump.tokens;
    auto bad = [&](const std::string& m) { return Error(ErrorCode::invalid_argument, dir + ": " + m); };
    if (sel.tokens > dump.tokens)
      throw bad("--tokens " + std::to_string(sel.tokens) + " but the dump holds " + std::to_string(dump.tokens));
    if (sel.layers > dump.layers)
      throw bad("--layers " + std::to_string(sel.layers) + " but the dump has " + std::to_string(dump.layers));
    info_.source = "kv-dump";
    info_.layers = sel.layers ? sel.layers : dump.layers;
    info_.kv_heads = dump.kv_heads;
    info_.head_dim = dump.head_dim;
    info_.q_heads = sel.q_heads ? sel.q_heads : 7 * dump.kv_heads;
    info_.tokens = sel.tokens ? sel.tokens : dump.tokens;
    const int64_t first = sel.first_visual >= 0 ? sel.first_visual : 0;
    const int64_t visual = sel.visual_tokens >= 0 ? sel.visual_tokens : int64_t(info_.tokens) - first - sel.text_tokens;
    if (first + visual > int64_t(info_.tokens) || visual <= 0)
      throw bad("visual tokens [" + std::to_string(first) + ", " + std::to_string(first + visual) +
                ") do not fit in " + std::to_string(info_.tokens) + " tokens (--first-visual, --visual-tokens)");
    info_.first_visual = uint32_t(first);
    info_.visual_tokens = uint32_t(visual);
    info_.text_tokens = info_.tokens - uint32_t(first + visual);
    info_.description = "K/V dump " + dir + ": " + std::to_string(info_.layers) + " of " +
                        std::to_string(dump.layers) + " layers, " + std::to_string(info_.tokens) + " of " +
                        std::to_string(dump.tokens) + " tokens, " + std::to_string(dump.kv_heads) + " KV heads, " +
                        std::to_string(info_.q_heads) + " query heads, D " + std::to_string(dump.head_dim) +
                        "; visual tokens [" + std::to_string(first) + ", " + std::to_string(first + visual) +
                        "), " + std::to_string(info_.text_tokens) + " prompt tokens after them";
  }

 protected:
  LayerKv load(uint32_t layer) override {
    LayerKv kv;
    kv.tokens = info_.tokens;
    kv.keys = read(layer, 'k');
    kv.values = read(layer, 'v');
    return kv;
  }

 private:
  std::vector<uint16_t> read(uint32_t layer, char kind) const {
    const std::string path = dir_ + "/" + kind + "_" + std::to_string(layer) + ".npy";
    const tools::NpyArray a = tools::read_npy(path);
    // scan_kv_dir saw the same shape; a file replaced since then is caught here.
    if (a.shape != std::vector<uint64_t>{dump_tokens_, info_.kv_heads, info_.head_dim})
      throw Error(ErrorCode::invalid_argument, path + ": shape changed since the directory was scanned");
    std::vector<uint16_t> halves = tools::npy_to_fp16(a);
    halves.resize(size_t(info_.tokens) * info_.kv_heads * info_.head_dim);  // the first `tokens`
    const auto it = std::find_if(halves.begin(), halves.end(), [](uint16_t h) { return !fp16::is_finite(h); });
    if (it != halves.end()) {
      const size_t i = size_t(it - halves.begin());
      const uint32_t row = info_.kv_heads * info_.head_dim;
      throw Error(ErrorCode::invalid_argument,
                  path + ": element (token " + std::to_string(i / row) + ", head " +
                      std::to_string(i % row / info_.head_dim) + ", channel " + std::to_string(i % info_.head_dim) +
                      ") is NaN, Inf or beyond fp16's range");
    }
    return halves;
  }

  std::string dir_;
  uint64_t dump_tokens_ = 0;
};

}  // namespace

const LayerKv& Workload::layer(uint32_t layer) {
  if (layer >= info_.layers)
    throw Error(ErrorCode::invalid_argument,
                "workload layer " + std::to_string(layer) + " of " + std::to_string(info_.layers));
  auto it = kept_.find(layer);
  if (it != kept_.end()) return it->second;
  LayerKv kv = load(layer);
  const uint64_t bytes = (kv.keys.size() + kv.values.size()) * 2;
  if (kept_bytes_ + bytes <= kKeepBudgetBytes) {
    kept_bytes_ += bytes;
    return kept_.emplace(layer, std::move(kv)).first->second;
  }
  scratch_ = std::move(kv);
  return scratch_;
}

std::unique_ptr<Workload> make_generated_workload(const VideoKvSpec& spec) {
  return std::make_unique<GeneratedWorkload>(spec);
}

std::unique_ptr<Workload> make_dump_workload(const std::string& dir, const DumpSelection& selection) {
  return std::make_unique<DumpWorkload>(dir, selection);
}

}  // namespace vidkv::bench
