// Thread safety as cache.hpp states it: separate Cache objects used from separate threads at the
// same time, on one shared Context (and on contexts of their own), give exactly the results each
// gives alone. Every thread creates its cache (pipelines, FFT plans) and runs prefill, appends
// across a residual flush and attention concurrently with the others; the validation layer, on
// for the shared context, reports any unsynchronized use of the queue or other objects.
#include <gtest/gtest.h>

#include <latch>
#include <string>
#include <thread>

#include "cache_test_helpers.hpp"
#include "common/random_data.hpp"
#include "vulkan_fixture.hpp"

namespace vidkv::test {
namespace {

struct Script {
  const char* preset;
  uint64_t seed;
};

// Everything the script's cache returns: attention outputs at several points, then the decoded
// K/V of both layers.
struct Results {
  std::vector<std::vector<float>> attention;
  std::vector<std::vector<uint16_t>> decoded;
};

Results run_script(const std::shared_ptr<rt::Context>& ctx, const Script& s) {
  const CacheGeometry g{2, 2, 4, 64};
  CacheSettings settings = preset(s.preset);
  settings.residual_length = 64;  // a flush within a few dozen appends
  settings.name = settings_name(settings);
  Cache cache(ctx, g, settings, 256);
  const uint32_t tokens = 160;
  const KvData kv = random_kv(g.kv_heads, tokens, g.head_dim, s.seed);
  const auto q = realistic_query(kv.keys, tokens, g.kv_heads, g.q_heads, g.head_dim, s.seed + 1);
  const uint32_t seq = cache.create_sequence();
  Results r;
  cache.prefill(seq, 0, token_slice(kv.keys, 0, 70, g.kv_heads, g.head_dim),
                token_slice(kv.values, 0, 70, g.kv_heads, g.head_dim), 70);
  cache.prefill(seq, 1, token_slice(kv.keys, 0, 33, g.kv_heads, g.head_dim),
                token_slice(kv.values, 0, 33, g.kv_heads, g.head_dim), 33);
  for (uint32_t t = 70; t < 140; ++t) {
    cache.append(seq, 0, token_slice(kv.keys, t, 1, g.kv_heads, g.head_dim),
                 token_slice(kv.values, t, 1, g.kv_heads, g.head_dim));
    if (t % 2 == 0) {
      cache.append(seq, 1, token_slice(kv.keys, t, 1, g.kv_heads, g.head_dim),
                   token_slice(kv.values, t, 1, g.kv_heads, g.head_dim));
    }
    if (t % 10 == 0) {
      for (uint32_t l = 0; l < 2; ++l) r.attention.push_back(cache.attention(seq, l, q));
    }
  }
  for (uint32_t l = 0; l < 2; ++l) {
    std::vector<uint16_t> k, v;
    cache.dequantize(seq, l, k, v);
    r.decoded.push_back(std::move(k));
    r.decoded.push_back(std::move(v));
  }
  return r;
}

// Runs every script on its own thread, all released at once; `context_for(i)` is its context.
template <typename ContextFor>
std::vector<Results> run_concurrently(const std::vector<Script>& scripts, ContextFor context_for,
                                      std::vector<std::string>& errors) {
  std::vector<Results> results(scripts.size());
  errors.assign(scripts.size(), "");
  std::latch start(ptrdiff_t(scripts.size()));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < scripts.size(); ++i) {
    threads.emplace_back([&, i] {
      try {
        const std::shared_ptr<rt::Context> ctx = context_for(i);
        start.arrive_and_wait();
        results[i] = run_script(ctx, scripts[i]);
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  return results;
}

void expect_same(const Results& alone, const Results& together, const Script& s) {
  SCOPED_TRACE(std::string(s.preset) + " seed " + std::to_string(s.seed));
  ASSERT_EQ(alone.attention.size(), together.attention.size());
  // The same shaders over the same data on the same device: bit-identical, not merely close.
  for (size_t i = 0; i < alone.attention.size(); ++i) {
    EXPECT_EQ(alone.attention[i], together.attention[i]) << "attention output " << i;
  }
  EXPECT_EQ(alone.decoded, together.decoded);
}

std::vector<Script> scripts(uint64_t seed) {
  // Two FFT-key caches make their plans at the same time; the others' pipelines meanwhile.
  return {{"k1.5-v1.58", seed}, {"k1.5-v2", seed + 1}, {"2bit", seed + 2}, {"kivi", seed + 3}};
}

using CacheThreads = VulkanTest;

TEST_F(CacheThreads, SeparateCachesOnOneContext) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const std::vector<Script> all = scripts(seed);
  std::vector<Results> alone;
  for (const Script& s : all) alone.push_back(run_script(ctx, s));
  // The attention outputs are real results, not empty or constant vectors.
  ASSERT_FALSE(alone[0].attention.empty());
  EXPECT_NE(alone[0].attention.front(), alone[0].attention.back());

  std::vector<std::string> errors;
  const auto together = run_concurrently(all, [&](size_t) { return ctx; }, errors);
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(errors[i], "") << all[i].preset;
    if (errors[i].empty()) expect_same(alone[i], together[i], all[i]);
  }
}

TEST_F(CacheThreads, SeparateCachesOnSeparateContexts) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const std::vector<Script> all{{"k1.5-v1.58", seed}, {"kivi", seed + 1}};
  std::vector<Results> alone;
  for (const Script& s : all) alone.push_back(run_script(ctx, s));
  // A context of its own per thread, validation on like the shared one.
  std::vector<std::shared_ptr<rt::Context>> own;
  for (size_t i = 0; i < all.size(); ++i) {
    rt::ContextOptions options = rt::ContextOptions::from_environment();
    options.validation = true;
    own.push_back(rt::Context::create(options));
  }
  std::vector<std::string> errors;
  const auto together = run_concurrently(all, [&](size_t i) { return own[i]; }, errors);
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(errors[i], "") << all[i].preset;
    if (errors[i].empty()) expect_same(alone[i], together[i], all[i]);
    expect_no_validation_messages(*own[i], 0);
  }
}

}  // namespace
}  // namespace vidkv::test
