// The Vulkan layer on its own: device choice, buffers, timestamps, and proof that the validation
// layer really reports (so a silent test run means a clean run).
#include <gtest/gtest.h>
#include <vulkan/vulkan.h>

#include <numeric>

#include "vidkv/runtime/buffer.hpp"
#include "vidkv/runtime/commands.hpp"
#include "vidkv/runtime/context.hpp"
#include "vidkv/runtime/device_info.hpp"
#include "vidkv/runtime/timestamps.hpp"
#include "vulkan_fixture.hpp"

namespace vidkv::test {
namespace {

using RuntimeTest = VulkanTest;

TEST_F(RuntimeTest, EnumeratesDevicesWithSaneProperties) {
  const auto devices = rt::enumerate_devices();
  ASSERT_FALSE(devices.empty());
  for (const auto& d : devices) {
    EXPECT_FALSE(d.name.empty());
    EXPECT_GE(VK_API_VERSION_MINOR(d.api_version), 2u) << d.name;
    EXPECT_GT(d.subgroup_size, 0u);
    EXPECT_LE(d.min_subgroup_size, d.subgroup_size);
    EXPECT_GE(d.max_subgroup_size, d.subgroup_size);
    EXPECT_GE(d.max_workgroup_invocations, 64u);
    EXPECT_GT(d.max_shared_memory, 0u);
    EXPECT_GT(d.timestamp_period_ns, 0.0f);
  }
  EXPECT_EQ(rt::version_string(VK_MAKE_API_VERSION(0, 1, 3, 230)), "1.3.230");
}

TEST_F(RuntimeTest, SharedContextHasComputeQueueAndPushDescriptors) {
  EXPECT_NE(ctx->device(), VK_NULL_HANDLE);
  EXPECT_NE(ctx->queue(), VK_NULL_HANDLE);
  EXPECT_TRUE(ctx->owns_device());
  EXPECT_TRUE(ctx->info().push_descriptor);
}

TEST(RuntimeSelection, SelectsByIndexAndByNameSubstring) {
  const auto devices = rt::enumerate_devices();
  ASSERT_FALSE(devices.empty());
  const auto& last = devices.back();
  rt::ContextOptions by_index;
  by_index.validation = true;
  by_index.device_selector = std::to_string(last.index);
  auto a = rt::Context::create(by_index);
  EXPECT_EQ(a->info().name, last.name);
  rt::ContextOptions by_name = by_index;
  by_name.device_selector = last.name.substr(0, 4);
  auto b = rt::Context::create(by_name);
  EXPECT_NE(b->info().name.find(last.name.substr(0, 4)), std::string::npos);
  expect_no_validation_messages(*a, 0);
  expect_no_validation_messages(*b, 0);
}

TEST(RuntimeSelection, UnknownDeviceIsAClearError) {
  for (const char* selector : {"no-such-gpu-anywhere", "9999"}) {
    rt::ContextOptions options;
    options.device_selector = selector;
    try {
      rt::Context::create(options);
      ADD_FAILURE() << "selector " << selector << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::no_device);
      EXPECT_NE(std::string(e.what()).find(selector), std::string::npos) << e.what();
    }
  }
}

TEST(RuntimeSelection, PrefersDiscreteThenIntegratedThenVirtualThenCpu) {
  const auto devices = rt::enumerate_devices();
  auto rank = [](rt::DeviceType t) {
    switch (t) {
      case rt::DeviceType::discrete: return 0;
      case rt::DeviceType::integrated: return 1;
      case rt::DeviceType::virtual_gpu: return 2;
      case rt::DeviceType::cpu: return 3;
      default: return 4;
    }
  };
  int best = 5;
  for (const auto& d : devices) best = std::min(best, rank(d.type));
  rt::ContextOptions options;  // no selector
  auto context = rt::Context::create(options);
  EXPECT_EQ(rank(context->info().type), best);
}

TEST_F(RuntimeTest, BufferRoundTripAndRangeChecks) {
  rt::Buffer buffer(ctx, 4096);
  std::vector<uint32_t> data(1024);
  std::iota(data.begin(), data.end(), 7u);
  buffer.upload(data.data(), 4096);
  std::vector<uint32_t> back(1024, 0);
  buffer.download(back.data(), 4096);
  EXPECT_EQ(back, data);
  buffer.fill(0x5a);
  std::vector<uint8_t> bytes(16);
  buffer.download(bytes.data(), 16, 4000);
  for (uint8_t b : bytes) EXPECT_EQ(b, 0x5a);

  EXPECT_THROW(buffer.upload(data.data(), 8, 4092), Error);
  EXPECT_THROW(buffer.view(4000, 200), Error);
  try {
    rt::Buffer empty(ctx, 0);
    ADD_FAILURE() << "zero-sized buffer accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
  }
}

TEST_F(RuntimeTest, HugeAllocationFailsWithOutOfMemoryNamingTheSize) {
  // Far beyond any heap: the error names the size, and the context stays usable afterwards.
  const VkDeviceSize huge = VkDeviceSize(1) << 50;
  try {
    rt::Buffer buffer(ctx, huge);
    ADD_FAILURE() << "2^50-byte buffer accepted";
  } catch (const Error& e) {
    EXPECT_TRUE(e.code() == ErrorCode::out_of_memory || e.code() == ErrorCode::vulkan_error) << e.what();
  }
  rt::Buffer small(ctx, 256);
  EXPECT_EQ(small.size(), 256u);
}

TEST_F(RuntimeTest, TimestampsMeasureRecordedWork) {
  rt::Buffer buffer(ctx, 1 << 20);
  rt::TimestampQueries queries(ctx, 2);
  rt::CommandRunner runner(ctx);
  runner.run([&](VkCommandBuffer cmd) {
    queries.reset(cmd);
    queries.write(cmd, 0);
    vkCmdFillBuffer(cmd, buffer.handle(), 0, VK_WHOLE_SIZE, 0x01020304u);
    queries.write(cmd, 1);
  });
  const double ms = queries.elapsed_ms(0, 1);
  EXPECT_GE(ms, 0.0);
  EXPECT_LT(ms, 10000.0);
  uint32_t word = 0;
  buffer.download(&word, 4, 1 << 19);
  EXPECT_EQ(word, 0x01020304u);
}

TEST(RuntimeValidation, LayerReportsMisuseToTheContext) {
  rt::ContextOptions options = rt::ContextOptions::from_environment();
  options.validation = true;
  auto context = rt::Context::create(options);
  ASSERT_EQ(context->validation_message_count(), 0u);
  // A zero-sized buffer is invalid usage (VUID-VkBufferCreateInfo-size-00912).
  VkBufferCreateInfo info{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
  info.size = 0;
  info.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT;
  VkBuffer buffer = VK_NULL_HANDLE;
  VkResult result = vkCreateBuffer(context->device(), &info, nullptr, &buffer);
  if (result == VK_SUCCESS && buffer != VK_NULL_HANDLE) vkDestroyBuffer(context->device(), buffer, nullptr);
  EXPECT_GT(context->validation_message_count(), 0u);
}

}  // namespace
}  // namespace vidkv::test

namespace vidkv::test {
namespace {

// The discrete-GPU path on any device: nothing mapped, every transfer through a staging copy.
TEST(RuntimeStaging, StagedBuffersRoundTripAndQuantizeBitExact) {
  rt::ContextOptions options = rt::ContextOptions::from_environment();
  options.validation = true;
  options.force_staging = true;
  auto context = rt::Context::create(options);
  EXPECT_FALSE(context->unified_memory());
  rt::Buffer buffer(context, 1 << 16);
  EXPECT_FALSE(buffer.host_visible());
  std::vector<uint32_t> data(1 << 14);
  std::iota(data.begin(), data.end(), 3u);
  buffer.upload(data.data(), data.size() * 4);
  buffer.fill(0x11);
  uint32_t word = 0;
  buffer.download(&word, 4, 4096);
  EXPECT_EQ(word, 0x11111111u);
  buffer.upload(data.data(), data.size() * 4);
  std::vector<uint32_t> back(data.size());
  buffer.download(back.data(), back.size() * 4);
  EXPECT_EQ(back, data);
  expect_no_validation_messages(*context, 0);
}

}  // namespace
}  // namespace vidkv::test

namespace vidkv::test {
namespace {

// Synchronization validation is on in every test context: two writes of one buffer without a
// barrier between them must be reported, so a silent run means no hazard.
TEST(RuntimeValidation, SynchronizationValidationReportsAHazard) {
  rt::ContextOptions options = rt::ContextOptions::from_environment();
  options.validation = true;
  options.synchronization_validation = true;
  auto context = rt::Context::create(options);
  rt::Buffer buffer(context, 4096);
  rt::CommandRunner runner(context);
  runner.run([&](VkCommandBuffer cmd) {
    vkCmdFillBuffer(cmd, buffer.handle(), 0, VK_WHOLE_SIZE, 1u);
    vkCmdFillBuffer(cmd, buffer.handle(), 0, VK_WHOLE_SIZE, 2u);  // WRITE_AFTER_WRITE: no barrier
  });
  bool hazard = false;
  for (const auto& m : context->validation_messages()) hazard = hazard || m.text.find("SYNC-HAZARD") != std::string::npos;
  EXPECT_TRUE(hazard) << "synchronization validation did not report the missing barrier";
}

}  // namespace
}  // namespace vidkv::test
