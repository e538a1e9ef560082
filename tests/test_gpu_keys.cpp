// VidKV keys on the GPU against the reference, through the checks vidkv-conformance runs
// (tools/common/gpu_key_checks.hpp): ranges and channel choices bit-exact; VkFFT's coefficients
// within fp16 rounding of the reference's double DFT; codes, scales and mins bit-exact when the
// reference quantizes the GPU's coefficients; decoded keys within fp16 rounding (anomalous channels
// exactly). Every output and intermediate buffer is poisoned twice (0x00, 0xFF).
#include <gtest/gtest.h>

#include "common/fp16_tolerance.hpp"
#include "common/gpu_key_checks.hpp"
#include "common/random_data.hpp"
#include "vulkan_fixture.hpp"

namespace vidkv::test {
namespace {

class GpuKeysMatchReference : public VulkanTest, public ::testing::WithParamInterface<tools::KeyCheckCase> {};

TEST_P(GpuKeysMatchReference, SelectionCodesAndDecoding) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  GpuKeyQuantizer gpu(ctx);
  const auto results = tools::run_gpu_key_check(gpu, GetParam(), seed);
  ASSERT_GE(results.size(), 8u);
  for (const auto& r : results) EXPECT_TRUE(r.passed) << r.name << ": " << r.detail;
}

INSTANTIATE_TEST_SUITE_P(AllKeyPaths, GpuKeysMatchReference, ::testing::ValuesIn(tools::key_check_matrix()),
                         [](const auto& info) { return tools::key_case_name(info.param); });

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
  EXPECT_EQ(full.normal.scales.size(), 2 * half.normal.scales.size());
  const auto r = tools::compare_within_fp16_rounding(gpu.dequantize_host(half, layout),
                                                     gpu.dequantize_host(full, layout), shape.dim);
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
  const auto expected =
      reference::quantize_keys_with(spec, shape, later_input.data(), layout, first.splits, later.coefficients);
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
  std::vector<ChannelSplit> bad(1);  // not a partition of the channels
  bad[0].anomalous.assign(32, 0);
  for (uint32_t c = 0; c < 32; ++c) bad[0].normal.push_back(c + 32);
  EXPECT_THROW(gpu.quantize_host_with({1.5, 32}, shape, input, TensorLayout::thd(shape), bad), Error);
}

}  // namespace
}  // namespace vidkv::test
