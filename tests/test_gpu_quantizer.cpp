// GPU quantize/dequantize against the CPU reference on fresh random inputs: codes, scales and mins
// bit for bit, decoded values bit for bit (the shaders round exactly as the reference does). Every
// output is poisoned twice (all 0x00, then all 0xFF) and must match both times, so an element the
// shader forgot to write cannot pass (tools/common/gpu_checks.cpp). Then bad input.
#include <gtest/gtest.h>

#include <algorithm>

#include "common/gpu_checks.hpp"
#include "common/random_data.hpp"
#include "vidkv/gpu_quantizer.hpp"
#include "vidkv/reference.hpp"
#include "vulkan_fixture.hpp"

namespace vidkv::test {
namespace {

class GpuQuantizerMatchesReference : public VulkanTest,
                                     public ::testing::WithParamInterface<tools::GpuCheckCase> {};

TEST_P(GpuQuantizerMatchesReference, CodesScalesMinsAndDecodingBitExact) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  GpuQuantizer quantizer(ctx);
  const auto results = tools::run_gpu_check(quantizer, GetParam(), seed);
  ASSERT_EQ(results.size(), 6u);
  for (const auto& r : results) EXPECT_TRUE(r.passed) << r.name << ": " << r.detail;
}

INSTANTIATE_TEST_SUITE_P(AllPaths, GpuQuantizerMatchesReference, ::testing::ValuesIn(tools::gpu_check_matrix()),
                         [](const auto& info) { return tools::gpu_case_name(info.param); });

// The same checks through staging copies, as on a discrete GPU whose memory the host cannot map.
TEST(GpuQuantizerStaging, MatchesReferenceThroughStagingCopies) {
  rt::ContextOptions options = rt::ContextOptions::from_environment();
  options.validation = true;
  options.force_staging = true;
  auto context = rt::Context::create(options);
  GpuQuantizer quantizer(context);
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  size_t checked = 0;
  for (const auto& c : tools::gpu_check_matrix()) {
    if (c.shape.heads != 3 || c.input != ElementType::f16 || c.head_major) continue;  // one shape per path
    for (const auto& r : tools::run_gpu_check(quantizer, c, seed)) {
      EXPECT_TRUE(r.passed) << r.name << ": " << r.detail;
      ++checked;
    }
  }
  EXPECT_GE(checked, 6u * 6u);
  expect_no_validation_messages(*context, 0);
}

// ---- bad input: a clear error and nothing written ----

class GpuQuantizerErrors : public VulkanTest {
 protected:
  void expect_rejected(const QuantSpec& spec, const TensorShape& shape, uint64_t input_bytes, uint64_t code_bytes,
                       ErrorCode code, const std::string& mentions) {
    GpuQuantizer quantizer(ctx);
    rt::Buffer input(ctx, std::max<uint64_t>(input_bytes, 4));
    rt::Buffer codes(ctx, std::max<uint64_t>(code_bytes, 4)), scales(ctx, 1 << 16), mins(ctx, 1 << 16);
    codes.fill(0xab);
    try {
      quantizer.quantize(spec, shape, TensorLayout::thd(shape), ElementType::f16, input.view(),
                         {codes.view(), scales.view(), mins.view()});
      ADD_FAILURE() << "expected an error mentioning " << mentions;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_NE(std::string(e.what()).find(mentions), std::string::npos) << e.what();
    }
    std::vector<uint8_t> after(codes.size());
    codes.download(after.data(), after.size());
    for (uint8_t b : after) ASSERT_EQ(b, 0xab) << "output written despite the error";
  }
};

TEST_F(GpuQuantizerErrors, TernaryPerTokenIsUnsupported) {
  expect_rejected({QuantBits::b1_58, QuantAxis::token, 32}, {1, 32, 128}, 1 << 14, 1 << 14,
                  ErrorCode::unsupported_bits, "1.58");
}

TEST_F(GpuQuantizerErrors, GroupSizeNotMultipleOf32) {
  expect_rejected({QuantBits::b2, QuantAxis::channel, 48}, {1, 96, 128}, 1 << 16, 1 << 16,
                  ErrorCode::bad_group_size, "48");
}

TEST_F(GpuQuantizerErrors, TokensNotMultipleOfGroup) {
  expect_rejected({QuantBits::b2, QuantAxis::channel, 32}, {1, 40, 128}, 1 << 16, 1 << 16,
                  ErrorCode::bad_group_size, "40");
}

TEST_F(GpuQuantizerErrors, ZeroHeads) {
  expect_rejected({QuantBits::b4, QuantAxis::channel, 32}, {0, 32, 128}, 1 << 14, 1 << 14,
                  ErrorCode::invalid_argument, "heads");
}

TEST_F(GpuQuantizerErrors, InputBufferTooSmall) {
  expect_rejected({QuantBits::b2, QuantAxis::channel, 32}, {1, 64, 128}, 100, 1 << 14,
                  ErrorCode::buffer_too_small, "input");
}

TEST_F(GpuQuantizerErrors, CodeBufferTooSmall) {
  expect_rejected({QuantBits::b8, QuantAxis::channel, 32}, {1, 64, 128}, 1 << 16, 64,
                  ErrorCode::buffer_too_small, "codes");
}

TEST_F(GpuQuantizerErrors, MisalignedOffsetIsRejected) {
  const uint64_t align = ctx->info().min_storage_buffer_offset_alignment;
  if (align <= 4) GTEST_SKIP() << "device accepts any 4-byte offset";
  GpuQuantizer quantizer(ctx);
  const TensorShape shape{1, 32, 64};
  const QuantSpec spec{QuantBits::b2, QuantAxis::channel, 32};
  rt::Buffer input(ctx, 1 << 16), codes(ctx, 1 << 16), scales(ctx, 1 << 16), mins(ctx, 1 << 16);
  EXPECT_THROW(quantizer.quantize(spec, shape, TensorLayout::thd(shape), ElementType::f16, input.view(4, 4096),
                                  {codes.view(), scales.view(), mins.view()}),
               Error);
}

}  // namespace
}  // namespace vidkv::test
