// The runtime profiler (runtime/include/vidkv/runtime/profiler.hpp): attached to a context, every
// dispatch and VkFFT transform recorded on it comes back labelled with its shader's name and a
// duration; detached, nothing is recorded; a full profiler counts what it drops; timestamps of
// work that never ran are dropped instead of waited for. Validation stays silent throughout
// (the fixture fails on any message).
#include <gtest/gtest.h>
#include <vulkan/vulkan.h>

#include <cmath>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/random_data.hpp"
#include "vidkv/cache.hpp"
#include "vidkv/runtime/profiler.hpp"
#include "vulkan_fixture.hpp"

namespace vidkv::test {
namespace {

// A small k1.5-v1.58 cache (D 64: 32 anomalous channels, a 32-point FFT) with one prefilled layer.
struct SmallCache {
  std::unique_ptr<Cache> cache;
  uint32_t seq = 0;
  std::vector<float> q;
  SmallCache(const std::shared_ptr<rt::Context>& ctx, uint64_t seed) {
    cache = std::make_unique<Cache>(ctx, CacheGeometry{1, 2, 4, 64}, preset("k1.5-v1.58"), 256);
    seq = cache->create_sequence();
    const TensorShape shape{2, 96, 64};
    const auto k = tools::random_halves(shape, TensorLayout::thd(shape), seed, false);
    const auto v = tools::random_halves(shape, TensorLayout::thd(shape), seed + 1, false);
    q.assign(4 * 64, 0.5f);
    prefill = [this, k, v] { cache->prefill(seq, 0, k, v, 96); };
  }
  std::function<void()> prefill;
};

std::set<std::string> labels(const std::vector<rt::ProfileEvent>& events) {
  std::set<std::string> out;
  for (const auto& e : events) out.insert(e.label);
  return out;
}

class RuntimeProfiler : public VulkanTest {};

TEST_F(RuntimeProfiler, LabelsEveryDispatchOfACall) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  SmallCache c(ctx, seed);
  rt::Profiler profiler(ctx);
  EXPECT_EQ(ctx->profiler(), &profiler);
  c.prefill();
  const auto prefill = profiler.collect();
  ASSERT_FALSE(prefill.empty());
  const auto names = labels(prefill);
  for (const char* expected : {"quantize_grouped", "channel_range", "key_streams", "vkfft R2C n=32"})
    EXPECT_TRUE(names.count(expected)) << expected << " missing";
  double last_start = 0;
  for (const auto& e : prefill) {
    EXPECT_FALSE(e.label.empty());
    EXPECT_TRUE(std::isfinite(e.duration_ms) && e.duration_ms >= 0) << e.label;
    EXPECT_GE(e.start_ms, last_start) << e.label << ": dispatches on one queue run in recording order";
    last_start = e.start_ms;
  }
  EXPECT_EQ(prefill.front().start_ms, 0.0);
  (void)c.cache->attention(c.seq, 0, c.q);
  const auto attention = labels(profiler.collect());
  // The fused shader is attention_vidkv, or attention_vidkv_sg8 on subgroup-of-8 CPU devices.
  EXPECT_TRUE(attention.count("attention_vidkv") || attention.count("attention_vidkv_sg8"));
  // The reduction likewise: attention_reduce, or attention_reduce_sg8.
  EXPECT_TRUE(attention.count("attention_reduce") || attention.count("attention_reduce_sg8"));
  EXPECT_FALSE(attention.count("quantize_grouped"));  // collect() hands each event out once
  EXPECT_TRUE(profiler.collect().empty());
  EXPECT_EQ(profiler.dropped(), 0u);
}

TEST_F(RuntimeProfiler, RecordsNothingWhenDetached) {
  SmallCache c(ctx, tools::test_seed());
  {
    rt::Profiler first(ctx);
    {
      rt::Profiler second(ctx);  // replaces the first
      EXPECT_EQ(ctx->profiler(), &second);
    }
    EXPECT_EQ(ctx->profiler(), nullptr);  // the second detached itself; the first stays detached
    c.prefill();
    EXPECT_TRUE(first.collect().empty());
  }
  EXPECT_EQ(ctx->profiler(), nullptr);
  (void)c.cache->attention(c.seq, 0, c.q);
  rt::Profiler later(ctx);
  EXPECT_TRUE(later.collect().empty());
}

TEST_F(RuntimeProfiler, CountsWhatItCannotHoldOrWasNeverRun) {
  SmallCache c(ctx, tools::test_seed());
  rt::Profiler profiler(ctx, 2);
  c.prefill();
  const auto events = profiler.collect();
  EXPECT_EQ(events.size(), 2u);
  const uint64_t full = profiler.dropped();
  EXPECT_GT(full, 0u);

  // Timestamps recorded into a command buffer that is never submitted: collect() must neither
  // wait for them nor report them.
  VkCommandPoolCreateInfo pi{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
  pi.queueFamilyIndex = ctx->queue_family();
  VkCommandPool pool = VK_NULL_HANDLE;
  ASSERT_EQ(vkCreateCommandPool(ctx->device(), &pi, nullptr, &pool), VK_SUCCESS);
  VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  ai.commandPool = pool;
  ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  ai.commandBufferCount = 1;
  VkCommandBuffer cmd = VK_NULL_HANDLE;
  ASSERT_EQ(vkAllocateCommandBuffers(ctx->device(), &ai, &cmd), VK_SUCCESS);
  VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  ASSERT_EQ(vkBeginCommandBuffer(cmd, &bi), VK_SUCCESS);
  const uint32_t slot = profiler.begin(cmd, "never run");
  ASSERT_NE(slot, rt::Profiler::kNoSlot);
  profiler.end(cmd, slot);
  ASSERT_EQ(vkEndCommandBuffer(cmd), VK_SUCCESS);
  EXPECT_TRUE(profiler.collect().empty());
  EXPECT_EQ(profiler.dropped(), full + 1);
  vkDestroyCommandPool(ctx->device(), pool, nullptr);
  EXPECT_THROW(rt::Profiler(ctx, 0), Error);
}

}  // namespace
}  // namespace vidkv::test
