// GPU quantize/dequantize against the CPU reference on fresh random inputs: codes, scales and mins
// bit for bit, decoded values bit for bit (the shaders round exactly as the reference does). Every
// output is poisoned twice (all 0x00, then all 0xFF) and must match both times, so an element the
// shader forgot to write cannot pass (tools/common/gpu_checks.cpp). Then bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>

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

// Values at the edges of the shader's integer shortcuts, bit for bit against the reference: 1-bit
// codes of fp32 input read from the float's bits (values that round to a half -0, the tie at
// 2^-25, fp32 subnormals), ternary codes compared as half magnitudes (values on and around the
// threshold, -0, subnormals) and 2-bit codes from three thresholds per group (wide and subnormal
// ranges). NaN and infinite input, and ranges near the fp16 limit, are refused before.
TEST(GpuQuantizerEdges, IntegerShortcutsMatchTheReference) {
  rt::ContextOptions options = rt::ContextOptions::from_environment();
  options.validation = true;
  auto context = rt::Context::create(options);
  GpuQuantizer quantizer(context);
  const TensorShape shape{1, 64, 4};  // per channel: 4 rows of 2 groups of 32
  const TensorLayout layout = TensorLayout::thd(shape);
  auto bits = [](uint32_t b) {
    float f;
    std::memcpy(&f, &b, 4);
    return f;
  };
  std::vector<float> f32;
  const float specials[] = {-bits(0x33000000u), -bits(0x33000001u), -bits(0x32ffffffu), -bits(0x00000001u),
                            -0.0f, 0.0f, bits(0x33000000u), -1e-30f, -6e-8f, -5.9604645e-08f,
                            -bits(0x007fffffu), bits(0x00000010u), -2.0f, 3.0f, -16000.0f, 16000.0f};
  for (size_t i = 0; i < layout.span(shape); ++i) f32.push_back(specials[i % 16] * (i % 5 == 0 ? 1.0f : 0.5f));
  for (QuantBits bits_of : {QuantBits::b1, QuantBits::b1_58, QuantBits::b2}) {
    const QuantSpec spec{bits_of, QuantAxis::channel, 32};
    SCOPED_TRACE(bits_name(bits_of));
    const QuantizedTensor want = reference::quantize(spec, shape, f32.data(), layout);
    const QuantizedTensor got = quantizer.quantize_host(spec, shape, f32, layout);
    EXPECT_EQ(got.codes, want.codes);
    EXPECT_EQ(got.scales, want.scales);
    EXPECT_EQ(got.mins, want.mins);
  }
  // fp16 input: ternary around its threshold and 2 bits over ranges that overflow a half
  std::vector<uint16_t> f16;
  const uint16_t halves[] = {0x3c00, 0xbc00, 0x3800, 0xb800, 0x37ff, 0xb801, 0x8000, 0x0000,
                             0x7000, 0xf000, 0x3bff, 0xbbff, 0x0001, 0x8001, 0x3555, 0xb555};
  for (size_t i = 0; i < layout.span(shape); ++i) f16.push_back(halves[(i * 7) % 16]);
  // channel 0, tokens 0-31: 16 x 1.5 and 16 x +-0.5, so mean |x| = 1 and the ternary threshold is
  // 0.5 exactly: the +-0.5 are code 1 (not beyond it)
  for (uint32_t t = 0; t < 32; ++t) f16[t * shape.dim] = t < 16 ? 0x3e00 : (t % 2 ? 0x3800 : 0xb800);
  for (QuantBits bits_of : {QuantBits::b1_58, QuantBits::b2}) {
    const QuantSpec spec{bits_of, QuantAxis::channel, 32};
    SCOPED_TRACE(std::string("fp16 ") + bits_name(bits_of));
    const QuantizedTensor want = reference::quantize(spec, shape, f16.data(), layout);
    const QuantizedTensor got = quantizer.quantize_host(spec, shape, f16, layout);
    EXPECT_EQ(got.codes, want.codes);
    EXPECT_EQ(got.scales, want.scales);
    EXPECT_EQ(got.mins, want.mins);
  }
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
