// VidKV keys on the GPU against the reference (vidkv_keys.hpp): ranges and channel choices
// bit-exact; VkFFT's coefficients within fp16 rounding of the reference's double DFT; codes,
// scales and mins bit-exact when the reference quantizes the GPU's coefficients; decoded keys within
// fp16 rounding. Every output and intermediate buffer is poisoned twice (0x00, 0xFF).
#include <gtest/gtest.h>

#include <sstream>

#include "common/random_data.hpp"
#include "key_tolerance.hpp"
#include "vidkv/gpu_keys.hpp"
#include "vulkan_fixture.hpp"

namespace vidkv::test {
namespace {

struct KeyCase {
  double nbits;
  FftLayout fft;
  ChannelScope scope;
  TensorShape shape;
};

std::string key_case_name(const KeyCase& c) {
  std::ostringstream s;
  s << "nbits" << int(c.nbits * 100) << "_" << fft_layout_name(c.fft) << "_" << channel_scope_name(c.scope) << "_h"
    << c.shape.heads << "t" << c.shape.tokens << "d" << c.shape.dim;
  return s.str();
}

std::vector<KeyCase> key_cases() {
  std::vector<KeyCase> cases;
  for (double nbits : {1.0, 1.25, 1.5, 1.75, 2.0}) {
    for (FftLayout fft : {FftLayout::half, FftLayout::full}) {
      cases.push_back({nbits, fft, ChannelScope::head, {2, 64, 128}});
    }
  }
  cases.push_back({1.5, FftLayout::half, ChannelScope::layer, {4, 96, 128}});
  cases.push_back({1.5, FftLayout::full, ChannelScope::layer, {4, 96, 128}});
  cases.push_back({1.3, FftLayout::half, ChannelScope::head, {3, 32, 64}});  // k = 19: 45 normal channels (odd)
  cases.push_back({1.3, FftLayout::full, ChannelScope::head, {3, 32, 64}});
  return cases;
}

class GpuKeysMatchReference : public VulkanTest, public ::testing::WithParamInterface<KeyCase> {};

TEST_P(GpuKeysMatchReference, SelectionCodesAndDecoding) {
  const KeyCase& c = GetParam();
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const KeySpec spec{c.nbits, 32, c.scope, c.fft};
  const TensorLayout layout = TensorLayout::thd(c.shape);
  const auto input = tools::random_halves(c.shape, layout, seed);
  const uint32_t k = anomalous_channel_count(spec, c.shape.dim);
  const uint32_t streams = coefficient_streams(spec.fft, c.shape.dim - k);
  GpuKeyQuantizer gpu(ctx);

  for (uint8_t poison : {uint8_t(0x00), uint8_t(0xff)}) {
    SCOPED_TRACE("poison " + std::to_string(poison));
    gpu.set_poison(poison);
    const QuantizedKeys q = gpu.quantize_host(spec, c.shape, input, layout);
    const auto ranges = reference::channel_ranges(c.shape, input.data(), layout, c.scope);
    EXPECT_EQ(q.ranges, ranges);
    const auto splits = reference::select_channels(ranges, c.shape.dim, c.shape.heads, c.scope, k);
    ASSERT_EQ(q.splits.size(), splits.size());
    for (size_t h = 0; h < splits.size(); ++h) {
      EXPECT_EQ(q.splits[h].anomalous, splits[h].anomalous) << "head " << h;
      EXPECT_EQ(q.splits[h].normal, splits[h].normal) << "head " << h;
    }
    if (streams > 0) {
      const auto ref_coefficients = reference::key_coefficients(spec, c.shape, input.data(), layout, splits);
      const auto coeff = compare_within_fp16_rounding(q.coefficients, ref_coefficients, streams);
      EXPECT_EQ(coeff.mismatches, 0u) << "coefficients: " << coeff.first;
    }
    // Quantization of the GPU's own coefficients: bit for bit.
    const QuantizedKeys expected =
        reference::quantize_keys_with(spec, c.shape, input.data(), layout, q.splits, q.coefficients);
    EXPECT_EQ(q.anomalous.codes, expected.anomalous.codes);
    EXPECT_EQ(q.anomalous.scales, expected.anomalous.scales);
    EXPECT_EQ(q.anomalous.mins, expected.anomalous.mins);
    EXPECT_EQ(q.normal.codes, expected.normal.codes);
    EXPECT_EQ(q.normal.scales, expected.normal.scales);
    EXPECT_EQ(q.normal.mins, expected.normal.mins);

    const auto decoded = gpu.dequantize_host(q, layout);
    const auto ref_decoded = reference::dequantize_keys(q, layout);
    const auto dec = compare_within_fp16_rounding(decoded, ref_decoded, c.shape.dim);
    EXPECT_EQ(dec.mismatches, 0u) << "decoded: " << dec.first << " (max difference " << dec.max_difference << ")";
    // Anomalous channels decode through the grouped 2-bit path: exactly.
    for (uint32_t t = 0; t < c.shape.tokens; ++t) {
      for (uint32_t h = 0; h < c.shape.heads; ++h) {
        for (uint32_t ch : q.splits[h].anomalous) {
          const size_t e = h * layout.head_stride + t * layout.token_stride + ch;
          ASSERT_EQ(decoded[e], ref_decoded[e]) << "anomalous channel " << ch;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllKeyPaths, GpuKeysMatchReference, ::testing::ValuesIn(key_cases()),
                         [](const auto& info) { return key_case_name(info.param); });

using GpuKeys = VulkanTest;

TEST_F(GpuKeys, HalfSpectrumDecodesLikeFullWithHalfTheCodeBits) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const TensorShape shape{2, 64, 128};
  const TensorLayout layout = TensorLayout::thd(shape);
  const auto input = tools::random_halves(shape, layout, seed, false);  // no exact-zero coefficients
  GpuKeyQuantizer gpu(ctx);
  const auto half = gpu.quantize_host({1.5, 32, ChannelScope::head, FftLayout::half}, shape, input, layout);
  const auto full = gpu.quantize_host({1.5, 32, ChannelScope::head, FftLayout::full}, shape, input, layout);
  EXPECT_EQ(full.normal.codes.size(), 2 * half.normal.codes.size());
  const auto r = compare_within_fp16_rounding(gpu.dequantize_host(half, layout), gpu.dequantize_host(full, layout),
                                              shape.dim);
  EXPECT_EQ(r.mismatches, 0u) << r.first << " (max difference " << r.max_difference << ")";
}

TEST_F(GpuKeys, ReusesChannelsChosenEarlier) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const TensorShape shape{2, 64, 64};
  const TensorLayout layout = TensorLayout::thd(shape);
  const KeySpec spec{1.5, 32, ChannelScope::head, FftLayout::half};
  GpuKeyQuantizer gpu(ctx);
  const auto first = gpu.quantize_host(spec, shape, tools::random_halves(shape, layout, seed), layout);
  const auto later_input = tools::random_halves(shape, layout, seed + 1);
  const auto later = gpu.quantize_host_with(spec, shape, later_input, layout, first.splits);
  for (size_t h = 0; h < shape.heads; ++h) EXPECT_EQ(later.splits[h].anomalous, first.splits[h].anomalous);
  const auto expected = reference::quantize_keys_with(spec, shape, later_input.data(), layout, first.splits,
                                                      later.coefficients);
  EXPECT_EQ(later.anomalous.codes, expected.anomalous.codes);
  EXPECT_EQ(later.normal.codes, expected.normal.codes);
  EXPECT_EQ(later.normal.scales, expected.normal.scales);
}

TEST_F(GpuKeys, BadInputIsAClearError) {
  GpuKeyQuantizer gpu(ctx);
  const TensorShape shape{1, 32, 64};
  const auto input = tools::random_halves(shape, TensorLayout::thd(shape), 1);
  auto expect_error = [&](const KeySpec& spec, const TensorShape& s, ErrorCode code, const char* mentions) {
    try {
      gpu.quantize_host(spec, s, input, TensorLayout::thd(s));
      ADD_FAILURE() << "accepted; expected " << mentions;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_NE(std::string(e.what()).find(mentions), std::string::npos) << e.what();
    }
  };
  expect_error({2.5, 32}, shape, ErrorCode::unsupported_bits, "2.5");
  expect_error({0.5, 32}, shape, ErrorCode::unsupported_bits, "0.5");
  expect_error({1.5, 48}, shape, ErrorCode::bad_group_size, "48");
  expect_error({1.5, 32}, {1, 40, 64}, ErrorCode::bad_group_size, "40");
  // splits that do not partition the channels
  std::vector<ChannelSplit> bad(1);
  bad[0].anomalous.assign(32, 0);
  for (uint32_t c = 0; c < 32; ++c) bad[0].normal.push_back(c + 32);
  EXPECT_THROW(gpu.quantize_host_with({1.5, 32}, shape, input, TensorLayout::thd(shape), bad), Error);
}

}  // namespace
}  // namespace vidkv::test
