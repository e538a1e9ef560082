// The GPU quantizer on the authors' golden vectors: the same checks as the reference's.
#include <gtest/gtest.h>

#include "common/golden.hpp"
#include "common/golden_checks.hpp"
#include "common/gpu_golden_impls.hpp"
#include "vidkv/gpu_quantizer.hpp"
#include "vulkan_fixture.hpp"

namespace vidkv::test {
namespace {

using GpuGolden = VulkanTest;

TEST_F(GpuGolden, EveryPerChannelCasePasses) {
  GpuQuantizer quantizer(ctx);
  auto quantize = [&](const QuantSpec& spec, const TensorShape& shape, const std::vector<uint16_t>& input,
                      const TensorLayout& layout) { return quantizer.quantize_host(spec, shape, input, layout); };
  auto dequantize = [&](const QuantizedTensor& q, const TensorLayout& layout) {
    return quantizer.dequantize_host(q, layout);
  };
  size_t cases = 0;
  for (const auto& dir : tools::list_golden_cases(VIDKV_GOLDEN_DIR)) {
    const auto golden = tools::GoldenCase::load(dir);
    if (!tools::golden_case_is_per_channel(golden)) continue;
    ++cases;
    for (const auto& r : tools::run_per_channel_golden_case(golden, quantize, dequantize, "gpu")) {
      EXPECT_TRUE(r.passed) << r.name << " " << r.shape << ": " << r.detail;
    }
  }
  EXPECT_GE(cases, 8u) << "per-channel golden cases found under " << VIDKV_GOLDEN_DIR;
}

TEST_F(GpuGolden, EveryKeyAndStpCasePasses) {
  GpuKeyQuantizer keys(ctx);
  GpuQuantizer grouped(ctx);
  GpuStp stp(ctx);
  const auto key_impl = tools::gpu_key_impl(keys, grouped);
  const auto value_impl = tools::gpu_value_impl(stp);
  size_t cases = 0;
  for (const auto& dir : tools::list_golden_cases(VIDKV_GOLDEN_DIR)) {
    const auto golden = tools::GoldenCase::load(dir);
    const auto results = tools::run_vidkv_golden_case(golden, key_impl, value_impl, "gpu");
    if (results.empty()) continue;
    ++cases;
    for (const auto& r : results) EXPECT_TRUE(r.passed) << r.name << " " << r.shape << ": " << r.detail;
  }
  EXPECT_GE(cases, 5u) << "dynkey, fft1bit and stp golden cases found under " << VIDKV_GOLDEN_DIR;
}

}  // namespace
}  // namespace vidkv::test
