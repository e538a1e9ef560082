// The C API round trip, written in C (test_c_api.c), run under gtest with validation on.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

#include "vidkv/vidkv.h"

#include "vulkan_fixture.hpp"

extern "C" int vidkv_test_c_api_round_trip(char* message, size_t size);
extern "C" int vidkv_test_c_api_fork_truncate(char* message, size_t size);

namespace vidkv::test {
namespace {

TEST(CApi, RoundTripFromC) {
  // The C side creates its own context from the environment: ask for validation there too.
  setenv("VIDKV_VALIDATION", "1", 0);
  char message[512];
  const int line = vidkv_test_c_api_round_trip(message, sizeof message);
  EXPECT_EQ(line, 0) << "test_c_api.c line " << line << ": " << message;
}

TEST(CApi, ForkAndTruncateFromC) {
  setenv("VIDKV_VALIDATION", "1", 0);
  char message[512];
  const int line = vidkv_test_c_api_fork_truncate(message, sizeof message);
  EXPECT_EQ(line, 0) << "test_c_api.c line " << line << ": " << message;
}

// vidkv_lock_queue holds the lock vidkv's own submissions take: a synchronous call on another
// thread waits until the engine unlocks (the engine's submissions and vidkv's never overlap).
TEST(CApi, QueueLockExcludesVidkvSubmissions) {
  setenv("VIDKV_VALIDATION", "1", 0);
  vidkv_context* ctx = nullptr;
  ASSERT_EQ(vidkv_context_create(nullptr, &ctx), VIDKV_OK) << vidkv_last_error_message();
  vidkv_cache* cache = nullptr;
  ASSERT_EQ(vidkv_cache_create(ctx, 1, 1, 1, 64, "fp16", 64, &cache), VIDKV_OK) << vidkv_last_error_message();
  uint32_t s = 0;
  ASSERT_EQ(vidkv_sequence_create(cache, &s), VIDKV_OK);
  const std::vector<uint16_t> kv(64, 0x3c00);  // one token of ones
  ASSERT_EQ(vidkv_prefill(cache, s, 0, kv.data(), kv.data(), 1), VIDKV_OK);

  EXPECT_EQ(vidkv_unlock_queue(ctx), VIDKV_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(vidkv_last_error_message()).find("not locked"), std::string::npos);
  ASSERT_EQ(vidkv_lock_queue(ctx), VIDKV_OK);
  std::atomic<bool> done{false};
  vidkv_status status = VIDKV_ERROR_INTERNAL;
  std::vector<float> q(64, 1.0f), out(64, 0.0f);
  std::thread other([&] {
    status = vidkv_attention(cache, s, 0, q.data(), 0.0f, out.data());
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(done.load()) << "vidkv submitted while the engine held the queue lock";
  EXPECT_EQ(vidkv_unlock_queue(ctx), VIDKV_OK);
  other.join();
  EXPECT_TRUE(done.load());
  EXPECT_EQ(status, VIDKV_OK);
  EXPECT_FLOAT_EQ(out[0], 1.0f);  // one token: the output is its value
  vidkv_cache_destroy(cache);
  vidkv_context_destroy(ctx);
}

}  // namespace
}  // namespace vidkv::test
