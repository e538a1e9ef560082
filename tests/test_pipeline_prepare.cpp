// Pipelines without buffers or dispatches (vidkv-info --pipelines): command runners make their
// command objects only when first run, so the GPU classes can be built on a device that only
// compiles (RADV's null devices); prepare_pipelines creates exactly the pipelines a decode step
// records; capturing statistics is a clear error where the extension is missing.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "vidkv/gpu_attention.hpp"
#include "vidkv/gpu_keys.hpp"
#include "vidkv/gpu_quantizer.hpp"
#include "vidkv/runtime/commands.hpp"
#include "vidkv/runtime/context.hpp"
#include "vidkv/runtime/device_info.hpp"
#include "vulkan_fixture.hpp"

namespace vidkv::test {
namespace {

using PipelinePrepare = VulkanTest;

bool has_record(const rt::Context& ctx, const rt::PreparedPipeline& p) {
  const auto records = ctx.pipeline_records();
  return std::any_of(records.begin(), records.end(), [&](const rt::PipelineRecord& r) {
    return r.name == p.shader && r.specialization == p.specialization;
  });
}

std::vector<std::string> labels_of(const std::vector<rt::PreparedPipeline>& ps) {
  std::vector<std::string> out;
  for (const auto& p : ps) out.push_back(p.label);
  return out;
}

TEST_F(PipelinePrepare, CommandRunnerMakesItsCommandObjectsOnFirstRun) {
  rt::CommandRunner runner(ctx);
  EXPECT_FALSE(runner.ready());  // no pool, command buffer or fence yet
  int recorded = 0;
  runner.run([&](VkCommandBuffer cmd) { recorded += cmd != VK_NULL_HANDLE; });
  EXPECT_EQ(recorded, 1);
  EXPECT_TRUE(runner.ready());
  runner.run([&](VkCommandBuffer cmd) { recorded += cmd != VK_NULL_HANDLE; });  // reused
  EXPECT_EQ(recorded, 2);
}

TEST_F(PipelinePrepare, AttentionPreparesEveryPipelineOfEachValueFormat) {
  GpuAttention attention(ctx);
  attention.set_portable(true);  // the GPU path
  const AttentionGeometry g{4, 28, 128, 0.0f};
  const auto fp16 = attention.prepare_pipelines_fp16(g);
  EXPECT_EQ(labels_of(fp16), (std::vector<std::string>{"attention_fp16", "attention_reduce"}));
  KeySpec keys;  // k1.5
  const std::vector<std::pair<ValueFormat, std::vector<std::string>>> cases = {
      {ValueFormat::ternary_trits, {"attention_vidkv[trits, k64 s64]"}},
      {ValueFormat::b2_channel, {"attention_vidkv[b2_channel, k64 s64]"}},
      {ValueFormat::b2_token, {"attention_vidkv[b2_token, k64 s64]"}},
      {ValueFormat::ternary_stp, {"attention_vidkv[stp, k64 s64]", "attention_vidkv[trits, k64 s64]"}},
  };
  for (const auto& [format, vidkv] : cases) {
    const auto made = attention.prepare_pipelines(g, keys, format);
    // The portable VidKV kernel transforms the query itself: no attention_query pipeline.
    std::vector<std::string> expected = vidkv;
    expected.push_back("attention_fp16[residual]");
    expected.push_back("attention_reduce");
    EXPECT_EQ(labels_of(made), expected) << value_format_name(format);
    for (const auto& p : made) EXPECT_TRUE(has_record(*ctx, p)) << p.label;
  }
  // The value mode is specialization constant 6 of attention_vidkv (after the local size, D,
  // ratio, split, k and S): 0 trits .. 3 stp.
  const auto stp = attention.prepare_pipelines(g, keys, ValueFormat::ternary_stp);
  ASSERT_GE(stp[0].specialization.size(), 7u);
  EXPECT_EQ(stp[0].specialization[6], 3u);
  EXPECT_EQ(stp[1].specialization[6], 0u);
}

TEST_F(PipelinePrepare, Subgroup8PathPreparesItsOwnQueryAndReduction) {
  GpuAttention attention(ctx);
  if (!attention.subgroup8_path()) GTEST_SKIP() << "not a subgroup-of-8 CPU device";
  const AttentionGeometry g{4, 28, 128, 0.0f};
  EXPECT_EQ(labels_of(attention.prepare_pipelines_fp16(g)),
            (std::vector<std::string>{"attention_fp16_sg8", "attention_reduce_sg8"}));
  const auto made = attention.prepare_pipelines(g, KeySpec{}, ValueFormat::ternary_trits);
  EXPECT_EQ(labels_of(made), (std::vector<std::string>{"attention_query[k64 s64]", "attention_vidkv_sg8[trits, k64 s64]",
                                                        "attention_fp16_sg8[residual]", "attention_reduce_sg8"}));
  for (const auto& p : made) EXPECT_TRUE(has_record(*ctx, p)) << p.label;
  // Both of its own kernels run as one 8-lane subgroup per workgroup (constant 0, the local size).
  EXPECT_EQ(made[0].specialization.at(0), 8u);
}

TEST_F(PipelinePrepare, PrepareChecksTheGeometryLikeRecording) {
  GpuAttention attention(ctx);
  try {
    attention.prepare_pipelines_fp16({4, 28, 88, 0.0f});
    ADD_FAILURE() << "accepted head dim 88";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("head dim 88"), std::string::npos) << e.what();
  }
}

TEST_F(PipelinePrepare, QuantizerPreparesTheValuePathOfAPreset) {
  GpuQuantizer quantizer(ctx);
  const auto trits = quantizer.prepare_quantize_pipelines({QuantBits::b1_58, QuantAxis::channel, 32}, ElementType::f16, true);
  ASSERT_EQ(trits.size(), 2u);
  EXPECT_EQ(trits[0].label, "quantize_grouped[1.58-bit per channel, f16]");
  EXPECT_EQ(trits[1].label, "trit_pack");
  for (const auto& p : trits) EXPECT_TRUE(has_record(*ctx, p)) << p.label;
  EXPECT_THROW(quantizer.prepare_quantize_pipelines({QuantBits::b2, QuantAxis::token, 32}, ElementType::f16, true),
               Error);  // trits hold 1.58-bit per-channel codes only
}

TEST_F(PipelinePrepare, KeyQuantizerPreparesThePrefillAndAppendPaths) {
  GpuKeyQuantizer keys(ctx);
  KeySpec k15;  // 64 anomalous channels, 64 half-spectrum streams at D 128
  const auto prefill = keys.prepare_quantize_pipelines(k15, 128, true);
  EXPECT_EQ(labels_of(prefill), (std::vector<std::string>{"channel_range", "channel_select", "key_gather", "key_streams",
                                                          "quantize_grouped[1-bit per channel, f32]",
                                                          "quantize_grouped[2-bit per channel, f32]"}));
  for (const auto& p : prefill) EXPECT_TRUE(has_record(*ctx, p)) << p.label;
  KeySpec plain;
  plain.nbits = 2.0;  // every channel anomalous: no streams
  EXPECT_EQ(labels_of(keys.prepare_quantize_pipelines(plain, 128, false)),
            (std::vector<std::string>{"channel_roles", "key_gather", "quantize_grouped[2-bit per channel, f32]"}));
}

TEST(PipelineStatistics, CaptureIsAClearErrorWithoutTheExtensionAndReportsOtherwise) {
  rt::ContextOptions options = rt::ContextOptions::from_environment();
  options.validation = true;
  options.capture_pipeline_statistics = true;
  std::shared_ptr<rt::Context> context;
  try {
    context = rt::Context::create(options);
  } catch (const Error& e) {
    // lavapipe (Mesa 22) has no VK_KHR_pipeline_executable_properties
    EXPECT_EQ(e.code(), ErrorCode::missing_feature);
    EXPECT_NE(std::string(e.what()).find("pipeline_executable_properties"), std::string::npos) << e.what();
    return;
  }
  EXPECT_TRUE(context->enabled_features().pipeline_statistics);
  GpuAttention attention(context);
  const auto made = attention.prepare_pipelines_fp16({4, 28, 128, 0.0f});
  for (const auto& r : context->pipeline_records()) {
    ASSERT_FALSE(r.executables.empty()) << r.name;
    EXPECT_FALSE(r.executables.front().statistics.empty()) << r.name;
  }
  EXPECT_EQ(context->validation_message_count(), 0u);
}

}  // namespace
}  // namespace vidkv::test
