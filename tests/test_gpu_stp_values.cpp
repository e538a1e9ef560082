// GPU token-split value quantization against the CPU reference: codes, scales and mins of both
// parts bit for bit, decoded values bit for bit, with every device output poisoned (0xFF, then
// 0x00) before each run. Then bad input: the reference's error code for each, and nothing written.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "common/random_data.hpp"
#include "vidkv/gpu_stp.hpp"
#include "vidkv/stp.hpp"
#include "vulkan_fixture.hpp"

namespace vidkv::test {
namespace {

constexpr uint8_t kPoisons[] = {0xff, 0x00};

// Device buffers for one part, sized by packed_bytes (4-byte placeholders for an empty part).
struct PartBuffers {
  rt::Buffer codes, scales, mins;
  PartBuffers(const std::shared_ptr<rt::Context>& ctx, const QuantizedTensor& like)
      : codes(ctx, like.shape.tokens ? packed_bytes(like.spec, like.shape).codes : 4),
        scales(ctx, like.shape.tokens ? packed_bytes(like.spec, like.shape).scales : 4),
        mins(ctx, like.shape.tokens ? packed_bytes(like.spec, like.shape).mins : 4) {}
  PackedBuffers views() const { return {codes.view(), scales.view(), mins.view()}; }
  void fill(uint8_t v) {
    codes.fill(v);
    scales.fill(v);
    mins.fill(v);
  }
  // The part as the device left it, against the reference's arrays.
  void expect_equal(const QuantizedTensor& ref, const std::string& what) const {
    if (ref.shape.tokens == 0) return;
    std::vector<uint32_t> c(ref.codes.size());
    codes.download(c.data(), c.size() * 4);
    EXPECT_EQ(c, ref.codes) << what << " codes";
    const size_t halves = (ref.scales.size() + 1) / 2 * 2;
    std::vector<uint16_t> s(halves), m(halves);
    scales.download(s.data(), halves * 2);
    mins.download(m.data(), halves * 2);
    s.resize(ref.scales.size());
    m.resize(ref.mins.size());
    EXPECT_EQ(s, ref.scales) << what << " scales";
    EXPECT_EQ(m, ref.mins) << what << " mins";
  }
};

struct LayoutCase {
  std::string name;
  TensorLayout layout;
};

class GpuStpValues : public VulkanTest {
 protected:
  void check(const TokenSplit& split, const TensorShape& shape, const LayoutCase& lc, TernaryScale ternary,
             uint64_t seed) {
    SCOPED_TRACE(lc.name + std::string(" ternary ") + ternary_scale_name(ternary) + " protected " +
                 std::to_string(split.protected_tokens.size()));
    const uint32_t group = 32;
    const auto input = tools::random_halves(shape, lc.layout, seed);
    const StpQuantizedValues ref =
        reference::quantize_values_stp(split, group, ternary, shape, input.data(), lc.layout);
    const std::vector<uint16_t> ref_out = reference::dequantize_values_stp(ref, lc.layout);
    GpuStp stp(ctx);

    const uint64_t span = lc.layout.span(shape), bytes = (span * 2 + 3) / 4 * 4;
    rt::Buffer in(ctx, bytes), out(ctx, bytes);
    in.upload(input.data(), span * 2);
    PartBuffers high(ctx, ref.high), low(ctx, ref.low);
    for (uint8_t poison : kPoisons) {
      high.fill(poison);
      low.fill(poison);
      stp.quantize_values(split, group, ternary, shape, lc.layout, in.view(), high.views(), low.views());
      high.expect_equal(ref.high, "high, poison " + std::to_string(poison));
      low.expect_equal(ref.low, "low, poison " + std::to_string(poison));
    }
    // Decode the device's packed arrays (equal to the reference's, checked above).
    for (uint8_t poison : kPoisons) {
      out.fill(poison);
      stp.dequantize_values(split, group, ternary, shape, high.views(), low.views(), lc.layout, out.view());
      std::vector<uint16_t> gpu(bytes / 2);
      out.download(gpu.data(), bytes);
      size_t mismatches = 0;
      for (uint32_t h = 0; h < shape.heads; ++h)
        for (uint32_t t = 0; t < shape.tokens; ++t)
          for (uint32_t d = 0; d < shape.dim; ++d) {
            const uint64_t e = h * lc.layout.head_stride + t * lc.layout.token_stride + d;
            if (gpu[e] != ref_out[e] && mismatches++ < 5) {
              ADD_FAILURE() << "decoded (" << h << ", " << t << ", " << d << ") " << gpu[e] << " vs " << ref_out[e]
                            << ", poison " << int(poison);
            }
          }
      EXPECT_EQ(mismatches, 0u);
    }
    const StpQuantizedValues host = stp.quantize_values_host(split, group, ternary, shape, input, lc.layout);
    EXPECT_EQ(host.high.codes, ref.high.codes);
    EXPECT_EQ(host.high.scales, ref.high.scales);
    EXPECT_EQ(host.low.codes, ref.low.codes);
    EXPECT_EQ(host.low.mins, ref.low.mins);
    EXPECT_EQ(host.low.spec.ternary_scale, ref.low.spec.ternary_scale);
    EXPECT_EQ(stp.dequantize_values_host(ref, lc.layout), ref_out);  // uncovered positions 0 in both
  }
};

TEST_F(GpuStpValues, CodesScalesMinsAndDecodingBitExact) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  // 32 prompt tokens, 256 visual, 32 after: n = round(0.2 * 256 / 32) * 32 = 64 protected.
  const TensorShape shape{4, 320, 64};
  std::vector<float> scores(256);
  for (auto& s : scores) s = normal(rng);
  const TokenSplit split = reference::stp_select({0.2, 32, 32}, scores, shape.tokens);
  const LayoutCase layouts[] = {
      {"thd", TensorLayout::thd(shape)},
      {"htd", TensorLayout::htd(shape)},
      // odd token stride: rows start mid-word, so gather and scatter split words between tokens
      {"padded odd stride", TensorLayout{65, uint64_t(shape.heads) * 65 + 3}},
  };
  for (const auto& lc : layouts) {
    for (TernaryScale ternary : {TernaryScale::mean_abs, TernaryScale::lsq}) check(split, shape, lc, ternary, rng());
  }
  // An empty part: nothing protected.
  check(reference::split_from_list({}, shape.tokens, 32), shape, layouts[0], TernaryScale::mean_abs, rng());
}

// ---- bad input: the reference's error code, and nothing written ----

class GpuStpErrors : public VulkanTest {
 protected:
  template <class Gpu, class Ref>
  void expect_rejected(const std::string& what, ErrorCode code, Gpu&& gpu, Ref&& ref) {
    SCOPED_TRACE(what);
    auto code_of = [&](auto&& f) {
      try {
        f();
      } catch (const Error& e) {
        return std::optional<ErrorCode>(e.code());
      }
      return std::optional<ErrorCode>();
    };
    EXPECT_EQ(code_of(ref), std::optional<ErrorCode>(code)) << "reference";
    EXPECT_EQ(code_of(gpu), std::optional<ErrorCode>(code)) << "GPU";
  }
  // Every byte of `b` still holds the poison.
  static void expect_untouched(const rt::Buffer& b, uint8_t poison) {
    std::vector<uint8_t> bytes(b.size());
    b.download(bytes.data(), bytes.size());
    for (uint8_t v : bytes) ASSERT_EQ(v, poison) << "written despite the error";
  }
};

TEST_F(GpuStpErrors, ScoresRejectBadSizes) {
  GpuStp stp(ctx);
  const std::vector<float> v(64 * 8, 1.0f), t(64 * 2, 1.0f);
  expect_rejected(
      "hidden 0", ErrorCode::invalid_argument, [&] { stp.scores_host(v, t, 0); },
      [&] { reference::stp_scores(v, t, 0); });
  expect_rejected(
      "no visual", ErrorCode::invalid_argument, [&] { stp.scores_host({}, t, 64); },
      [&] { reference::stp_scores({}, t, 64); });
  expect_rejected(
      "no text", ErrorCode::invalid_argument, [&] { stp.scores_host(v, {}, 64); },
      [&] { reference::stp_scores(v, {}, 64); });
  expect_rejected(
      "hidden mismatch", ErrorCode::invalid_argument, [&] { stp.scores_host(v, t, 48); },
      [&] { reference::stp_scores(v, t, 48); });
  rt::Buffer in(ctx, 4096), out(ctx, 16);
  out.fill(0xab);
  expect_rejected(
      "scores buffer too small", ErrorCode::buffer_too_small,
      [&] { stp.scores(in.view(), ElementType::f32, 8, in.view(), ElementType::f32, 2, 64, out.view()); },
      [] { throw Error(ErrorCode::buffer_too_small, "device only"); });
  expect_untouched(out, 0xab);
}

TEST_F(GpuStpErrors, SelectRejectsBadSpecAndScores) {
  GpuStp stp(ctx);
  std::vector<float> s(256, 1.0f);
  rt::Buffer sbuf(ctx, 1024), pbuf(ctx, 1024), obuf(ctx, 2048);
  pbuf.fill(0xcd);
  obuf.fill(0xcd);
  auto both = [&](const std::string& what, ErrorCode code, StpSpec spec, uint32_t total) {
    expect_rejected(
        what, code, [&] { stp.select(spec, sbuf.view(), 256, total, pbuf.view(), obuf.view()); },
        [&] { reference::stp_select(spec, s, total); });
    expect_rejected(
        what + " (host)", code, [&] { stp.select_host(spec, s, total); },
        [&] { reference::stp_select(spec, s, total); });
  };
  for (double p : {0.0, 1.0, -0.5, 1.5, std::nan("")})
    both("ratio " + std::to_string(p), ErrorCode::invalid_argument, {p, 32, 0}, 256);
  both("group 0", ErrorCode::bad_group_size, {0.2, 0, 0}, 256);
  both("visual past the end", ErrorCode::invalid_argument, {0.2, 32, 10}, 256);
  both("others not whole groups", ErrorCode::bad_group_size, {0.2, 32, 0}, 260);
  expect_untouched(pbuf, 0xcd);
  expect_untouched(obuf, 0xcd);
  s[17] = std::nanf("");
  expect_rejected(
      "NaN score", ErrorCode::invalid_argument,
      [&] {
        stp.select_host({0.2, 32, 0}, s, 256);
      },
      [&] {
        reference::stp_select({0.2, 32, 0}, s, 256);
      });
}

TEST_F(GpuStpErrors, ValuesRejectBadSplits) {
  GpuStp stp(ctx);
  const TensorShape shape{2, 128, 64};
  const TensorLayout layout = TensorLayout::thd(shape);
  const std::vector<uint16_t> input(layout.span(shape), 0x3c00);
  rt::Buffer in(ctx, input.size() * 2);
  in.upload(input.data(), input.size() * 2);
  const TokenSplit good = reference::split_from_list({0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                                                      16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31},
                                                     shape.tokens, 32);
  const StpQuantizedValues q = reference::quantize_values_stp(good, 32, TernaryScale::lsq, shape, input.data(), layout);
  PartBuffers high(ctx, q.high), low(ctx, q.low);
  high.fill(0xee);
  low.fill(0xee);
  auto quantize = [&](const std::string& what, ErrorCode code, TokenSplit split, uint32_t group) {
    expect_rejected(
        what, code,
        [&] {
          stp.quantize_values(split, group, TernaryScale::lsq, shape, layout, in.view(), high.views(), low.views());
        },
        [&] { reference::quantize_values_stp(split, group, TernaryScale::lsq, shape, input.data(), layout); });
  };
  TokenSplit bad = good;
  bad.protected_tokens[5] = 200;
  quantize("token out of range", ErrorCode::invalid_argument, bad, 32);
  bad = good;
  bad.other_tokens[3] = bad.protected_tokens[3];
  quantize("token repeated", ErrorCode::invalid_argument, bad, 32);
  bad = good;
  std::swap(bad.protected_tokens[1], bad.protected_tokens[2]);
  quantize("tokens out of order", ErrorCode::invalid_argument, bad, 32);
  bad = good;
  bad.other_tokens.pop_back();
  quantize("split incomplete", ErrorCode::invalid_argument, bad, 32);
  bad = good;
  bad.other_tokens.insert(bad.other_tokens.begin(), bad.protected_tokens.back());
  bad.protected_tokens.pop_back();
  quantize("counts not whole groups", ErrorCode::bad_group_size, bad, 32);
  quantize("group 0", ErrorCode::bad_group_size, good, 0);
  quantize("group 48", ErrorCode::bad_group_size, good, 48);
  rt::Buffer tiny(ctx, 16);
  expect_rejected(
      "codes buffer too small", ErrorCode::buffer_too_small,
      [&] {
        stp.quantize_values(good, 32, TernaryScale::lsq, shape, layout, in.view(),
                            {tiny.view(), high.scales.view(), high.mins.view()}, low.views());
      },
      [] { throw Error(ErrorCode::buffer_too_small, "device only"); });
  expect_rejected(
      "input too small", ErrorCode::buffer_too_small,
      [&] { stp.quantize_values_host(good, 32, TernaryScale::lsq, shape, std::vector<uint16_t>(100), layout); },
      [] { throw Error(ErrorCode::buffer_too_small, "the reference takes a pointer"); });
  for (const auto* b : {&high.codes, &high.scales, &high.mins, &low.codes, &low.scales, &low.mins})
    expect_untouched(*b, 0xee);

  StpQuantizedValues broken = q;
  broken.low.codes.pop_back();
  expect_rejected(
      "decoding mismatched arrays", ErrorCode::invalid_argument, [&] { stp.dequantize_values_host(broken, layout); },
      [] { throw Error(ErrorCode::invalid_argument, "the reference does not check array sizes"); });
  rt::Buffer out(ctx, input.size() * 2);
  out.fill(0x77);
  bad = good;
  bad.other_tokens[0] = 127;
  expect_rejected(
      "decoding a bad split", ErrorCode::invalid_argument,
      [&] { stp.dequantize_values(bad, 32, TernaryScale::lsq, shape, high.views(), low.views(), layout, out.view()); },
      [&] {
        StpQuantizedValues r = q;
        r.split = bad;
        reference::dequantize_values_stp(r, layout);
      });
  expect_untouched(out, 0x77);
}

}  // namespace
}  // namespace vidkv::test
