#pragma once
// The built-in video KV workload: per layer, fp16 K and V [tokens][kv_heads][head_dim] of a video
// LLM that has read `frames` frames of `tokens_per_frame` visual tokens (frame-major, patches in
// raster order) followed by `text_tokens` prompt tokens. It gives the keys the structure real
// models show (DESIGN section 8), so quantization error and attention error mean something:
//
//  - RoPE by position, HF "rotate half" convention: channel i pairs with i + D/2 and rotates by
//    pos * base^(-2i/D). llava-ov-7b: pos = token index. qwen2.5-vl-7b: multimodal RoPE, the pairs
//    split in sections of D/2 * [1/4, 3/8, 3/8] (16/24/24 at D = 128) rotated by the token's
//    frame, row and column ids; text positions continue after the largest visual id.
//  - Outlier channels: `outlier_pairs` rotary pairs per (layer, head), chosen among the slowly
//    rotating half, with a standard deviation outlier_factor(l, h, k) = 10..20x the other
//    channels' and no mean; their sampled ranges come out 8-22x the median channel's. Both
//    channels of a pair get the same scale, so RoPE keeps the ratio.
//  - Neighbouring frames correlated: the pre-RoPE deviation of patch p in frame f is an AR(1)
//    process over frames, z_f = rho z_{f-1} + sqrt(1 - rho^2) e, per (head, patch, channel);
//    values the same with their own noise. Text tokens are independent draws.
//  - A prompt direction per (layer, head), of a normal channel's scale, added to the text keys
//    and, weighted by a static relevance blob over the frame grid, to the visual keys: some
//    patches are "about" the prompt, which is what semantic token protection looks for.
//  - Values have per-channel scales within 0.7..1.3 and no outlier channels.
//
// Everything is a function of (seed, layer, head): a layer can be generated alone, in any order,
// and sizes share their prefix (frame f of a 16-frame run equals frame f of a 32-frame run). The
// random numbers come from a fixed generator (xoshiro256**, Box-Muller), not from <random>'s
// distributions, whose output differs between standard libraries.
#include <cstdint>
#include <string>
#include <vector>

namespace vidkv::bench {

struct VideoKvSpec {
  std::string model = "llava-ov-7b";  // or "qwen2.5-vl-7b" (multimodal RoPE)
  uint32_t layers = 28, kv_heads = 4, q_heads = 28, head_dim = 128;
  uint32_t visual_tokens = 32 * 196;  // frames * tokens_per_frame, or fewer (last frame partial)
  uint32_t tokens_per_frame = 196;
  uint32_t text_tokens = 32;
  double rope_base = 1e6;
  double frame_correlation = 0.9;
  uint32_t outlier_pairs = 2;
  uint64_t seed = 1;

  uint32_t tokens() const { return visual_tokens + text_tokens; }
  uint32_t frames() const { return (visual_tokens + tokens_per_frame - 1) / tokens_per_frame; }
};

// Defaults for a model name; throws Error(invalid_argument) for an unknown one.
VideoKvSpec model_spec(const std::string& model);

struct LayerKv {
  uint32_t tokens = 0;
  std::vector<uint16_t> keys, values;  // fp16 [tokens][kv_heads][head_dim]
};

class VideoKvGenerator {
 public:
  // Throws Error(invalid_argument) naming the bad field (zero sizes, odd head_dim, correlation
  // outside [0, 1), too many outlier pairs, base <= 1).
  explicit VideoKvGenerator(const VideoKvSpec& spec);

  const VideoKvSpec& spec() const { return spec_; }
  LayerKv layer(uint32_t layer) const;
  // The keys before RoPE, fp32, same layout (for the tests of the structure).
  std::vector<float> keys_before_rope(uint32_t layer) const;

  // Rotary angle of pair i (channels i and i + D/2) at a token, in radians.
  double rope_angle(uint32_t token, uint32_t pair) const;
  // The outlier channels of (layer, head), increasing, and the range factor of each.
  std::vector<uint32_t> outlier_channels(uint32_t layer, uint32_t head) const;
  double outlier_factor(uint32_t layer, uint32_t head, uint32_t channel) const;  // 1 for others

 private:
  struct HeadParams;
  HeadParams head_params(uint32_t layer, uint32_t head) const;
  void generate(uint32_t layer, std::vector<float>* pre_rope_keys, LayerKv* out) const;
  // Position id of a token for the rotary section of pair i.
  uint32_t position(uint32_t token, uint32_t pair) const;

  VideoKvSpec spec_;
  uint32_t grid_rows_ = 0, grid_cols_ = 0;
  std::vector<double> inv_freq_;  // base^(-2i/D) per pair
  std::vector<float> relevance_;  // per patch of a frame, 0..1
};

}  // namespace vidkv::bench
