// Semantic token protection, CPU reference (stp.hpp): counts, scores (unfused fp32), selection with
// ties, explicit lists, and the split quantization.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

#include "vidkv/error.hpp"
#include "vidkv/fp16.hpp"
#include "vidkv/stp.hpp"

using namespace vidkv;

namespace {
std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no vidkv::Error thrown";
  return "";
}
}  // namespace

TEST(StpReference, ProtectedCount) {
  // round(p * N / G) * G: 0.2 * 6272 / 32 = 39.2 -> 39 groups = 1248 tokens.
  EXPECT_EQ(protected_count(StpSpec{0.2, 32, 0}, 6272), 1248u);
  // 0.2 * 80 / 32 = 0.5 -> halves away from zero: 1 group.
  EXPECT_EQ(protected_count(StpSpec{0.2, 32, 0}, 80), 32u);
  EXPECT_EQ(protected_count(StpSpec{0.25, 32, 0}, 256), 64u);  // exactly 2 groups
  EXPECT_EQ(protected_count(StpSpec{0.1, 32, 0}, 100), 0u);    // 0.3125 -> 0
  EXPECT_NE(message_of([] { protected_count(StpSpec{1.5, 32, 0}, 256); }).find("1.5"), std::string::npos);
  EXPECT_THROW(protected_count(StpSpec{0.0, 32, 0}, 256), Error);
  EXPECT_THROW(protected_count(StpSpec{1.0, 32, 0}, 256), Error);
  EXPECT_THROW(protected_count(StpSpec{NAN, 32, 0}, 256), Error);
}

TEST(StpReference, ScoresAreMeanDotProductsInFp32) {
  // hidden 2: v0 = (1, 2), v1 = (3, -1); text (1, 0), (0, 1), (1, 1): text_sum = (2, 2), M = 3.
  const std::vector<float> v{1, 2, 3, -1}, t{1, 0, 0, 1, 1, 1};
  const std::vector<float> s = reference::stp_scores(v, t, 2);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0], 6.0f * (1.0f / 3.0f));  // (2 + 4) * (1/3 in fp32)
  EXPECT_EQ(s[1], 4.0f * (1.0f / 3.0f));  // (6 - 2) * (1/3)
  EXPECT_NEAR(s[0], 2.0, 1e-6);
  // No fused multiply-add: v = (1, 1 + 2^-12), one text t = (-(1 + 2^-11), 1 + 2^-12). The first
  // product is exact, -(1 + 2^-11); the second is 1 + 2^-11 + 2^-24, which rounds (tie, to even) to
  // 1 + 2^-11, so the unfused sum is exactly 0; a fused a * b + c would give 2^-24.
  const float a = 1.0f + std::ldexp(1.0f, -12), b = 1.0f + std::ldexp(1.0f, -11);
  const std::vector<float> fma_probe = reference::stp_scores({1.0f, a}, {-b, a}, 2);
  EXPECT_EQ(fma_probe[0], 0.0f);
  EXPECT_NE(message_of([] { reference::stp_scores({1, 2, 3}, {1, 2}, 2); }).find("3"), std::string::npos);
  EXPECT_THROW(reference::stp_scores({1, 2}, {}, 2), Error);
  EXPECT_THROW(reference::stp_scores({1, 2}, {1, 2}, 0), Error);
}

TEST(StpReference, SelectionTakesTopScoresTiesToLowerIndex) {
  // 96 visual tokens from position 5 of 128; p = 0.34: 0.34 * 96 / 32 = 1.02 -> 32 tokens.
  // Scores: 5 for visual 50..60 (11 tokens), 1 for all others: the 21 lowest-index ties, visual
  // 0..20, complete the 32. Positions: visual + 5.
  std::vector<float> scores(96, 1.0f);
  for (int i = 50; i <= 60; ++i) scores[i] = 5.0f;
  const TokenSplit s = reference::stp_select(StpSpec{0.34, 32, 5}, scores, 128);
  std::vector<uint32_t> want;
  for (uint32_t i = 5; i <= 25; ++i) want.push_back(i);
  for (uint32_t i = 55; i <= 65; ++i) want.push_back(i);
  EXPECT_EQ(s.protected_tokens, want);
  ASSERT_EQ(s.other_tokens.size(), 96u);
  EXPECT_EQ(s.other_tokens.front(), 0u);  // text tokens before the visual ones are "other"
  EXPECT_EQ(s.other_tokens.back(), 127u);
  // The visual tokens must fit; counts must be whole groups; NaN scores are refused.
  EXPECT_THROW(reference::stp_select(StpSpec{0.34, 32, 40}, scores, 128), Error);
  EXPECT_NE(message_of([&] { reference::stp_select(StpSpec{0.34, 32, 5}, scores, 120); }).find("120"),
            std::string::npos);
  std::vector<float> nan_scores = scores;
  nan_scores[7] = NAN;
  EXPECT_THROW(reference::stp_select(StpSpec{0.34, 32, 5}, nan_scores, 128), Error);
}

TEST(StpReference, ExplicitListsAreValidated) {
  std::vector<uint32_t> list;
  for (uint32_t i = 0; i < 32; ++i) list.push_back(63 - 2 * i);  // unsorted: 63, 61, ..., 1
  const TokenSplit s = reference::split_from_list(list, 64, 32);
  for (uint32_t i = 0; i < 32; ++i) {
    EXPECT_EQ(s.protected_tokens[i], 2 * i + 1);
    EXPECT_EQ(s.other_tokens[i], 2 * i);
  }
  list[3] = 64;
  EXPECT_NE(message_of([&] { reference::split_from_list(list, 64, 32); }).find("64"), std::string::npos);
  list[3] = 63;  // 63 twice
  EXPECT_NE(message_of([&] { reference::split_from_list(list, 64, 32); }).find("repeated"), std::string::npos);
  EXPECT_NE(message_of([] { reference::split_from_list({1, 2, 3}, 64, 32); }).find("3"), std::string::npos);
  EXPECT_THROW(reference::split_from_list({}, 48, 32), Error);  // 48 others: not whole groups
  EXPECT_EQ(reference::split_from_list({}, 64, 32).other_tokens.size(), 64u);
}

TEST(StpReference, SplitQuantizationMatchesPerPartQuantization) {
  const TensorShape shape{2, 96, 64};
  std::mt19937 rng(11);
  std::normal_distribution<float> n(0.0f, 1.0f);
  const TensorLayout thd = TensorLayout::thd(shape);  // the cache's layout
  std::vector<uint16_t> x(thd.span(shape));
  for (auto& v : x) v = fp16::from_float(n(rng));
  std::vector<uint32_t> prot;
  for (uint32_t t = 0; t < 96; t += 3) prot.push_back(t);  // 32 tokens
  const TokenSplit split = reference::split_from_list(prot, 96, 32);
  const StpQuantizedValues q =
      reference::quantize_values_stp(split, 32, TernaryScale::lsq, shape, x.data(), thd);
  // Independent gather of each part into [h][j][d], quantized on its own.
  const auto part = [&](const std::vector<uint32_t>& toks, QuantBits b) {
    const TensorShape ps{shape.heads, uint32_t(toks.size()), shape.dim};
    std::vector<uint16_t> g;
    for (uint32_t h = 0; h < shape.heads; ++h)
      for (uint32_t t : toks)
        for (uint32_t d = 0; d < shape.dim; ++d) g.push_back(x[t * thd.token_stride + h * thd.head_stride + d]);
    return reference::quantize(QuantSpec{b, QuantAxis::channel, 32, TernaryScale::lsq}, ps, g.data(),
                               TensorLayout::htd(ps));
  };
  const QuantizedTensor hi = part(split.protected_tokens, QuantBits::b2), lo = part(split.other_tokens, QuantBits::b1_58);
  EXPECT_EQ(q.high.codes, hi.codes);
  EXPECT_EQ(q.high.scales, hi.scales);
  EXPECT_EQ(q.high.mins, hi.mins);
  EXPECT_EQ(q.low.codes, lo.codes);
  EXPECT_EQ(q.low.scales, lo.scales);
  EXPECT_EQ(q.low.spec.ternary_scale, TernaryScale::lsq);
  const std::vector<uint16_t> y = reference::dequantize_values_stp(q, thd);
  const auto yh = reference::dequantize(hi, TensorLayout::htd(hi.shape)), yl = reference::dequantize(lo, TensorLayout::htd(lo.shape));
  for (uint32_t h = 0; h < shape.heads; ++h)
    for (uint32_t j = 0; j < 32; ++j)
      for (uint32_t d = 0; d < shape.dim; ++d) {
        ASSERT_EQ(y[split.protected_tokens[j] * thd.token_stride + h * thd.head_stride + d], yh[(h * 32 + j) * 64 + d]);
        ASSERT_EQ(y[split.other_tokens[2 * j] * thd.token_stride + h * thd.head_stride + d], yl[(h * 64 + 2 * j) * 64 + d]);
      }
  // A split that does not cover the tokens, or does not match the shape, is refused.
  TokenSplit broken = split;
  broken.other_tokens.pop_back();
  EXPECT_THROW(reference::quantize_values_stp(broken, 32, TernaryScale::mean_abs, shape, x.data(), thd), Error);
  EXPECT_THROW(reference::quantize_values_stp(split, 32, TernaryScale::mean_abs, TensorShape{2, 128, 64}, x.data(), thd),
               Error);
  // Nothing protected: the high part is empty (tokens 0) and everything decodes from the low part.
  const StpQuantizedValues none = reference::quantize_values_stp(reference::split_from_list({}, 96, 32), 32,
                                                                 TernaryScale::mean_abs, shape, x.data(), thd);
  EXPECT_EQ(none.high.shape.tokens, 0u);
  EXPECT_TRUE(none.high.codes.empty());
  const QuantizedTensor all = reference::quantize(QuantSpec{QuantBits::b1_58, QuantAxis::channel, 32, TernaryScale::mean_abs},
                                                  shape, x.data(), thd);
  EXPECT_EQ(reference::dequantize_values_stp(none, thd), reference::dequantize(all, thd));
}
