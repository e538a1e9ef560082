// fp16 decode attention (the baseline) against the float64 reference, and argument checks.
// Error measure (attention_test_data.hpp): per query head max|out - ref| / max|ref|, worst head,
// must stay below 1e-3. Outputs and partials are poisoned before every run.
#include <gtest/gtest.h>

#include <string>

#include "attention_test_data.hpp"
#include "vidkv/gpu_attention.hpp"
#include "vulkan_fixture.hpp"

namespace vidkv::test {
namespace {

struct Fp16Case {
  uint32_t kv_heads, ratio, dim, tokens;
};

class GpuAttentionFp16 : public VulkanTest, public ::testing::WithParamInterface<Fp16Case> {};

TEST_P(GpuAttentionFp16, MatchesReference) {
  const Fp16Case c = GetParam();
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const AttentionGeometry g{c.kv_heads, c.kv_heads * c.ratio, c.dim};
  const KvData kv = random_kv(c.kv_heads, c.tokens, c.dim, seed);
  const auto q = realistic_query(kv.keys, c.tokens, c.kv_heads, g.q_heads, c.dim, seed + 7);
  const auto ref = reference::attention_layer(q, g.q_heads, {}, kv.keys, kv.values, c.tokens, c.kv_heads, c.dim);
  GpuAttention gpu(ctx);
  for (uint8_t poison : {uint8_t(0xff), uint8_t(0x00)}) {
    gpu.set_poison(poison);
    const auto out = gpu.fp16_host(g, q, kv.keys, kv.values, c.tokens);
    EXPECT_LT(attention_error(out, ref, c.dim), 1e-3) << "poison " << int(poison);
  }
}

std::vector<Fp16Case> fp16_cases() {
  std::vector<Fp16Case> cases;
  for (uint32_t t : {1u, 31u, 32u, 33u, 127u, 128u, 129u, 1000u}) cases.push_back({2, 4, 128, t});
  for (uint32_t ratio : {1u, 4u, 7u})
    for (uint32_t dim : {64u, 128u}) cases.push_back({2, ratio, dim, 300});
  cases.push_back({1, 7, 128, 6272 + 40});
  cases.push_back({1, 2, 256, 513});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Shapes, GpuAttentionFp16, ::testing::ValuesIn(fp16_cases()), [](const auto& info) {
  const Fp16Case& c = info.param;
  return "h" + std::to_string(c.kv_heads) + "_r" + std::to_string(c.ratio) + "_d" + std::to_string(c.dim) + "_t" +
         std::to_string(c.tokens);
});

using GpuAttention_ = VulkanTest;

TEST_F(GpuAttention_, SplitSizesAgree) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const AttentionGeometry g{2, 8, 64};
  const KvData kv = random_kv(2, 1500, 64, seed);
  const auto q = realistic_query(kv.keys, 1500, 2, 8, 64, seed + 1);
  const auto ref = reference::attention_layer(q, 8, {}, kv.keys, kv.values, 1500, 2, 64);
  GpuAttention gpu(ctx);
  for (uint32_t split : {64u, 512u, 1024u}) {
    gpu.set_split_tokens(split);
    EXPECT_LT(attention_error(gpu.fp16_host(g, q, kv.keys, kv.values, 1500), ref, 64), 1e-3) << "split " << split;
  }
}

TEST_F(GpuAttention_, BadArgumentsAreClearErrors) {
  GpuAttention gpu(ctx);
  const KvData kv = random_kv(2, 64, 64, 1);
  const std::vector<float> q(8 * 64, 0.5f);
  auto expect_error = [&](const AttentionGeometry& g, const std::vector<float>& qv, uint32_t tokens, ErrorCode code,
                          const char* mentions) {
    try {
      gpu.fp16_host(g, qv, kv.keys, kv.values, tokens);
      ADD_FAILURE() << "accepted; expected " << mentions;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_NE(std::string(e.what()).find(mentions), std::string::npos) << e.what();
    }
  };
  expect_error({2, 7, 64}, std::vector<float>(7 * 64), 64, ErrorCode::invalid_argument, "kv_heads 2");
  expect_error({2, 8, 96}, std::vector<float>(8 * 96), 64, ErrorCode::invalid_argument, "96");
  expect_error({2, 8, 64}, std::vector<float>(8 * 64 - 1), 64, ErrorCode::invalid_argument, "511");
  expect_error({2, 8, 64}, q, 0, ErrorCode::invalid_argument, "empty");
  expect_error({2, 8, 64}, q, 65, ErrorCode::buffer_too_small, "65");
  expect_error({1, 9, 64}, std::vector<float>(9 * 64), 64, ErrorCode::invalid_argument, "9");
  EXPECT_THROW(gpu.set_split_tokens(100), Error);

  // Device-buffer API: a partial buffer that is too small is named, and nothing is recorded.
  const AttentionGeometry g{2, 8, 64};
  rt::Buffer keys(ctx, kv.keys.size() * 2), values(ctx, kv.values.size() * 2), qb(ctx, q.size() * 4),
      out(ctx, q.size() * 4), partials(ctx, 16);
  try {
    gpu.run_fp16(g, {64, keys.view(), values.view()}, qb.view(), partials.view(), out.view());
    ADD_FAILURE() << "accepted a 16-byte partial buffer";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::buffer_too_small);
    EXPECT_NE(std::string(e.what()).find("partials"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace vidkv::test
