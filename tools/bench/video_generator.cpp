#include "bench/video_generator.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "bench/random.hpp"
#include "vidkv/error.hpp"
#include "vidkv/fp16.hpp"

namespace vidkv::bench {
namespace {

constexpr float kPromptGain = 1.0f;      // prompt direction, in units of a normal channel's scale
constexpr float kPromptClip = 2.0f;      // |prompt direction| per channel, after unit RMS
constexpr float kKeyMeanSpread = 0.3f;   // per-channel mean of the keys, likewise
constexpr double kRelevanceRadius = 2.5;  // patches

// Independent streams keyed by (seed, layer, head, purpose).
enum Stream : uint64_t { params = 1, key_noise, value_noise, text_key_noise, text_value_noise, relevance };

Rng stream(uint64_t seed, uint32_t layer, uint32_t head, Stream purpose) {
  return Rng(seed, {layer, head, uint64_t(purpose)});
}

Error bad(const std::string& message) { return Error(ErrorCode::invalid_argument, "video generator: " + message); }

}  // namespace

struct VideoKvGenerator::HeadParams {
  // per channel; prompt is already multiplied by the normal scale (outliers carry no prompt signal
  // beyond a normal channel's, so their range stays their noise's: factor x the others')
  std::vector<float> key_scale, key_mean, prompt, value_scale, value_mean;
  std::vector<uint32_t> outliers;                                           // channels, increasing
  std::vector<double> factor;                                               // per channel
};

VideoKvSpec model_spec(const std::string& model) {
  VideoKvSpec s;
  if (model != "llava-ov-7b" && model != "qwen2.5-vl-7b")
    throw bad("model " + model + ": llava-ov-7b or qwen2.5-vl-7b");
  // Both language models are Qwen2-7B-shaped: 28 layers, 28 query heads over 4 KV heads, D 128,
  // rope_theta 1e6. They differ in how positions are given to the rotary embedding.
  s.model = model;
  return s;
}

VideoKvGenerator::VideoKvGenerator(const VideoKvSpec& spec) : spec_(spec) {
  const VideoKvSpec& s = spec_;
  if (s.model != "llava-ov-7b" && s.model != "qwen2.5-vl-7b") throw bad("model " + s.model);
  if (s.layers == 0 || s.kv_heads == 0 || s.q_heads == 0) throw bad("layers, kv_heads and q_heads must be nonzero");
  if (s.head_dim < 8 || s.head_dim % 4 != 0) throw bad("head_dim " + std::to_string(s.head_dim) + " (a multiple of 4, >= 8)");
  if (s.visual_tokens == 0 || s.tokens_per_frame == 0) throw bad("no visual tokens");
  if (!(s.frame_correlation >= 0.0 && s.frame_correlation < 1.0))
    throw bad("frame_correlation " + std::to_string(s.frame_correlation) + " (in [0, 1))");
  if (!(s.rope_base > 1.0) || !std::isfinite(s.rope_base)) throw bad("rope_base " + std::to_string(s.rope_base));
  if (s.outlier_pairs > s.head_dim / 4)
    throw bad("outlier_pairs " + std::to_string(s.outlier_pairs) + " (at most head_dim / 4)");
  if (uint64_t(s.visual_tokens) + s.text_tokens > UINT32_MAX) throw bad("too many tokens");
  grid_rows_ = std::max(1u, uint32_t(std::floor(std::sqrt(double(s.tokens_per_frame)))));
  grid_cols_ = (s.tokens_per_frame + grid_rows_ - 1) / grid_rows_;
  inv_freq_.resize(s.head_dim / 2);
  for (uint32_t i = 0; i < inv_freq_.size(); ++i) inv_freq_[i] = std::pow(s.rope_base, -2.0 * i / s.head_dim);
  // A blob of patches the prompt is about, the same in every frame and layer.
  Rng rng = stream(s.seed, 0, 0, relevance);
  const double cr = rng.uniform() * grid_rows_, cc = rng.uniform() * grid_cols_;
  relevance_.resize(s.tokens_per_frame);
  for (uint32_t p = 0; p < s.tokens_per_frame; ++p) {
    const double dr = double(p / grid_cols_) + 0.5 - cr, dc = double(p % grid_cols_) + 0.5 - cc;
    relevance_[p] = float(std::exp(-(dr * dr + dc * dc) / (2 * kRelevanceRadius * kRelevanceRadius)));
  }
}

VideoKvGenerator::HeadParams VideoKvGenerator::head_params(uint32_t layer, uint32_t head) const {
  const uint32_t D = spec_.head_dim, half = D / 2;
  Rng rng = stream(spec_.seed, layer, head, params);
  HeadParams p;
  p.key_scale.resize(D);
  p.key_mean.resize(D);
  p.prompt.resize(D);
  p.value_scale.resize(D);
  p.value_mean.resize(D);
  p.factor.assign(D, 1.0);
  // Pair-wise equal scales: a rotation of two channels of different scales would smear the
  // outlier over its partner and change the range with the position.
  for (uint32_t i = 0; i < half; ++i) p.key_scale[i] = p.key_scale[i + half] = float(0.9 + 0.2 * rng.uniform());
  const std::vector<float> normal_scale = p.key_scale;
  // Outliers among the slowly rotating pairs [D/4, D/2), as in real models.
  std::vector<uint32_t> candidates(half - D / 4);
  std::iota(candidates.begin(), candidates.end(), D / 4);
  for (uint32_t k = 0; k < spec_.outlier_pairs; ++k) {
    const uint32_t j = k + uint32_t(rng.uniform() * (candidates.size() - k));
    std::swap(candidates[k], candidates[j]);
    const uint32_t pair = candidates[k];
    const double f = 10.0 + 10.0 * rng.uniform();
    p.factor[pair] = p.factor[pair + half] = f;
    p.key_scale[pair] = p.key_scale[pair + half] = float(f);
    p.outliers.push_back(pair);
    p.outliers.push_back(pair + half);
  }
  std::sort(p.outliers.begin(), p.outliers.end());
  double norm = 0;
  for (uint32_t d = 0; d < D; ++d) {
    // Outliers without a mean: with a fast base (1e4) even their pairs turn over a long video, and
    // a rotating mean would widen their range beyond the factor asked for.
    const float mean = kKeyMeanSpread * rng.normal();
    p.key_mean[d] = p.factor[d] > 1.0 ? 0.0f : mean;
    p.prompt[d] = rng.normal();
    norm += double(p.prompt[d]) * p.prompt[d];
    p.value_scale[d] = float(0.7 + 0.6 * rng.uniform());
    p.value_mean[d] = 0.2f * rng.normal();
  }
  const float rms = float(std::sqrt(norm / D));
  for (uint32_t d = 0; d < D; ++d)
    p.prompt[d] = normal_scale[d] * kPromptGain * std::clamp(p.prompt[d] / rms, -kPromptClip, kPromptClip);
  return p;
}

uint32_t VideoKvGenerator::position(uint32_t token, uint32_t pair) const {
  if (spec_.model != "qwen2.5-vl-7b") return token;
  // Multimodal RoPE: (frame, row, column) ids for visual tokens; text continues after the largest.
  const uint32_t half = spec_.head_dim / 2, temporal = half / 4, rows = temporal + (half - temporal) / 2;
  if (token >= spec_.visual_tokens) {
    const uint32_t max_id = std::max({spec_.frames() - 1, grid_rows_ - 1, grid_cols_ - 1});
    return max_id + 1 + (token - spec_.visual_tokens);
  }
  const uint32_t f = token / spec_.tokens_per_frame, p = token % spec_.tokens_per_frame;
  if (pair < temporal) return f;
  if (pair < rows) return p / grid_cols_;
  return p % grid_cols_;
}

double VideoKvGenerator::rope_angle(uint32_t token, uint32_t pair) const {
  return double(position(token, pair)) * inv_freq_.at(pair);
}

std::vector<uint32_t> VideoKvGenerator::outlier_channels(uint32_t layer, uint32_t head) const {
  return head_params(layer, head).outliers;
}

double VideoKvGenerator::outlier_factor(uint32_t layer, uint32_t head, uint32_t channel) const {
  return head_params(layer, head).factor.at(channel);
}

void VideoKvGenerator::generate(uint32_t layer, std::vector<float>* pre_rope_keys, LayerKv* out) const {
  if (layer >= spec_.layers) throw bad("layer " + std::to_string(layer) + " of " + std::to_string(spec_.layers));
  const uint32_t T = spec_.tokens(), H = spec_.kv_heads, D = spec_.head_dim, half = D / 2;
  const uint32_t P = spec_.tokens_per_frame, V = spec_.visual_tokens;
  const float rho = float(spec_.frame_correlation), innovation = std::sqrt(1.0f - rho * rho);
  std::vector<float> keys(size_t(T) * H * D), values(size_t(T) * H * D);
  std::vector<float> key_state(size_t(P) * D), value_state(size_t(P) * D);
  for (uint32_t h = 0; h < H; ++h) {
    const HeadParams hp = head_params(layer, h);
    Rng kn = stream(spec_.seed, layer, h, key_noise), vn = stream(spec_.seed, layer, h, value_noise);
    Rng tk = stream(spec_.seed, layer, h, text_key_noise), tv = stream(spec_.seed, layer, h, text_value_noise);
    for (uint32_t t = 0; t < T; ++t) {
      float* k = &keys[(size_t(t) * H + h) * D];
      float* v = &values[(size_t(t) * H + h) * D];
      if (t < V) {
        const uint32_t p = t % P;
        const bool first_frame = t < P;
        const float rel = relevance_[p];
        float* ks = &key_state[size_t(p) * D];
        float* vs = &value_state[size_t(p) * D];
        for (uint32_t d = 0; d < D; ++d) {
          ks[d] = first_frame ? kn.normal() : rho * ks[d] + innovation * kn.normal();
          vs[d] = first_frame ? vn.normal() : rho * vs[d] + innovation * vn.normal();
          k[d] = hp.key_scale[d] * (hp.key_mean[d] + ks[d]) + rel * hp.prompt[d];
          v[d] = hp.value_mean[d] + hp.value_scale[d] * vs[d];
        }
      } else {
        for (uint32_t d = 0; d < D; ++d) {
          k[d] = hp.key_scale[d] * (hp.key_mean[d] + tk.normal()) + hp.prompt[d];
          v[d] = hp.value_mean[d] + hp.value_scale[d] * tv.normal();
        }
      }
    }
  }
  if (pre_rope_keys) *pre_rope_keys = keys;
  if (!out) return;
  // RoPE, rotate-half pairs (i, i + D/2); the angle depends on the token only, not the head.
  std::vector<float> c(half), s(half);
  for (uint32_t t = 0; t < T; ++t) {
    for (uint32_t i = 0; i < half; ++i) {
      const double a = rope_angle(t, i);
      c[i] = float(std::cos(a));
      s[i] = float(std::sin(a));
    }
    for (uint32_t h = 0; h < H; ++h) {
      float* k = &keys[(size_t(t) * H + h) * D];
      for (uint32_t i = 0; i < half; ++i) {
        const float x = k[i], y = k[i + half];
        k[i] = x * c[i] - y * s[i];
        k[i + half] = y * c[i] + x * s[i];
      }
    }
  }
  out->tokens = T;
  out->keys.resize(keys.size());
  out->values.resize(values.size());
  for (size_t i = 0; i < keys.size(); ++i) out->keys[i] = fp16::from_float(keys[i]);
  for (size_t i = 0; i < values.size(); ++i) out->values[i] = fp16::from_float(values[i]);
}

LayerKv VideoKvGenerator::layer(uint32_t layer) const {
  LayerKv out;
  generate(layer, nullptr, &out);
  return out;
}

std::vector<float> VideoKvGenerator::keys_before_rope(uint32_t layer) const {
  std::vector<float> keys;
  generate(layer, &keys, nullptr);
  return keys;
}

}  // namespace vidkv::bench
