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

// Every shader path a device can take: its default, and the portable shaders with the reductions
// of attention.glsl within subgroups first (where compute has subgroup arithmetic) and through
// shared memory only.
struct PathSetting {
  const char* name;
  bool portable, subgroup_reductions;
};
// `shared_memory`: include the shared-memory-only reductions also where the device has subgroup
// arithmetic (every pipeline configuration costs lavapipe seconds to compile, so the shape tests
// take that fallback on a subset).
std::vector<PathSetting> path_settings(const rt::Context& context, bool shared_memory = true) {
  const bool arithmetic = GpuAttention::subgroup_reductions_default(context);
  std::vector<PathSetting> settings{{"default path", false, arithmetic}};
  if (arithmetic) settings.push_back({"portable, subgroup reductions", true, true});
  if (shared_memory || !arithmetic) settings.push_back({"portable, shared-memory reductions", true, false});
  return settings;
}

TEST_P(GpuAttentionFp16, MatchesReference) {
  const Fp16Case c = GetParam();
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const AttentionGeometry g{c.kv_heads, c.kv_heads * c.ratio, c.dim};
  const KvData kv = random_kv(c.kv_heads, c.tokens, c.dim, seed);
  const auto q = realistic_query(kv.keys, c.tokens, c.kv_heads, g.q_heads, c.dim, seed + 7);
  const auto ref = reference::attention_layer(q, g.q_heads, {}, kv.keys, kv.values, c.tokens, c.kv_heads, c.dim);
  GpuAttention gpu(ctx);
  // The shared-memory reductions: every token count at ratio 4, every ratio tried at D 64, the
  // one-KV-head cases (D 128 at ratio 7, D 256) and the ratios above 8 (query heads in chunks).
  const bool shared_memory = c.ratio == 4 || c.dim == 64 || c.kv_heads == 1 || c.ratio > 8;
  for (const PathSetting& path : path_settings(*ctx, shared_memory)) {
    gpu.set_portable(path.portable);
    gpu.set_subgroup_reductions(path.subgroup_reductions);
    for (uint8_t poison : {uint8_t(0xff), uint8_t(0x00)}) {
      gpu.set_poison(poison);
      const auto out = gpu.fp16_host(g, q, kv.keys, kv.values, c.tokens);
      EXPECT_LT(attention_error(out, ref, c.dim), 1e-3) << path.name << ", poison " << int(poison);
    }
  }
}

std::vector<Fp16Case> fp16_cases() {
  std::vector<Fp16Case> cases;
  for (uint32_t t : {1u, 31u, 32u, 33u, 127u, 128u, 129u, 1000u}) cases.push_back({2, 4, 128, t});
  for (uint32_t ratio = 1; ratio <= 8; ++ratio) cases.push_back({2, ratio, 128, 333});
  for (uint32_t ratio : {1u, 3u, 8u})
    for (uint32_t dim : {64u, 256u}) cases.push_back({2, ratio, dim, 300});
  cases.push_back({1, 7, 128, 6272 + 40});
  cases.push_back({1, 2, 256, 513});
  // GQA beyond 8: head chunks of 5 (9: one surplus head masked), 6 and 8 per workgroup
  for (uint32_t ratio : {9u, 12u, 16u}) cases.push_back({2, ratio, 128, 333});
  // head dims that are not a multiple of 64 (of the lanes that own channels)
  for (uint32_t dim : {80u, 96u, 112u}) {
    cases.push_back({2, 4, dim, 300});
    cases.push_back({1, 16, dim, 129});
  }
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
  for (bool portable : {false, true}) {
    GpuAttention gpu(ctx);
    gpu.set_portable(portable);
    for (uint32_t split : {0u, 64u, 128u, 192u, 512u, 1024u}) {  // 0: the path's default
      if (split != 0) gpu.set_split_tokens(split);
      EXPECT_LT(attention_error(gpu.fp16_host(g, q, kv.keys, kv.values, 1500), ref, 64), 1e-3)
          << "split " << gpu.split_tokens() << (portable ? ", portable" : "");
    }
  }
}

// Many slots for the reduction (1563 splits of 64 tokens), in both reduction modes of the portable
// attention shader; outputs poisoned.
TEST_F(GpuAttention_, ManySlotsReduce) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const uint32_t tokens = 100000;
  const AttentionGeometry g{1, 2, 64};
  const KvData kv = random_kv(1, tokens, 64, seed);
  const auto q = realistic_query(kv.keys, tokens, 1, 2, 64, seed + 3);
  const auto ref = reference::attention_layer(q, 2, {}, kv.keys, kv.values, tokens, 1, 64);
  GpuAttention gpu(ctx);
  gpu.set_split_tokens(64);
  for (const PathSetting& path : path_settings(*ctx)) {
    gpu.set_portable(path.portable);
    gpu.set_subgroup_reductions(path.subgroup_reductions);
    EXPECT_LT(attention_error(gpu.fp16_host(g, q, kv.keys, kv.values, tokens), ref, 64), 1e-3) << path.name;
  }
}

// The two reduction modes of attention.glsl give the same outputs up to summation order, and the
// pipelines really were made with both settings of specialization constant 4 (a fresh context, so
// that its records hold only this test's pipelines).
TEST_F(GpuAttention_, SubgroupAndSharedMemoryReductionsAgree) {
  if (!GpuAttention::subgroup_reductions_default(*ctx)) GTEST_SKIP() << "no subgroup arithmetic in compute";
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  rt::ContextOptions options = rt::ContextOptions::from_environment();
  options.validation = true;
  const auto fresh = rt::Context::create(options);
  const AttentionGeometry g{2, 14, 128};
  const uint32_t tokens = 777;
  const KvData kv = random_kv(2, tokens, 128, seed);
  const auto q = realistic_query(kv.keys, tokens, 2, 14, 128, seed + 5);
  GpuAttention gpu(fresh);
  gpu.set_portable(true);
  gpu.set_split_tokens(128);
  gpu.set_subgroup_reductions(true);
  const auto with_subgroups = gpu.fp16_host(g, q, kv.keys, kv.values, tokens);
  gpu.set_subgroup_reductions(false);
  gpu.set_poison(0x00);
  const auto shared_only = gpu.fp16_host(g, q, kv.keys, kv.values, tokens);
  EXPECT_LT(attention_error(with_subgroups, std::vector<double>(shared_only.begin(), shared_only.end()), 128), 1e-5);
  std::set<uint32_t> settings;
  for (const auto& r : fresh->pipeline_records()) {
    if (r.name == "attention_fp16" && r.specialization.size() > 4) settings.insert(r.specialization[4]);
  }
  EXPECT_EQ(settings, (std::set<uint32_t>{0u, 1u}));
  expect_no_validation_messages(*fresh, 0);
}

// The portable path's default split follows the device's compute units.
TEST(GpuAttentionPath, PortableSplitFollowsComputeUnits) {
  EXPECT_EQ(GpuAttention::portable_split_rule(0), 256u);   // unknown
  EXPECT_EQ(GpuAttention::portable_split_rule(8), 512u);
  EXPECT_EQ(GpuAttention::portable_split_rule(32), 512u);
  EXPECT_EQ(GpuAttention::portable_split_rule(33), 256u);
  EXPECT_EQ(GpuAttention::portable_split_rule(64), 256u);
  EXPECT_EQ(GpuAttention::portable_split_rule(96), 128u);   // Radeon RX 7900 XTX
  EXPECT_EQ(GpuAttention::portable_split_rule(132), 128u);  // H100 SXM
  for (uint32_t cu = 1; cu < 400; ++cu) {
    const uint32_t split = GpuAttention::portable_split_rule(cu);
    EXPECT_TRUE(split == 128 || 8192 / split * 4 >= 2 * cu) << cu;
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
  expect_error({2, 8, 72}, std::vector<float>(8 * 72), 64, ErrorCode::invalid_argument,
               "head dim 72 is not a multiple of 16 from 64 to 256");
  expect_error({2, 8, 272}, std::vector<float>(8 * 272), 64, ErrorCode::invalid_argument, "head dim 272");
  expect_error({2, 8, 64}, std::vector<float>(8 * 64 - 1), 64, ErrorCode::invalid_argument, "511");
  expect_error({2, 8, 64}, q, 0, ErrorCode::invalid_argument, "empty");
  expect_error({2, 8, 64}, q, 65, ErrorCode::buffer_too_small, "65");
  // 17 query heads per KV head: one more than the attention serves
  expect_error({1, 17, 64}, std::vector<float>(17 * 64), 64, ErrorCode::invalid_argument,
               "q_heads / kv_heads = 17 exceeds 16 query heads per KV head");
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
  const uint32_t portable_split = GpuAttention::portable_split_rule(fresh->info().compute_units);
  EXPECT_EQ(gpu.split_tokens(), sg8 ? 1024u : portable_split);
  gpu.set_portable(true);
  EXPECT_FALSE(gpu.subgroup8_path());
  EXPECT_EQ(gpu.split_tokens(), portable_split);
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
