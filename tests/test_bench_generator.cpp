// The bench's video KV generator has the structure it promises (tools/bench/video_generator.hpp):
// RoPE by position (checked against angles computed here, 1-D and multimodal, both bases), a few
// outlier channels per head with 10-20x the range of the others, AR(1) correlation between the
// same patch in neighbouring frames, values without outliers, and determinism from the seed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <vector>

#include "bench/stp_input.hpp"
#include "bench/video_generator.hpp"
#include "bench/workload.hpp"
#include "vidkv/error.hpp"
#include "vidkv/fp16.hpp"

namespace vidkv::test {
namespace {

using bench::VideoKvGenerator;
using bench::VideoKvSpec;

constexpr double kPi = 3.14159265358979323846;

VideoKvSpec small_spec(uint32_t frames = 12) {
  VideoKvSpec s;
  s.layers = 3;
  s.visual_tokens = frames * s.tokens_per_frame;
  return s;
}

float at(const std::vector<uint16_t>& halves, size_t i) { return fp16::to_float(halves[i]); }

// Per channel of one head: max - min over all tokens.
std::vector<double> channel_ranges(const std::vector<uint16_t>& data, uint32_t tokens, uint32_t heads, uint32_t head,
                                   uint32_t dim) {
  std::vector<double> lo(dim, INFINITY), hi(dim, -INFINITY);
  for (uint32_t t = 0; t < tokens; ++t)
    for (uint32_t d = 0; d < dim; ++d) {
      const double x = at(data, (size_t(t) * heads + head) * dim + d);
      lo[d] = std::min(lo[d], x);
      hi[d] = std::max(hi[d], x);
    }
  std::vector<double> r(dim);
  for (uint32_t d = 0; d < dim; ++d) r[d] = hi[d] - lo[d];
  return r;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

TEST(BenchGenerator, OutlierChannelsHaveTenToTwentyTimesTheRange) {
  const VideoKvGenerator gen(small_spec());
  const VideoKvSpec& s = gen.spec();
  // The factor scales the outlier's noise; its sampled range (extremes of a few thousand
  // correlated draws) scatters around factor x the typical range by about +-25% (measured over all
  // 28 layers and both bases: 0.75 to 1.35, ratios 8.3 to 21.8).
  double ratio_sum = 0;
  uint32_t outlier_count = 0;
  for (uint32_t layer = 0; layer < s.layers; ++layer) {
    const auto kv = gen.layer(layer);
    for (uint32_t h = 0; h < s.kv_heads; ++h) {
      SCOPED_TRACE("layer " + std::to_string(layer) + " head " + std::to_string(h));
      const auto outliers = gen.outlier_channels(layer, h);
      ASSERT_EQ(outliers.size(), 2 * s.outlier_pairs);
      const auto ranges = channel_ranges(kv.keys, kv.tokens, s.kv_heads, h, s.head_dim);
      std::vector<double> normal;
      for (uint32_t d = 0; d < s.head_dim; ++d)
        if (!std::count(outliers.begin(), outliers.end(), d)) normal.push_back(ranges[d]);
      const double typical = median(normal);
      // The outliers are exactly the channels of largest range: what VidKV's selection sees.
      std::vector<uint32_t> order(s.head_dim);
      std::iota(order.begin(), order.end(), 0u);
      std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return ranges[a] > ranges[b]; });
      EXPECT_EQ(std::set<uint32_t>(order.begin(), order.begin() + outliers.size()),
                std::set<uint32_t>(outliers.begin(), outliers.end()));
      for (uint32_t c : outliers) {
        const double factor = gen.outlier_factor(layer, h, c);
        EXPECT_GE(factor, 10.0);
        EXPECT_LE(factor, 20.0);
        const double measured = ranges[c] / typical;
        EXPECT_GT(measured, 0.7 * factor) << "channel " << c;
        EXPECT_LT(measured, 1.4 * factor) << "channel " << c;
        EXPECT_GT(measured, 7.5) << "channel " << c;
        EXPECT_LT(measured, 25.0) << "channel " << c;
        ratio_sum += measured / factor;
        ++outlier_count;
        // Both channels of a rotary pair are outliers (RoPE would mix a lone one into its partner).
        const uint32_t partner = c < s.head_dim / 2 ? c + s.head_dim / 2 : c - s.head_dim / 2;
        EXPECT_TRUE(std::count(outliers.begin(), outliers.end(), partner));
      }
      // Values: no outlier channels.
      const auto value_ranges = channel_ranges(kv.values, kv.tokens, s.kv_heads, h, s.head_dim);
      EXPECT_LT(*std::max_element(value_ranges.begin(), value_ranges.end()) / median(value_ranges), 2.5);
    }
  }
  EXPECT_NEAR(ratio_sum / outlier_count, 1.0, 0.12) << "on average the range ratio is the factor";
}

// rho estimated from lag-1 and lag-2 frame differences of the same patch before RoPE: for an AR(1)
// process Var(z_{f+2} - z_f) / Var(z_{f+1} - z_f) = 1 + rho, and anything constant per patch (the
// channel mean, the prompt relevance) cancels in the differences.
double estimated_frame_correlation(const VideoKvGenerator& gen, uint32_t layer) {
  const VideoKvSpec& s = gen.spec();
  const auto pre = gen.keys_before_rope(layer);
  const uint32_t P = s.tokens_per_frame, F = s.frames(), H = s.kv_heads, D = s.head_dim;
  double lag1 = 0, lag2 = 0;
  for (uint32_t h = 0; h < H; ++h) {
    const auto outliers = gen.outlier_channels(layer, h);
    for (uint32_t d = 0; d < D; ++d) {
      if (std::count(outliers.begin(), outliers.end(), d)) continue;
      for (uint32_t p = 0; p < P; ++p)
        for (uint32_t f = 0; f + 2 < F; ++f) {
          auto x = [&](uint32_t frame) { return double(pre[((size_t(frame) * P + p) * H + h) * D + d]); };
          lag1 += (x(f + 1) - x(f)) * (x(f + 1) - x(f));
          lag2 += (x(f + 2) - x(f)) * (x(f + 2) - x(f));
        }
    }
  }
  return lag2 / lag1 - 1.0;
}

TEST(BenchGenerator, NeighbouringFramesAreCorrelatedAsAsked) {
  for (double rho : {0.9, 0.6, 0.0}) {
    SCOPED_TRACE("rho " + std::to_string(rho));
    VideoKvSpec s = small_spec(16);
    s.layers = 1;
    s.frame_correlation = rho;
    EXPECT_NEAR(estimated_frame_correlation(VideoKvGenerator(s), 0), rho, 0.03);
  }
}

// The test's own position ids: 1-D, or (frame, row, column) over the 14 x 14 grid in sections
// 16 / 24 / 24 of the 64 pairs, text continuing after the largest id.
uint32_t expected_position(const VideoKvSpec& s, uint32_t t, uint32_t pair) {
  if (s.model == "llava-ov-7b") return t;
  const uint32_t frames = s.frames();
  if (t >= s.visual_tokens) return std::max(frames - 1, 13u) + 1 + (t - s.visual_tokens);
  const uint32_t p = t % 196;
  return pair < 16 ? t / 196 : pair < 40 ? p / 14 : p % 14;
}

TEST(BenchGenerator, KeysAreRotatedByRopeOfTheirPosition) {
  for (const char* model : {"llava-ov-7b", "qwen2.5-vl-7b"})
    for (double base : {1e4, 1e6}) {
      SCOPED_TRACE(std::string(model) + " base " + std::to_string(base));
      VideoKvSpec s = small_spec(3);
      s.model = model;
      s.rope_base = base;
      s.layers = 1;
      const VideoKvGenerator gen(s);
      const auto pre = gen.keys_before_rope(0);
      const auto kv = gen.layer(0);
      const uint32_t H = s.kv_heads, D = s.head_dim, half = D / 2;
      uint32_t checked = 0;
      double worst = 0;
      for (uint32_t t = 0; t < kv.tokens; t += 7)
        for (uint32_t h = 0; h < H; ++h)
          for (uint32_t i = 0; i < half; ++i) {
            const size_t row = (size_t(t) * H + h) * D;
            const double x = pre[row + i], y = pre[row + i + half];
            const double xr = at(kv.keys, row + i), yr = at(kv.keys, row + i + half);
            const double norm = std::hypot(x, y);
            if (norm < 1.0) continue;  // fp16 rounding blurs the angle of short pairs
            EXPECT_NEAR(std::hypot(xr, yr) / norm, 1.0, 2e-3);
            const double angle = expected_position(s, t, i) * std::pow(base, -2.0 * i / D);
            double diff = std::atan2(yr, xr) - std::atan2(y, x) - angle;
            diff = std::remainder(diff, 2 * kPi);
            worst = std::max(worst, std::fabs(diff));
            ++checked;
          }
      EXPECT_GT(checked, 10000u);
      EXPECT_LT(worst, 2e-3) << "rotation angle off by " << worst << " rad";
    }
}

TEST(BenchGenerator, SameSeedSameDataAndSizesShareTheirPrefix) {
  const VideoKvSpec s = small_spec(4);
  const auto a = VideoKvGenerator(s).layer(1), b = VideoKvGenerator(s).layer(1);
  EXPECT_EQ(a.keys, b.keys);
  EXPECT_EQ(a.values, b.values);
  VideoKvSpec other = s;
  other.seed = s.seed + 1;
  EXPECT_NE(VideoKvGenerator(other).layer(1).keys, a.keys);
  EXPECT_NE(VideoKvGenerator(s).layer(2).keys, a.keys);  // layers differ
  // 8 frames begin with the same 4 frames (the text after them moves, so compare the video only).
  VideoKvSpec longer = s;
  longer.visual_tokens = 2 * s.visual_tokens;
  const auto c = VideoKvGenerator(longer).layer(1);
  const size_t video = size_t(s.visual_tokens) * s.kv_heads * s.head_dim;
  EXPECT_TRUE(std::equal(a.keys.begin(), a.keys.begin() + video, c.keys.begin()));
  EXPECT_TRUE(std::equal(a.values.begin(), a.values.begin() + video, c.values.begin()));
  EXPECT_EQ(a.tokens, s.visual_tokens + s.text_tokens);
  EXPECT_EQ(a.keys.size(), size_t(a.tokens) * s.kv_heads * s.head_dim);
}

TEST(BenchGenerator, PromptRelevantPatchesScoreHigherForStp) {
  // The STP input computed from the generated keys should favour the patches the generator made
  // relevant to the prompt: the top-scored fifth of the visual tokens is concentrated on few
  // patches, repeated across frames, rather than spread at random.
  VideoKvSpec s = small_spec(8);
  s.layers = 1;
  const VideoKvGenerator gen(s);
  const auto kv = gen.layer(0);
  bench::WorkloadInfo info;
  info.kv_heads = s.kv_heads;
  info.head_dim = s.head_dim;
  info.first_visual = 0;
  info.visual_tokens = s.visual_tokens;
  const auto stp = bench::stp_layer_input(kv, info);
  ASSERT_EQ(stp.scores.size(), s.visual_tokens);
  std::vector<uint32_t> order(stp.scores.size());
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return stp.scores[a] > stp.scores[b]; });
  std::set<uint32_t> patches;
  for (size_t i = 0; i < order.size() / 5; ++i) patches.insert(order[i] % s.tokens_per_frame);
  // At random the top 20% of 8 x 196 tokens would cover about 84% of the 196 patches.
  EXPECT_LT(patches.size(), s.tokens_per_frame / 2);
  // Without prompt tokens there is nothing to score against.
  info.visual_tokens = kv.tokens;
  EXPECT_THROW(bench::stp_layer_input(kv, info), Error);
}

TEST(BenchGenerator, RefusesImpossibleSpecs) {
  VideoKvSpec s = small_spec();
  s.head_dim = 30;
  EXPECT_THROW(VideoKvGenerator{s}, Error);
  s = small_spec();
  s.frame_correlation = 1.0;
  EXPECT_THROW(VideoKvGenerator{s}, Error);
  s = small_spec();
  s.model = "llama";
  EXPECT_THROW(VideoKvGenerator{s}, Error);
  s = small_spec();
  s.rope_base = 1.0;
  EXPECT_THROW(VideoKvGenerator{s}, Error);
  EXPECT_THROW(VideoKvGenerator(small_spec()).layer(3), Error);
  EXPECT_THROW(bench::model_spec("gpt"), Error);
}

}  // namespace
}  // namespace vidkv::test
