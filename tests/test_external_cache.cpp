// The engine path for the whole cache: an engine with its own VkDevice hands it to vidkv, records
// prefill (fp16 on one layer, fp32 on another), appends across a residual flush and attention into
// its own command buffer with its own buffers, submits, and gets what a cache of vidkv's own
// device computes synchronously (bit for bit: same driver, same shaders), which is itself within
// 1e-3 of the float64 reference over the cache's contents.
#include <gtest/gtest.h>
#include <vulkan/vulkan.h>

#include <cstring>
#include <vector>

#include "cache_test_helpers.hpp"
#include "engine_fixture.hpp"
#include "vidkv/fp16.hpp"
#include "vidkv/runtime/context.hpp"
#include "vidkv/vidkv.h"

namespace vidkv::test {
namespace {

TEST(ExternalDevice, RecordsCachePrefillAppendAndAttention) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const uint32_t H = 2, D = 128, ratio = 4, T = 100, appends = 40;
  const CacheGeometry g{2, H, H * ratio, D};
  CacheSettings settings = preset("k1.5-v1.58");
  settings.residual_length = 32;  // a flush after 28 of the appends (100 = 3 groups + 4)
  const KvData kv = random_kv(H, T + appends, D, seed);
  const auto q = realistic_query(kv.keys, T, H, g.q_heads, D, seed + 1);
  const uint64_t row = uint64_t(H) * D * 2;
  std::vector<float> keys32(size_t(T) * H * D), values32(keys32.size());
  for (size_t i = 0; i < keys32.size(); ++i) {
    keys32[i] = fp16::to_float(kv.keys[i]);
    values32[i] = fp16::to_float(kv.values[i]);
  }

  std::vector<float> got0(q.size()), got1(q.size());
  uint32_t tokens0 = 0, tokens1 = 0;
  Engine engine;
  ASSERT_NE(engine.device, VK_NULL_HANDLE);
  {
    rt::ExternalDevice external{vkGetInstanceProcAddr, engine.instance, engine.physical, engine.device,
                                engine.family, engine.queue};
    auto context = rt::Context::wrap(external);
    Cache cache(context, g, settings, 512);
    const uint32_t s = cache.create_sequence();
    auto& kin = engine.make_buffer(kv.keys.size() * 2);
    auto& vin = engine.make_buffer(kv.values.size() * 2);
    auto& k32 = engine.make_buffer(keys32.size() * 4);
    auto& v32 = engine.make_buffer(values32.size() * 4);
    auto& qin = engine.make_buffer(q.size() * 4);
    auto& out0 = engine.make_buffer(q.size() * 4);
    auto& out1 = engine.make_buffer(q.size() * 4);
    std::memcpy(kin.mapped, kv.keys.data(), kv.keys.size() * 2);
    std::memcpy(vin.mapped, kv.values.data(), kv.values.size() * 2);
    std::memcpy(k32.mapped, keys32.data(), keys32.size() * 4);
    std::memcpy(v32.mapped, values32.data(), values32.size() * 4);
    std::memcpy(qin.mapped, q.data(), q.size() * 4);

    EngineCommands commands(engine);
    commands.begin();
    cache.record_prefill(commands.cmd, s, 0, {kin.buffer, 0, T * row}, {vin.buffer, 0, T * row}, ElementType::f16, T);
    cache.record_prefill(commands.cmd, s, 1, view_of(k32), view_of(v32), ElementType::f32, T);
    for (uint32_t t = T; t < T + appends; ++t) {
      cache.record_append(commands.cmd, s, 0, {kin.buffer, t * row, row}, {vin.buffer, t * row, row});
    }
    cache.record_attention(commands.cmd, s, 0, view_of(qin), view_of(out0));
    cache.record_attention(commands.cmd, s, 1, view_of(qin), view_of(out1));
    commands.submit_and_wait();
    cache.release_retired();
    std::memcpy(got0.data(), out0.mapped, q.size() * 4);
    std::memcpy(got1.data(), out1.mapped, q.size() * 4);
    tokens0 = cache.tokens(s, 0);
    tokens1 = cache.tokens(s, 1);
    EXPECT_EQ(cache.segment_count(s, 0), 2u);  // the prefill's groups, then one flush
  }  // vidkv's context goes first; the engine's handles must survive it
  for (const auto& m : engine.messages) ADD_FAILURE() << "validation message: " << m;
  EXPECT_EQ(tokens0, T + appends);
  EXPECT_EQ(tokens1, T);

  // The same work on a cache of vidkv's own device, synchronously.
  auto own = rt::Context::create(rt::ContextOptions::from_environment());
  Cache cache(own, g, settings, 512);
  const uint32_t s = cache.create_sequence();
  cache.prefill(s, 0, token_slice(kv.keys, 0, T, H, D), token_slice(kv.values, 0, T, H, D), T);
  cache.prefill(s, 1, token_slice(kv.keys, 0, T, H, D), token_slice(kv.values, 0, T, H, D), T);
  for (uint32_t t = T; t < T + appends; ++t) {
    cache.append(s, 0, token_slice(kv.keys, t, 1, H, D), token_slice(kv.values, t, 1, H, D));
  }
  EXPECT_EQ(got0, cache.attention(s, 0, q));
  EXPECT_EQ(got1, cache.attention(s, 1, q));
  std::vector<CacheSegmentHost> segments;
  EXPECT_LT(attention_error(got0, reference_over_cache(cache, s, 0, q, segments), D), 1e-3);
}

// The same through the C API: vidkv_context_wrap on the engine's handles, recording with the
// engine's VkBuffers passed as integers.
TEST(ExternalDevice, CApiRecordsIntoTheEnginesCommandBuffer) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const uint32_t H = 2, D = 64, ratio = 4, T = 70;
  const KvData kv = random_kv(H, T + 1, D, seed);
  const auto q = realistic_query(kv.keys, T, H, H * ratio, D, seed + 1);
  const uint64_t row = uint64_t(H) * D * 2;
  std::vector<float> got(q.size());
  Engine engine;
  ASSERT_NE(engine.device, VK_NULL_HANDLE);
  {
    vidkv_external_device e{reinterpret_cast<void*>(vkGetInstanceProcAddr), engine.instance, engine.physical,
                            engine.device, engine.family, engine.queue};
    vidkv_context* ctx = nullptr;
    ASSERT_EQ(vidkv_context_wrap(&e, &ctx), VIDKV_OK) << vidkv_last_error_message();
    vidkv_cache* cache = nullptr;
    ASSERT_EQ(vidkv_cache_create(ctx, 1, H, H * ratio, D, "k1.5-v1.58", 256, &cache), VIDKV_OK);
    uint32_t s = 0;
    ASSERT_EQ(vidkv_sequence_create(cache, &s), VIDKV_OK);
    auto& kin = engine.make_buffer(kv.keys.size() * 2);
    auto& vin = engine.make_buffer(kv.values.size() * 2);
    auto& qin = engine.make_buffer(q.size() * 4);
    auto& out = engine.make_buffer(q.size() * 4);
    std::memcpy(kin.mapped, kv.keys.data(), kv.keys.size() * 2);
    std::memcpy(vin.mapped, kv.values.data(), kv.values.size() * 2);
    std::memcpy(qin.mapped, q.data(), q.size() * 4);
    auto dev = [](const Engine::OwnBuffer& b, uint64_t offset, uint64_t size) {
      return vidkv_device_buffer{uint64_t(reinterpret_cast<uintptr_t>(b.buffer)), offset, size};
    };
    EngineCommands commands(engine);
    commands.begin();
    EXPECT_EQ(vidkv_record_prefill(cache, commands.cmd, s, 0, dev(kin, 0, T * row), dev(vin, 0, T * row), 0, T,
                                   nullptr),
              VIDKV_OK)
        << vidkv_last_error_message();
    EXPECT_EQ(vidkv_record_append(cache, commands.cmd, s, 0, dev(kin, T * row, row), dev(vin, T * row, row)), VIDKV_OK);
    EXPECT_EQ(vidkv_record_attention(cache, commands.cmd, s, 0, dev(qin, 0, q.size() * 4), 0.0f,
                                     dev(out, 0, q.size() * 4)),
              VIDKV_OK);
    // A bad call records nothing and says why.
    EXPECT_EQ(vidkv_record_attention(cache, commands.cmd, s, 0, dev(qin, 0, 8), 0.0f, dev(out, 0, q.size() * 4)),
              VIDKV_ERROR_BUFFER_TOO_SMALL);
    EXPECT_NE(std::string(vidkv_last_error_message()).find("attention q"), std::string::npos);
    // A view running past the memory of its VkBuffer is refused (it would read outside the buffer).
    EXPECT_EQ(vidkv_record_attention(cache, commands.cmd, s, 0, dev(qin, 0, q.size() * 4 + (1u << 20)), 0.0f,
                                     dev(out, 0, q.size() * 4)),
              VIDKV_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(vidkv_last_error_message()).find("runs past the end of its VkBuffer"), std::string::npos)
        << vidkv_last_error_message();
    // The engine submits to the queue it shares with vidkv under vidkv's queue lock.
    ASSERT_EQ(vidkv_lock_queue(ctx), VIDKV_OK);
    commands.submit_and_wait();
    ASSERT_EQ(vidkv_unlock_queue(ctx), VIDKV_OK);
    EXPECT_EQ(vidkv_release_retired(cache), VIDKV_OK);
    std::memcpy(got.data(), out.mapped, q.size() * 4);
    vidkv_cache_destroy(cache);
    vidkv_context_destroy(ctx);
  }
  for (const auto& m : engine.messages) ADD_FAILURE() << "validation message: " << m;
  auto own = rt::Context::create(rt::ContextOptions::from_environment());
  Cache cache(own, {1, H, H * ratio, D}, preset("k1.5-v1.58"), 256);
  const uint32_t s = cache.create_sequence();
  cache.prefill(s, 0, token_slice(kv.keys, 0, T, H, D), token_slice(kv.values, 0, T, H, D), T);
  cache.append(s, 0, token_slice(kv.keys, T, 1, H, D), token_slice(kv.values, T, 1, H, D));
  EXPECT_EQ(got, cache.attention(s, 0, q));
}

}  // namespace
}  // namespace vidkv::test
