// Trits 5 per byte on the GPU: the packing shader against reference::pack_trits bit for bit (output
// poisoned with 0x00 and 0xFF), and decoding straight from packed trits equal to the reference's
// decoding of the same codes bit for bit. Also the STP checks that vidkv-conformance runs.
#include <gtest/gtest.h>

#include "common/gpu_key_checks.hpp"
#include "common/random_data.hpp"
#include "vidkv/gpu_quantizer.hpp"
#include "vidkv/ternary_pack.hpp"
#include "vulkan_fixture.hpp"

namespace vidkv::test {
namespace {

using GpuTrits = VulkanTest;

TEST_F(GpuTrits, PackAndDecodeMatchReference) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  GpuQuantizer gpu(ctx);
  const TensorShape shapes[] = {{2, 64, 128}, {3, 96, 64}, {1, 64, 96}, {2, 32, 30}};
  const uint32_t groups[] = {32, 32, 64, 32};
  for (int i = 0; i < 4; ++i) {
    for (TernaryScale ts : {TernaryScale::mean_abs, TernaryScale::lsq}) {
      const auto results = tools::run_gpu_trit_check(gpu, shapes[i], groups[i], ts, seed + i);
      ASSERT_FALSE(results.empty());
      for (const auto& r : results) EXPECT_TRUE(r.passed) << r.name << ": " << r.detail;
    }
    // 1.6 bits per value plus at most one partly used byte per (head, group) block.
    const TensorShape& s = shapes[i];
    EXPECT_LE(8.0 * trit_packed_bytes(s, groups[i]) / s.elements(),
              1.6 + 8.0 * s.heads * (s.tokens / groups[i]) / s.elements());
  }
}

TEST_F(GpuTrits, StpChecksOfTheConformanceToolPass) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  GpuStp stp(ctx);
  for (const auto& c : tools::stp_check_matrix()) {
    const auto results = tools::run_gpu_stp_check(stp, c, seed);
    ASSERT_EQ(results.size(), 6u);
    for (const auto& r : results) EXPECT_TRUE(r.passed) << r.name << ": " << r.detail;
  }
}

TEST_F(GpuTrits, RejectsOtherBitWidths) {
  GpuQuantizer gpu(ctx);
  const TensorShape shape{1, 32, 64};
  const auto input = tools::random_halves(shape, TensorLayout::thd(shape), 3);
  const auto q = reference::quantize({QuantBits::b2, QuantAxis::channel, 32}, shape, input.data(),
                                     TensorLayout::thd(shape));
  try {
    gpu.pack_trits_host(q);
    ADD_FAILURE() << "2-bit codes packed as trits";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::unsupported_bits) << e.what();
  }
}

}  // namespace
}  // namespace vidkv::test
