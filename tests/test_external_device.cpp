// The engine path: the test plays an inference engine with its own VkInstance, VkDevice, queue,
// VkBuffers and command buffer, linked against libvulkan directly. vidkv is handed the handles,
// owns none of them, and only records into the engine's command buffer.
#include <gtest/gtest.h>
#include <vulkan/vulkan.h>

#include <cstring>
#include <deque>
#include <vector>

#include "common/random_data.hpp"
#include "engine_fixture.hpp"
#include "vidkv/gpu_quantizer.hpp"
#include "vidkv/reference.hpp"

namespace vidkv::test {
namespace {

TEST(ExternalDevice, RecordsIntoTheEnginesCommandBufferWithTheEnginesBuffers) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  Engine engine;
  ASSERT_NE(engine.device, VK_NULL_HANDLE);
  {
    rt::ExternalDevice external{vkGetInstanceProcAddr, engine.instance, engine.physical, engine.device,
                                engine.family, engine.queue};
    auto context = rt::Context::wrap(external);
    EXPECT_FALSE(context->owns_device());
    GpuQuantizer quantizer(context);

    const TensorShape shape{2, 64, 128};
    const QuantSpec spec{QuantBits::b2, QuantAxis::channel, 32};
    const TensorLayout layout = TensorLayout::thd(shape);
    const auto input = tools::random_halves(shape, layout, seed);
    const PackedBytes pb = packed_bytes(spec, shape);
    auto& in = engine.make_buffer(input.size() * 2);
    std::memcpy(in.mapped, input.data(), input.size() * 2);
    auto& codes = engine.make_buffer(pb.codes);
    auto& scales = engine.make_buffer(pb.scales);
    auto& mins = engine.make_buffer(pb.mins);
    auto& out = engine.make_buffer(input.size() * 2);
    const PackedBuffers packed{view_of(codes), view_of(scales), view_of(mins)};

    VkCommandPoolCreateInfo pi{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
    pi.queueFamilyIndex = engine.family;
    VkCommandPool pool;
    ASSERT_EQ(vkCreateCommandPool(engine.device, &pi, nullptr, &pool), VK_SUCCESS);
    VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    ai.commandPool = pool;
    ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    ai.commandBufferCount = 1;
    VkCommandBuffer cmd;
    ASSERT_EQ(vkAllocateCommandBuffers(engine.device, &ai, &cmd), VK_SUCCESS);
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    vkBeginCommandBuffer(cmd, &bi);
    quantizer.record_quantize(cmd, spec, shape, layout, ElementType::f16, view_of(in), packed);
    // The engine's barrier between vidkv's writes and its next reads (here: vidkv's own decode).
    VkMemoryBarrier barrier{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    barrier.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
    barrier.dstAccessMask = VK_ACCESS_SHADER_READ_BIT;
    vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1,
                         &barrier, 0, nullptr, 0, nullptr);
    quantizer.record_dequantize(cmd, spec, shape, packed, layout, ElementType::f16, view_of(out));
    barrier.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
    vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &barrier, 0,
                         nullptr, 0, nullptr);
    vkEndCommandBuffer(cmd);
    VkFenceCreateInfo fi{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VkFence fence;
    vkCreateFence(engine.device, &fi, nullptr, &fence);
    VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
    si.commandBufferCount = 1;
    si.pCommandBuffers = &cmd;
    ASSERT_EQ(vkQueueSubmit(engine.queue, 1, &si, fence), VK_SUCCESS);
    ASSERT_EQ(vkWaitForFences(engine.device, 1, &fence, VK_TRUE, UINT64_MAX), VK_SUCCESS);

    const auto expected = reference::quantize(spec, shape, input.data(), layout);
    const auto expected_decoded = reference::dequantize(expected, layout);
    EXPECT_EQ(0, std::memcmp(codes.mapped, expected.codes.data(), expected.codes.size() * 4));
    EXPECT_EQ(0, std::memcmp(scales.mapped, expected.scales.data(), expected.scales.size() * 2));
    EXPECT_EQ(0, std::memcmp(mins.mapped, expected.mins.data(), expected.mins.size() * 2));
    EXPECT_EQ(0, std::memcmp(out.mapped, expected_decoded.data(), expected_decoded.size() * 2));

    vkDestroyFence(engine.device, fence, nullptr);
    vkDestroyCommandPool(engine.device, pool, nullptr);
  }  // vidkv's context goes first; the engine's handles must survive it
  EXPECT_NE(engine.device, VK_NULL_HANDLE);
  for (const auto& m : engine.messages) ADD_FAILURE() << "validation message: " << m;
}

TEST(ExternalDevice, RejectsADeviceWithoutPushDescriptors) {
  Engine engine(/*enable_push_descriptor=*/false);
  rt::ExternalDevice external{vkGetInstanceProcAddr, engine.instance, engine.physical, engine.device,
                              engine.family, engine.queue};
  try {
    rt::Context::wrap(external);
    ADD_FAILURE() << "device without VK_KHR_push_descriptor accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::missing_feature);
    EXPECT_NE(std::string(e.what()).find("VK_KHR_push_descriptor"), std::string::npos) << e.what();
  }
  for (const auto& m : engine.messages) ADD_FAILURE() << "validation message: " << m;
}

TEST(ExternalDevice, RejectsAQueueFamilyThatDoesNotExist) {
  Engine engine;
  rt::ExternalDevice external{vkGetInstanceProcAddr, engine.instance, engine.physical, engine.device, 99,
                              engine.queue};
  try {
    rt::Context::wrap(external);
    ADD_FAILURE() << "queue family 99 accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::missing_feature);
    EXPECT_NE(std::string(e.what()).find("99"), std::string::npos) << e.what();
  }
}

TEST(ExternalDevice, RejectsIncompleteHandles) {
  rt::ExternalDevice external{};
  try {
    rt::Context::wrap(external);
    ADD_FAILURE() << "empty ExternalDevice accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
  }
}

}  // namespace
}  // namespace vidkv::test
