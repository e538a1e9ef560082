#pragma once
// Where the bench's K/V come from: the video generator, or a user's .npy dump (--kv DIR), one
// context length at a time.
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "bench/video_generator.hpp"

namespace vidkv::bench {

struct WorkloadInfo {
  std::string source;       // "generator" or "kv-dump"
  std::string description;  // one line for the terminal
  uint32_t layers = 0, kv_heads = 0, q_heads = 0, head_dim = 0;
  uint32_t tokens = 0;                                   // context length
  uint32_t first_visual = 0, visual_tokens = 0;          // the video's tokens
  uint32_t text_tokens = 0;                              // tokens after the video (the prompt)
  uint32_t frames = 0, tokens_per_frame = 0;             // generator only
};

class Workload {
 public:
  virtual ~Workload() = default;
  const WorkloadInfo& info() const { return info_; }
  // fp16 K and V of one layer. Kept in memory after the first call while the total stays under a
  // budget (every preset reads every layer; generating or reading them again costs seconds).
  // The reference stays valid until the next call.
  const LayerKv& layer(uint32_t layer);
  // Whether layer() would return a kept copy without generating or reading anything.
  bool kept(uint32_t layer) const { return kept_.count(layer) > 0; }

 protected:
  virtual LayerKv load(uint32_t layer) = 0;
  WorkloadInfo info_;

 private:
  std::map<uint32_t, LayerKv> kept_;
  uint64_t kept_bytes_ = 0;
  LayerKv scratch_;  // the last layer, when over budget
};

// The generator at one size; spec.layers etc. already set.
std::unique_ptr<Workload> make_generated_workload(const VideoKvSpec& spec);

struct DumpSelection {
  uint32_t tokens = 0;   // 0: all of the dump's tokens, else its first `tokens`
  uint32_t layers = 0;   // 0: all
  uint32_t q_heads = 0;  // 0: 7 per KV head
  int64_t first_visual = -1, visual_tokens = -1;
  uint32_t text_tokens = 32;  // the default visual range leaves this many tokens for the prompt
};
// Checks the directory (scan_kv_dir) and the selection against it; throws vidkv::Error naming the
// file or the option. Layers are read when asked for; a value fp16 cannot hold (NaN, Inf, or fp32
// beyond 65504) is an error naming the file and the (token, head, channel).
std::unique_ptr<Workload> make_dump_workload(const std::string& dir, const DumpSelection& selection);

}  // namespace vidkv::bench
