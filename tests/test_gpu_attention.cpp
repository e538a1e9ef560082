// fp16 decode attention (the baseline) against the float64 reference, argument checks, and which
// shader path a device takes (with the conformance coverage check that follows that rule).
// Error measure (attention_test_data.hpp): per query head max|out - ref| / max|ref|, worst head,
// must stay below 1e-3. Outputs and partials are poisoned before every run.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>

#include "attention_test_data.hpp"
#include "common/attention_checks.hpp"
#include "common/gpu_checks_coverage.hpp"
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

// The subgroup-of-8 path is for CPU devices only: a CPU device type, every compute subgroup
// exactly 8 wide, and subgroup shuffles in compute. A GPU with 8-wide subgroups and shuffles
// (Intel at SIMD8) takes the portable path, as does any device whose subgroup size may vary (0).
TEST(GpuAttentionPath, Subgroup8RuleIsCpuAndSubgroupsOfEightAndShuffles) {
  const rt::DeviceType types[] = {rt::DeviceType::discrete, rt::DeviceType::integrated,
                                  rt::DeviceType::virtual_gpu, rt::DeviceType::cpu, rt::DeviceType::other};
  for (rt::DeviceType type : types) {
    for (uint32_t size : {0u, 1u, 4u, 8u, 16u, 32u, 64u}) {
      for (bool shuffles : {false, true}) {
        const bool expected = type == rt::DeviceType::cpu && size == 8 && shuffles;
        EXPECT_EQ(GpuAttention::subgroup8_rule(type, size, shuffles), expected)
            << rt::device_type_name(type) << " device, subgroup size " << size << ", shuffles " << shuffles;
      }
    }
  }
  EXPECT_FALSE(GpuAttention::subgroup8_rule(rt::DeviceType::integrated, 8, true));  // Intel SIMD8
  EXPECT_TRUE(GpuAttention::subgroup8_rule(rt::DeviceType::cpu, 8, true));          // lavapipe
}

// Compute subgroup shuffles as the device reports them, read straight from Vulkan.
bool compute_shuffles(const rt::Context& context) {
  VkPhysicalDeviceSubgroupProperties subgroup{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
  VkPhysicalDeviceProperties2 props{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, &subgroup};
  vkGetPhysicalDeviceProperties2(context.physical_device(), &props);
  return (subgroup.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
         (subgroup.supportedOperations & VK_SUBGROUP_FEATURE_BASIC_BIT) &&
         (subgroup.supportedOperations & VK_SUBGROUP_FEATURE_SHUFFLE_BIT);
}

bool created(const rt::Context& context, const std::string& shader) {
  const auto records = context.pipeline_records();
  return std::any_of(records.begin(), records.end(), [&](const rt::PipelineRecord& p) { return p.name == shader; });
}

// This device follows the rule: the default path is the subgroup-of-8 one exactly when the device
// is a CPU with subgroups of exactly 8 and shuffles, set_portable(true) forces the portable path
// (and its default split), and the dispatches really take the shaders the path names. A fresh
// context, so that its pipeline records hold only what this test ran.
TEST_F(GpuAttention_, PathFollowsTheDeviceRule) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  rt::ContextOptions options = rt::ContextOptions::from_environment();
  options.validation = true;
  const auto fresh = rt::Context::create(options);
  const bool sg8 = fresh->info().type == rt::DeviceType::cpu && fresh->effective_subgroup_size() == 8 &&
                   compute_shuffles(*fresh);
  SCOPED_TRACE(std::string(rt::device_type_name(fresh->info().type)) + " device, subgroup size " +
               std::to_string(fresh->effective_subgroup_size()));
  EXPECT_EQ(GpuAttention::subgroup8_default(*fresh), sg8);

  GpuAttention gpu(fresh);
  EXPECT_EQ(gpu.subgroup8_path(), sg8);
  EXPECT_EQ(gpu.split_tokens(), sg8 ? 1024u : 256u);
  gpu.set_portable(true);
  EXPECT_FALSE(gpu.subgroup8_path());
  EXPECT_EQ(gpu.split_tokens(), 256u);
  gpu.set_portable(false);
  EXPECT_EQ(gpu.subgroup8_path(), sg8);

  // The default path only (run_attention_check resets set_portable to false when done).
  for (const char* keys : {"fp16", "k1.5"}) {
    const tools::AttentionCheckCase c{keys, ValueFormat::ternary_trits, 2, 4, 64, 300};
    for (const auto& r : tools::run_attention_check(gpu, c, seed)) EXPECT_TRUE(r.passed) << r.name << " " << r.detail;
  }
  EXPECT_EQ(created(*fresh, "attention_fp16_sg8"), sg8);
  EXPECT_EQ(created(*fresh, "attention_vidkv_sg8"), sg8);
  EXPECT_EQ(created(*fresh, "attention_fp16"), !sg8);
  EXPECT_EQ(created(*fresh, "attention_vidkv"), !sg8);
  // Forced portable: the portable shaders on every device.
  for (const char* keys : {"fp16", "k1.5"}) {
    tools::AttentionCheckCase c{keys, ValueFormat::ternary_trits, 2, 4, 64, 300};
    c.portable = true;
    for (const auto& r : tools::run_attention_check(gpu, c, seed)) EXPECT_TRUE(r.passed) << r.name << " " << r.detail;
  }
  EXPECT_TRUE(created(*fresh, "attention_fp16"));
  EXPECT_TRUE(created(*fresh, "attention_vidkv"));
  EXPECT_EQ(created(*fresh, "attention_fp16_sg8"), sg8);

  // The conformance coverage check expects the subgroup-of-8 shaders exactly where they run.
  const auto unused = tools::shaders_unused_on(*fresh);
  std::set<std::string> unused_names;
  for (const auto& u : unused) {
    unused_names.insert(u.name);
    EXPECT_NE(u.why.find(rt::device_type_name(fresh->info().type)), std::string::npos) << u.why;
  }
  const std::set<std::string> expected_unused =
      sg8 ? std::set<std::string>{} : std::set<std::string>{"attention_fp16_sg8", "attention_vidkv_sg8"};
  EXPECT_EQ(unused_names, expected_unused);
  expect_no_validation_messages(*fresh, 0);
}

// The coverage check of vidkv-conformance, on pipeline lists made up from the shader sources: a
// shader a device does not use is reported as such and must not run; every other must.
TEST(GpuAttentionPath, CoverageCheckFollowsTheShadersADeviceUses) {
  const auto sources = tools::shader_sources();
  const std::vector<std::string> sg8{"attention_fp16_sg8", "attention_vidkv_sg8"};
  for (const auto& s : sg8) ASSERT_TRUE(std::count(sources.begin(), sources.end(), s)) << s;
  std::vector<tools::UnusedShader> unused;
  for (const auto& s : sg8) unused.push_back({s, "test"});
  auto records_without = [&](const std::set<std::string>& left_out) {
    std::vector<rt::PipelineRecord> records;
    for (const auto& s : sources) {
      if (left_out.count(s)) continue;
      rt::PipelineRecord r;
      r.name = s;
      records.push_back(r);
    }
    return records;
  };
  const std::set<std::string> sg8_set(sg8.begin(), sg8.end());

  // A subgroup-of-8 device: every shader runs.
  auto r = tools::shader_coverage_check("c", records_without({}));
  EXPECT_TRUE(r.passed) << r.detail;
  EXPECT_EQ(r.detail.find("not used"), std::string::npos) << r.detail;
  r = tools::shader_coverage_check("c", records_without(sg8_set));
  EXPECT_FALSE(r.passed);
  EXPECT_NE(r.detail.find("never run: attention_fp16_sg8, attention_vidkv_sg8"), std::string::npos) << r.detail;

  // A portable device: the sg8 shaders are listed as not used, and running them fails.
  r = tools::shader_coverage_check("c", records_without(sg8_set), unused);
  EXPECT_TRUE(r.passed) << r.detail;
  EXPECT_EQ(r.max_error, 0.0);
  EXPECT_NE(r.detail.find("not used on this device: attention_fp16_sg8, attention_vidkv_sg8"), std::string::npos)
      << r.detail;
  r = tools::shader_coverage_check("c", records_without({"attention_fp16_sg8"}), unused);
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.max_error, 1.0);
  EXPECT_NE(r.detail.find("ran though not used on this device: attention_vidkv_sg8"), std::string::npos)
      << r.detail;
  // The portable shaders stay expected there.
  r = tools::shader_coverage_check("c", records_without({"attention_fp16_sg8", "attention_vidkv_sg8", "attention_fp16"}),
                                   unused);
  EXPECT_FALSE(r.passed);
  EXPECT_NE(r.detail.find("never run: attention_fp16"), std::string::npos) << r.detail;
  EXPECT_EQ(r.detail.find("attention_fp16_sg8"), std::string::npos) << r.detail;
}

}  // namespace
}  // namespace vidkv::test
