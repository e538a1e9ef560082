// Trits 5 per byte on the GPU: the packing shader against reference::pack_trits bit for bit (output
// poisoned with 0x00 and 0xFF), and decoding straight from packed trits equal to the reference's
// decoding of the same codes bit for bit.
#include <gtest/gtest.h>

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
    const TensorShape& shape = shapes[i];
    for (TernaryScale ts : {TernaryScale::mean_abs, TernaryScale::lsq}) {
      const QuantSpec spec{QuantBits::b1_58, QuantAxis::channel, groups[i], ts};
      const TensorLayout layout = TensorLayout::thd(shape);
      const auto input = tools::random_halves(shape, layout, seed + i);
      const auto q = reference::quantize(spec, shape, input.data(), layout);
      const auto expected = reference::pack_trits(q);
      ASSERT_EQ(expected.size(), trit_packed_bytes(shape, spec.group_size));

      const uint64_t bytes = (expected.size() + 3) / 4 * 4;
      rt::Buffer codes(ctx, q.codes.size() * 4), packed(ctx, bytes);
      codes.upload(q.codes.data(), q.codes.size() * 4);
      for (uint8_t poison : {uint8_t(0x00), uint8_t(0xff)}) {
        packed.fill(poison);
        rt::CommandRunner runner(ctx);
        runner.run([&](VkCommandBuffer cmd) { gpu.record_pack_trits(cmd, spec, shape, codes.view(), packed.view()); });
        std::vector<uint8_t> got(bytes);
        packed.download(got.data(), bytes);
        got.resize(expected.size());
        EXPECT_EQ(got, expected) << "shape " << i << " poison " << int(poison);
      }
      // 1.6 bits per value plus at most one partly used byte per (head, group) block.
      EXPECT_LE(8.0 * expected.size() / shape.elements(),
                1.6 + 8.0 * shape.heads * (shape.tokens / spec.group_size) / shape.elements());
      if (shape.dim % 2 == 0) {
        EXPECT_EQ(gpu.dequantize_trits_host(q, expected, layout), reference::dequantize(q, layout)) << "shape " << i;
      }
    }
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
