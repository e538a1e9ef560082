// The cache on device buffers: fp32 prefill (rounded to fp16 on the device), every operation
// recorded into a caller's command buffer giving bit for bit what the synchronous calls give,
// NaN/Inf counted for recorded work, the device dequantize against the building blocks' decode,
// and a context long enough that per-element dispatches exceed 65535 workgroups.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "cache_test_helpers.hpp"
#include "vidkv/fp16.hpp"
#include "vidkv/gpu_keys.hpp"
#include "vidkv/runtime/buffer.hpp"
#include "vidkv/runtime/commands.hpp"
#include "vulkan_fixture.hpp"

namespace vidkv::test {
namespace {

using CacheDevice = VulkanTest;

std::unique_ptr<rt::Buffer> device_copy(const std::shared_ptr<rt::Context>& ctx, const void* data, uint64_t bytes) {
  auto b = std::make_unique<rt::Buffer>(ctx, std::max<uint64_t>(bytes, 16));
  b->upload(data, bytes);
  return b;
}

CacheSettings with_residual(const char* name, uint32_t residual) {
  CacheSettings s = preset(name);
  s.residual_length = residual;
  return s;
}

TEST_F(CacheDevice, Fp32PrefillEqualsTheFp16PrefillOfTheRoundedValues) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const uint32_t H = 2, D = 64, T = 100;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> k(size_t(T) * H * D), v(k.size());
  for (auto& x : k) x = normal(rng);
  for (auto& x : v) x = normal(rng);
  std::vector<uint16_t> k16(k.size()), v16(v.size());
  for (size_t i = 0; i < k.size(); ++i) k16[i] = fp16::from_float(k[i]), v16[i] = fp16::from_float(v[i]);
  for (const char* p : {"k1.5-v1.58", "2bit", "fp16"}) {
    SCOPED_TRACE(p);
    Cache from32(ctx, {1, H, 4 * H, D}, preset(p), 256), from16(ctx, {1, H, 4 * H, D}, preset(p), 256);
    const uint32_t a = from32.create_sequence(), b = from16.create_sequence();
    auto kb = device_copy(ctx, k.data(), k.size() * 4), vb = device_copy(ctx, v.data(), v.size() * 4);
    from32.prefill(a, 0, kb->view(), vb->view(), ElementType::f32, T);
    from16.prefill(b, 0, k16, v16, T);
    EXPECT_TRUE(snapshot(from32, {a}) == snapshot(from16, {b}));
    EXPECT_EQ(from32.tokens(a, 0), T);
  }
}

// One cache driven synchronously, a second one with every operation recorded into one command
// buffer of the caller's: identical contents, attention and decode, bit for bit.
TEST_F(CacheDevice, RecordedOperationsEqualSynchronousOnes) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const uint32_t H = 2, D = 128, ratio = 4, T = 90, appends = 70, R = 64;
  const CacheGeometry g{2, H, H * ratio, D};
  const KvData kv = random_kv(H, T + appends, D, seed);
  const auto q = realistic_query(kv.keys, T, H, g.q_heads, D, seed + 1);
  const uint64_t row = uint64_t(H) * D * 2, qbytes = q.size() * 4;
  for (const char* p : {"k1.5-v1.58", "kivi", "fp16"}) {
    SCOPED_TRACE(p);
    Cache sync(ctx, g, with_residual(p, R), 512), recorded(ctx, g, with_residual(p, R), 512);
    const uint32_t a = sync.create_sequence(), b = recorded.create_sequence();
    auto kin = device_copy(ctx, kv.keys.data(), kv.keys.size() * 2);
    auto vin = device_copy(ctx, kv.values.data(), kv.values.size() * 2);
    auto qin = device_copy(ctx, q.data(), qbytes);
    rt::Buffer out(ctx, qbytes), dk(ctx, (T + appends) * row), dv(ctx, (T + appends) * row);
    out.fill(0xff);
    dk.fill(0xff);
    dv.fill(0xff);

    // Layer 1 stays empty; layer 0 gets the prefill and the appends (a flush at the 64th).
    sync.prefill(a, 0, kin->view(0, T * row), vin->view(0, T * row), ElementType::f16, T);
    for (uint32_t t = T; t < T + appends; ++t) sync.append(a, 0, kin->view(t * row, row), vin->view(t * row, row));
    const auto expected_out = sync.attention(a, 0, q);
    std::vector<uint16_t> expected_k, expected_v;
    sync.dequantize(a, 0, expected_k, expected_v);

    rt::CommandRunner caller(ctx);
    caller.run([&](VkCommandBuffer cmd) {
      rt::transfer_to_compute_barrier(cmd);  // the uploads above, as an engine's writes
      recorded.record_prefill(cmd, b, 0, kin->view(0, T * row), vin->view(0, T * row), ElementType::f16, T);
      for (uint32_t t = T; t < T + appends; ++t) {
        recorded.record_append(cmd, b, 0, kin->view(t * row, row), vin->view(t * row, row));
      }
      recorded.record_attention(cmd, b, 0, qin->view(), out.view());
      recorded.record_dequantize(cmd, b, 0, dk.view(), dv.view());
    });
    recorded.release_retired();
    EXPECT_EQ(recorded.tokens(b, 0), T + appends);
    EXPECT_TRUE(snapshot(recorded, {b}) == snapshot(sync, {a}));
    std::vector<float> got(q.size());
    out.download(got.data(), qbytes);
    EXPECT_EQ(got, expected_out);
    std::vector<uint16_t> got_k(expected_k.size()), got_v(expected_v.size());
    dk.download(got_k.data(), got_k.size() * 2);
    dv.download(got_v.data(), got_v.size() * 2);
    EXPECT_EQ(got_k, expected_k);
    EXPECT_EQ(got_v, expected_v);
    EXPECT_EQ(recorded.stats().nonfinite_inputs, 0u);

    // The synchronous device-buffer forms of attention and dequantize give the same.
    rt::Buffer out2(ctx, qbytes), dk2(ctx, (T + appends) * row), dv2(ctx, (T + appends) * row);
    sync.attention(a, 0, qin->view(), out2.view());
    sync.dequantize(a, 0, dk2.view(), dv2.view());
    out2.download(got.data(), qbytes);
    EXPECT_EQ(got, expected_out);
    dk2.download(got_k.data(), got_k.size() * 2);
    EXPECT_EQ(got_k, expected_k);
  }
}

// Recorded work cannot be rejected for NaN/Inf (its data is not there yet): it is counted.
TEST_F(CacheDevice, RecordedNonFiniteInputIsCounted) {
  const uint32_t H = 2, D = 64;
  const KvData kv = random_kv(H, 40, D, tools::test_seed());
  auto keys = kv.keys;
  keys[3] = 0x7c00;                    // +Inf in the prefill
  keys[size_t(39) * H * D + 5] = 0xfe00;  // NaN in the appended token
  Cache cache(ctx, {1, H, H, D}, preset("k1.5-v1.58"), 128);
  const uint32_t s = cache.create_sequence();
  auto kin = device_copy(ctx, keys.data(), keys.size() * 2), vin = device_copy(ctx, kv.values.data(), keys.size() * 2);
  const uint64_t row = uint64_t(H) * D * 2;
  rt::CommandRunner caller(ctx);
  caller.run([&](VkCommandBuffer cmd) {
    rt::transfer_to_compute_barrier(cmd);
    cache.record_prefill(cmd, s, 0, kin->view(0, 39 * row), vin->view(0, 39 * row), ElementType::f16, 39);
    cache.record_append(cmd, s, 0, kin->view(39 * row, row), vin->view(39 * row, row));
  });
  EXPECT_EQ(cache.stats().nonfinite_inputs, 2u);
  EXPECT_EQ(cache.tokens(s, 0), 40u);
}

// Decoding on the device equals the building blocks' decode of the segments read back (which
// their own tests check against the reference), and the residual is returned as stored. 9000
// tokens x 4 heads x 128 channels puts more than 65535 workgroups of 64 into the per-element
// passes (gather, scatter, grouped decode): they must cover every element by striding.
TEST_F(CacheDevice, DequantizeEqualsTheSegmentsDecodedOneByOne) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const uint32_t H = 4, D = 128, T = 9000 + 17;
  const KvData kv = random_kv(H, T, D, seed);
  GpuKeyQuantizer key_decoder(ctx);
  GpuQuantizer value_decoder(ctx);
  for (const char* p : {"k1.5-v1.58", "k1.5-v2"}) {
    SCOPED_TRACE(p);
    Cache cache(ctx, {1, H, H, D}, preset(p), T);
    const uint32_t s = cache.create_sequence();
    cache.prefill(s, 0, kv.keys, kv.values, T);
    std::vector<uint16_t> dk, dv;
    cache.dequantize(s, 0, dk, dv);
    ASSERT_EQ(cache.segment_count(s, 0), 1u);
    const CacheSegmentHost seg = cache.segment_host(s, 0, 0);
    const TensorLayout thd = TensorLayout::thd(seg.values.shape);
    const auto expected_k = key_decoder.dequantize_host(seg.keys, thd);
    const auto expected_v = value_decoder.dequantize_host(seg.values, thd);
    const size_t quantized = expected_k.size();
    ASSERT_EQ(dk.size(), kv.keys.size());
    EXPECT_TRUE(std::equal(expected_k.begin(), expected_k.end(), dk.begin())) << "keys";
    EXPECT_TRUE(std::equal(expected_v.begin(), expected_v.end(), dv.begin())) << "values";
    EXPECT_TRUE(std::equal(dk.begin() + quantized, dk.end(), kv.keys.begin() + quantized)) << "residual keys";
    EXPECT_TRUE(std::equal(dv.begin() + quantized, dv.end(), kv.values.begin() + quantized)) << "residual values";
  }
}

}  // namespace
}  // namespace vidkv::test
