// Context options that change how every pipeline runs: a required subgroup size
// (VK_EXT_subgroup_size_control) and fp16/int8 features switched off. Bad sizes are clear errors
// raised before any device is made; accepted ones give pipelines created with that size, which the
// validation layer accepts, and shaders that still match the reference.
#include <gtest/gtest.h>
#include <vulkan/vulkan.h>

#include <string>
#include <vector>

#include "common/attention_checks.hpp"
#include "common/gpu_checks.hpp"
#include "common/gpu_checks_coverage.hpp"
#include "common/random_data.hpp"
#include "vidkv/gpu_quantizer.hpp"
#include "vidkv/runtime/context.hpp"
#include "vulkan_fixture.hpp"

namespace vidkv::test {
namespace {

using RuntimeOptions = VulkanTest;

rt::ContextOptions validated() {
  rt::ContextOptions options = rt::ContextOptions::from_environment();
  options.validation = true;
  return options;
}

// What the device says about required subgroup sizes for compute, read straight from Vulkan.
struct SizeControl {
  bool available = false;  // extension, feature and compute stage
  uint32_t min = 0, max = 0;
};
SizeControl size_control_of(const rt::Context& ctx) {
  SizeControl s;
  if (!ctx.info().subgroup_size_control) return s;
  VkPhysicalDeviceSubgroupSizeControlFeaturesEXT features{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES_EXT};
  VkPhysicalDeviceFeatures2 features2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, &features};
  vkGetPhysicalDeviceFeatures2(ctx.physical_device(), &features2);
  VkPhysicalDeviceSubgroupSizeControlPropertiesEXT properties{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES_EXT};
  VkPhysicalDeviceProperties2 properties2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, &properties};
  vkGetPhysicalDeviceProperties2(ctx.physical_device(), &properties2);
  s.available = features.subgroupSizeControl && (properties.requiredSubgroupSizeStages & VK_SHADER_STAGE_COMPUTE_BIT);
  s.min = properties.minSubgroupSize;
  s.max = properties.maxSubgroupSize;
  return s;
}

template <typename F>
void expect_error(F&& f, ErrorCode code, const std::vector<std::string>& mentions) {
  try {
    f();
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const auto& m : mentions) EXPECT_NE(std::string(e.what()).find(m), std::string::npos) << e.what();
  }
}

TEST_F(RuntimeOptions, SubgroupSizeThatIsNoPowerOfTwoIsAClearError) {
  for (uint32_t size : {3u, 12u, 48u}) {
    rt::ContextOptions options = validated();
    options.required_subgroup_size = size;
    expect_error([&] { rt::Context::create(options); }, ErrorCode::invalid_argument,
                 {std::to_string(size), "power of two"});
  }
}

TEST_F(RuntimeOptions, SubgroupSizeOutsideTheDeviceRangeIsAClearError) {
  const SizeControl control = size_control_of(*ctx);
  const uint32_t too_big = std::max(ctx->info().max_subgroup_size, 1u) * 2;
  rt::ContextOptions options = validated();
  options.required_subgroup_size = too_big;
  if (ctx->info().subgroup_size_control) {
    expect_error([&] { rt::Context::create(options); }, ErrorCode::invalid_argument,
                 {std::to_string(too_big), ctx->info().name,
                  std::to_string(control.min) + ".." + std::to_string(control.max)});
    if (control.min > 1) {
      options.required_subgroup_size = control.min / 2;
      expect_error([&] { rt::Context::create(options); }, ErrorCode::invalid_argument,
                   {std::to_string(control.min / 2)});
    }
  } else {
    expect_error([&] { rt::Context::create(options); }, ErrorCode::missing_feature,
                 {"VK_EXT_subgroup_size_control"});
  }
}

// Every size the device allows: the context enables size control, every pipeline is created with
// the size (full subgroups where the width allows), the validation layer reports nothing, and the
// shaders that use subgroup operations (attention) and those that do not (grouped quantizer) still
// match the reference.
TEST_F(RuntimeOptions, PipelinesWithARequiredSubgroupSizePassValidation) {
  const SizeControl control = size_control_of(*ctx);
  if (!control.available) GTEST_SKIP() << ctx->info().name << " cannot require a compute subgroup size";
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  for (uint32_t size = control.min; size <= control.max; size *= 2) {
    SCOPED_TRACE("subgroup size " + std::to_string(size));
    rt::ContextOptions options = validated();
    options.required_subgroup_size = size;
    auto sized = rt::Context::create(options);
    EXPECT_TRUE(sized->enabled_features().subgroup_size_control);
    EXPECT_EQ(sized->enabled_features().required_subgroup_size, size);
    EXPECT_EQ(sized->effective_subgroup_size(), size);

    GpuQuantizer quantizer(sized);
    const tools::GpuCheckCase grouped{{QuantBits::b2, QuantAxis::channel, 32}, {2, 64, 128}};
    for (const auto& r : tools::run_gpu_check(quantizer, grouped, seed)) EXPECT_TRUE(r.passed) << r.name << r.detail;
    GpuAttention attention(sized);
    const tools::AttentionCheckCase fused{"k1.5", ValueFormat::ternary_trits, 2, 4, 128, 300};
    for (const auto& r : tools::run_attention_check(attention, fused, seed)) {
      EXPECT_TRUE(r.passed) << r.name << " " << r.detail;
    }

    const auto records = sized->pipeline_records();
    ASSERT_FALSE(records.empty());
    for (const auto& p : records) {
      const uint64_t invocations = uint64_t(p.local_size[0]) * p.local_size[1] * p.local_size[2];
      if (invocations > uint64_t(sized->enabled_features().max_compute_workgroup_subgroups) * size) continue;
      EXPECT_EQ(p.required_subgroup_size, size) << p.name;
      EXPECT_EQ(p.full_subgroups, sized->enabled_features().compute_full_subgroups && p.local_size[0] % size == 0)
          << p.name;
    }
    expect_no_validation_messages(*sized, 0);
  }
}

// Pipeline records carry the workgroup size after specialization: constant 0 for the grouped
// shaders (64 invocations in this version), as the pipeline was really created.
TEST_F(RuntimeOptions, PipelineRecordsReadTheSpecializedWorkgroupSize) {
  GpuQuantizer quantizer(ctx);
  const TensorShape shape{1, 32, 64};
  const TensorLayout thd = TensorLayout::thd(shape);
  const auto input = tools::random_halves(shape, thd, 1);
  quantizer.quantize_host({QuantBits::b4, QuantAxis::channel, 32}, shape, input, thd);
  bool found = false;
  for (const auto& p : ctx->pipeline_records()) {
    if (p.name != "quantize_grouped") continue;
    found = true;
    ASSERT_FALSE(p.specialization.empty());
    EXPECT_EQ(p.local_size[0], p.specialization[0]);
    EXPECT_EQ(p.local_size[1], 1u);
    EXPECT_EQ(p.local_size[2], 1u);
    EXPECT_FALSE(p.capabilities.empty());  // at least Shader
  }
  EXPECT_TRUE(found);
}

// shaderFloat16, shaderInt8 and 16/8-bit storage off: the context says so, no module declares a
// capability that needs them, and the shaders still match the reference without a validation
// message (the layer checks every module's capabilities against the enabled features).
TEST_F(RuntimeOptions, Float16AndInt8OffStillPass) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  rt::ContextOptions options = validated();
  options.disable_float16_int8 = true;
  auto plain = rt::Context::create(options);
  const rt::EnabledFeatures& f = plain->enabled_features();
  EXPECT_TRUE(f.known);
  EXPECT_FALSE(f.shader_float16);
  EXPECT_FALSE(f.shader_int8);
  EXPECT_FALSE(f.storage_buffer_16bit);
  EXPECT_FALSE(f.storage_buffer_8bit);
  GpuQuantizer quantizer(plain);
  for (QuantBits bits : {QuantBits::b1, QuantBits::b1_58, QuantBits::b8}) {
    const tools::GpuCheckCase c{{bits, QuantAxis::channel, 32}, {2, 64, 96}};
    for (const auto& r : tools::run_gpu_check(quantizer, c, seed)) EXPECT_TRUE(r.passed) << r.name << r.detail;
  }
  GpuAttention attention(plain);
  const tools::AttentionCheckCase fused{"k1.5", ValueFormat::b2_token, 1, 7, 64, 129};
  for (const auto& r : tools::run_attention_check(attention, fused, seed)) {
    EXPECT_TRUE(r.passed) << r.name << " " << r.detail;
  }
  const auto capabilities = tools::spirv_capability_check("capabilities", plain->pipeline_records(), f);
  EXPECT_TRUE(capabilities.passed) << capabilities.detail;
  expect_no_validation_messages(*plain, 0);
}

// The capability check conformance runs per pass flags a module that declares a capability whose
// feature is off (here a made-up record: none of vidkv's modules does), and only then.
TEST(RuntimeOptionsCapabilities, CapabilityNeedingAnOffFeatureIsFlagged) {
  rt::PipelineRecord record;
  record.name = "made_up";
  record.capabilities = {1, 9};  // Shader, Float16
  rt::EnabledFeatures off;
  off.known = true;
  const auto flagged = tools::spirv_capability_check("capabilities", {record}, off);
  EXPECT_FALSE(flagged.passed);
  EXPECT_NE(flagged.detail.find("made_up:Float16"), std::string::npos) << flagged.detail;
  rt::EnabledFeatures on = off;
  on.shader_float16 = true;
  EXPECT_TRUE(tools::spirv_capability_check("capabilities", {record}, on).passed);
  record.capabilities = {1, 22};  // Int16: vidkv never enables shaderInt16
  EXPECT_FALSE(tools::spirv_capability_check("capabilities", {record}, on).passed);
}

// With the features on, the context enables what the device has.
TEST_F(RuntimeOptions, FeaturesOnFollowTheDevice) {
  const rt::EnabledFeatures& f = ctx->enabled_features();
  EXPECT_TRUE(f.known);
  EXPECT_EQ(f.shader_float16, ctx->info().shader_float16);
  EXPECT_EQ(f.shader_int8, ctx->info().shader_int8);
  EXPECT_EQ(f.required_subgroup_size, 0u);
  if (ctx->info().min_subgroup_size == ctx->info().max_subgroup_size) {
    EXPECT_EQ(ctx->effective_subgroup_size(), ctx->info().subgroup_size);
  } else {
    EXPECT_EQ(ctx->effective_subgroup_size(), 0u);
  }
}

}  // namespace
}  // namespace vidkv::test
