// Batched decode (Cache::append_batch / attention_batch and their record forms) against the same
// work done as per-sequence calls on a second cache: appends bit for bit (the caches' contents
// compared byte for byte), attention within 1e-5 relative, and the float64 reference over the
// cache's contents within 1e-3 (attention_test_data.hpp's measure). Sequences start at different
// lengths so that flushes happen at different steps, several in one step, and a first flush that
// chooses its layer's channels. Bad batches: a clear error and nothing changed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

#include "cache_test_helpers.hpp"
#include "vidkv/runtime/buffer.hpp"
#include "vidkv/runtime/commands.hpp"
#include "vulkan_fixture.hpp"

namespace vidkv::test {
namespace {

constexpr uint32_t kLayer = 1;
const CacheGeometry kGeometry{2, 2, 8, 64};
// Prefill lengths (0: none) of the batch's sequences: residuals of 0, 20, 4, 4 and 4 tokens. The
// last three flush in the same step (quantized together); the first two's first flush chooses
// their channels (quantized alone), a few steps apart.
const std::vector<uint32_t> kPrefills = {0, 20, 100, 164, 36};

CacheSettings batch_settings(const char* name) {
  CacheSettings s = preset(name);
  s.residual_length = 64;  // flushes within a short test
  return s;
}

double max_relative(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::abs(double(a[i]) - b[i]) / std::max(1e-3, std::abs(double(b[i]))));
  }
  return worst;
}

// Two caches given the same prefills: `batched` takes the batch calls, `single` the per-sequence ones.
struct TwinCaches {
  TwinCaches(const std::shared_ptr<rt::Context>& ctx, const char* name, uint64_t seed,
             const CacheGeometry& g = kGeometry)
      : batched(ctx, g, batch_settings(name), 1024), single(ctx, g, batch_settings(name), 1024) {
    for (size_t i = 0; i < kPrefills.size(); ++i) {
      const uint32_t a = batched.create_sequence(), b = single.create_sequence();
      EXPECT_EQ(a, b);
      ids.push_back(a);
      if (kPrefills[i] == 0) continue;
      const KvData kv = random_kv(g.kv_heads, kPrefills[i], g.head_dim, seed + i);
      batched.prefill(a, kLayer, kv.keys, kv.values, kPrefills[i]);
      single.prefill(b, kLayer, kv.keys, kv.values, kPrefills[i]);
    }
  }
  Cache batched, single;
  std::vector<uint32_t> ids;
};

uint64_t token_halves(const CacheGeometry& g = kGeometry) { return uint64_t(g.kv_heads) * g.head_dim; }
uint64_t query_floats(const CacheGeometry& g = kGeometry) { return uint64_t(g.q_heads) * g.head_dim; }

// A preset at kGeometry's GQA ratio (4) or another.
struct BatchCase {
  const char* preset;
  uint32_t ratio = kGeometry.q_heads / kGeometry.kv_heads;
};

class CacheBatch : public VulkanTest, public ::testing::WithParamInterface<BatchCase> {};

TEST_P(CacheBatch, EqualsPerSequenceCalls) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const char* name = GetParam().preset;
  const CacheGeometry geo{kGeometry.layers, kGeometry.kv_heads, kGeometry.kv_heads * GetParam().ratio,
                          kGeometry.head_dim};
  TwinCaches c(ctx, name, seed, geo);
  std::mt19937_64 rng(seed + 99);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  // 80 steps in varying order, some leaving the first two sequences out: each of the last three
  // flushes once (together), the first two once each.
  for (uint32_t step = 0; step < 80; ++step) {
    std::vector<uint32_t> batch = c.ids;
    std::shuffle(batch.begin(), batch.end(), rng);
    if (step % 7 == 3) batch = {c.ids[4], c.ids[2], c.ids[3]};
    const KvData kv = random_kv(geo.kv_heads, uint32_t(batch.size()), geo.head_dim, seed + 1000 + step);
    c.batched.append_batch(kLayer, batch, kv.keys, kv.values);
    for (size_t i = 0; i < batch.size(); ++i) {
      const auto from = kv.keys.begin() + i * token_halves(geo), vfrom = kv.values.begin() + i * token_halves(geo);
      c.single.append(batch[i], kLayer, std::vector<uint16_t>(from, from + token_halves(geo)),
                      std::vector<uint16_t>(vfrom, vfrom + token_halves(geo)));
    }
    std::vector<float> q(batch.size() * query_floats(geo));
    for (float& x : q) x = normal(rng);
    const float scale = step % 2 ? 0.0f : 0.09f;
    const std::vector<float> got = c.batched.attention_batch(kLayer, batch, q, scale);
    ASSERT_EQ(got.size(), q.size());
    for (size_t i = 0; i < batch.size(); ++i) {
      const std::vector<float> qi(q.begin() + i * query_floats(geo), q.begin() + (i + 1) * query_floats(geo));
      const std::vector<float> want = c.single.attention(batch[i], kLayer, qi, scale);
      const std::vector<float> one(got.begin() + i * query_floats(geo), got.begin() + (i + 1) * query_floats(geo));
      ASSERT_LE(max_relative(one, want), 1e-5) << "step " << step << " entry " << i << " sequence " << batch[i];
      // The same passes and reduction order as the call alone: in fact bit for bit.
      EXPECT_EQ(one, want) << "step " << step << " entry " << i;
    }
  }
  EXPECT_TRUE(snapshot(c.batched, {1, 2, 3, 4, 5}) == snapshot(c.single, {1, 2, 3, 4, 5}));
  EXPECT_TRUE(same_stats(c.batched.stats(), c.single.stats()));
  if (std::string(name) != "fp16") {
    EXPECT_EQ(c.batched.stats().segments, 3u + 5u);
  }
  // The float64 reference over what the batched cache holds.
  if (std::string(name) != "fp16") {
    for (uint32_t id : c.ids) {
      const auto q = realistic_query(std::vector<uint16_t>(token_halves(geo) * 64, 0), 64, geo.kv_heads,
                                     geo.q_heads, geo.head_dim, seed + id);
      std::vector<CacheSegmentHost> segments;
      const auto ref = reference_over_cache(c.batched, id, kLayer, q, segments);
      const auto out = c.batched.attention_batch(kLayer, {id}, q);
      EXPECT_LT(attention_error(out, ref, geo.head_dim), 1e-3) << "sequence " << id;
    }
  }
}

// GQA 12 (two workgroups of 6 query heads per KV head) for fp16 and a quantized preset.
INSTANTIATE_TEST_SUITE_P(Presets, CacheBatch,
                         ::testing::Values(BatchCase{"fp16"}, BatchCase{"2bit"}, BatchCase{"kivi"}, BatchCase{"k1.5-v2"},
                                           BatchCase{"k1.5-v1.58"}, BatchCase{"fp16", 12}, BatchCase{"k1.5-v1.58", 12}),
                         [](const auto& info) {
                           std::string n = info.param.preset;
                           for (char& ch : n)
                             if (ch == '.' || ch == '-') ch = '_';
                           return info.param.ratio == 4 ? n : n + "_r" + std::to_string(info.param.ratio);
                         });

using CacheBatchDevice = VulkanTest;

// Device buffers: the synchronous batch forms and the recorded ones (8 steps per command buffer, a
// joint flush among them) against per-sequence host calls.
TEST_F(CacheBatchDevice, RecordedAndDeviceFormsEqualPerSequenceCalls) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  TwinCaches c(ctx, "k1.5-v1.58", seed);
  Cache recorded(ctx, kGeometry, batch_settings("k1.5-v1.58"), 1024);
  for (size_t i = 0; i < kPrefills.size(); ++i) {
    const uint32_t id = recorded.create_sequence();
    if (kPrefills[i] == 0) continue;
    const KvData kv = random_kv(kGeometry.kv_heads, kPrefills[i], kGeometry.head_dim, seed + i);
    recorded.prefill(id, kLayer, kv.keys, kv.values, kPrefills[i]);
  }
  // 64 steps: the last three sequences flush together at the 60th (recorded: in the 8th buffer).
  const uint32_t n = uint32_t(c.ids.size()), steps = 64;
  const KvData kv = random_kv(kGeometry.kv_heads, n * steps, kGeometry.head_dim, seed + 77);
  const uint64_t row = token_halves() * 2, step_bytes = n * row, qbytes = n * query_floats() * 4;
  rt::Buffer kin(ctx, step_bytes * steps), vin(ctx, step_bytes * steps);
  kin.upload(kv.keys.data(), step_bytes * steps);
  vin.upload(kv.values.data(), step_bytes * steps);
  std::vector<float> q(n * query_floats() * steps);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& x : q) x = normal(rng);
  rt::Buffer qin(ctx, qbytes * steps), out_sync(ctx, qbytes * steps), out_rec(ctx, qbytes * steps);
  qin.upload(q.data(), qbytes * steps);
  out_sync.fill(0xff);
  out_rec.fill(0xff);

  for (uint32_t s = 0; s < steps; ++s) {
    c.batched.append_batch(kLayer, c.ids, kin.view(s * step_bytes, step_bytes), vin.view(s * step_bytes, step_bytes));
    c.batched.attention_batch(kLayer, c.ids, qin.view(s * qbytes, qbytes), out_sync.view(s * qbytes, qbytes));
  }
  rt::CommandRunner caller(ctx);
  for (uint32_t first = 0; first < steps; first += 8) {
    caller.run([&](VkCommandBuffer cmd) {
      rt::transfer_to_compute_barrier(cmd);  // the uploads, as an engine's writes
      for (uint32_t s = first; s < first + 8; ++s) {
        recorded.record_append_batch(cmd, kLayer, c.ids, kin.view(s * step_bytes, step_bytes),
                                     vin.view(s * step_bytes, step_bytes));
        recorded.record_attention_batch(cmd, kLayer, c.ids, qin.view(s * qbytes, qbytes),
                                        out_rec.view(s * qbytes, qbytes));
      }
    });
    recorded.release_retired();
  }
  std::vector<float> got_sync(q.size()), got_rec(q.size());
  out_sync.download(got_sync.data(), qbytes * steps);
  out_rec.download(got_rec.data(), qbytes * steps);
  for (uint32_t s = 0; s < steps; ++s) {
    for (uint32_t i = 0; i < n; ++i) {
      const size_t at = (size_t(s) * n + i) * query_floats();
      const auto tok = [&](const std::vector<uint16_t>& all) {
        const auto from = all.begin() + (size_t(s) * n + i) * token_halves();
        return std::vector<uint16_t>(from, from + token_halves());
      };
      c.single.append(c.ids[i], kLayer, tok(kv.keys), tok(kv.values));
      const auto want = c.single.attention(c.ids[i], kLayer, std::vector<float>(q.begin() + at, q.begin() + at + query_floats()));
      const std::vector<float> sync(got_sync.begin() + at, got_sync.begin() + at + query_floats());
      const std::vector<float> rec(got_rec.begin() + at, got_rec.begin() + at + query_floats());
      ASSERT_LE(max_relative(sync, want), 1e-5) << "step " << s << " entry " << i;
      ASSERT_LE(max_relative(rec, want), 1e-5) << "step " << s << " entry " << i;
    }
  }
  EXPECT_TRUE(snapshot(c.batched, {1, 2, 3, 4, 5}) == snapshot(c.single, {1, 2, 3, 4, 5}));
  EXPECT_TRUE(snapshot(recorded, {1, 2, 3, 4, 5}) == snapshot(c.single, {1, 2, 3, 4, 5}));
  EXPECT_EQ(recorded.stats().nonfinite_inputs, 0u);
}

// A layer with per-head policies (a window head beside a preset head) takes the batch's sequences
// one after another: the same results as per-sequence calls, its other layer batched as usual.
TEST_F(CacheBatchDevice, LayersWithHeadPoliciesEqualPerSequenceCalls) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  CacheSettings s = batch_settings("k1.5-v1.58");
  s.head_policies.heads = {HeadPolicy::vidkv, HeadPolicy::vidkv, HeadPolicy::vidkv, HeadPolicy::window};
  s.head_policies.sink = 4;
  s.head_policies.recent = 16;
  Cache batched(ctx, kGeometry, s, 1024), single(ctx, kGeometry, s, 1024);
  std::vector<uint32_t> ids;
  for (uint32_t i = 0; i < 3; ++i) {
    ids.push_back(batched.create_sequence());
    single.create_sequence();
    const KvData kv = random_kv(kGeometry.kv_heads, 40 + 30 * i, kGeometry.head_dim, seed + i);
    for (uint32_t layer : {0u, 1u}) {
      batched.prefill(ids[i], layer, kv.keys, kv.values, 40 + 30 * i);
      single.prefill(ids[i], layer, kv.keys, kv.values, 40 + 30 * i);
    }
  }
  for (uint32_t step = 0; step < 30; ++step) {
    const KvData kv = random_kv(kGeometry.kv_heads, 3, kGeometry.head_dim, seed + 100 + step);
    const std::vector<float> q(3 * query_floats(), 0.01f * float(step % 5) - 0.02f);
    for (uint32_t layer : {0u, 1u}) {
      batched.append_batch(layer, ids, kv.keys, kv.values);
      const std::vector<float> got = batched.attention_batch(layer, ids, q);
      for (size_t i = 0; i < ids.size(); ++i) {
        const auto tok = [&](const std::vector<uint16_t>& all) {
          return std::vector<uint16_t>(all.begin() + i * token_halves(), all.begin() + (i + 1) * token_halves());
        };
        single.append(ids[i], layer, tok(kv.keys), tok(kv.values));
        const std::vector<float> qi(q.begin() + i * query_floats(), q.begin() + (i + 1) * query_floats());
        const std::vector<float> want = single.attention(ids[i], layer, qi);
        const std::vector<float> one(got.begin() + i * query_floats(), got.begin() + (i + 1) * query_floats());
        ASSERT_LE(max_relative(one, want), 1e-5) << "step " << step << " layer " << layer << " entry " << i;
      }
    }
  }
  for (uint32_t id : ids) {
    for (uint32_t layer : {0u, 1u}) {
      std::vector<uint16_t> bk, bv, sk, sv;
      batched.dequantize(id, layer, bk, bv);
      single.dequantize(id, layer, sk, sv);
      EXPECT_EQ(bk, sk) << "sequence " << id << " layer " << layer;
      EXPECT_EQ(bv, sv) << "sequence " << id << " layer " << layer;
    }
  }
  EXPECT_TRUE(snapshot(batched, {1, 2, 3}) == snapshot(single, {1, 2, 3}));
}

// Every refused batch names its problem and leaves the cache as it was.
TEST_F(CacheBatchDevice, BadBatchesChangeNothing) {
  const uint64_t seed = tools::test_seed();
  TwinCaches c(ctx, "k1.5-v1.58", seed);
  Cache& cache = c.batched;
  const std::vector<uint8_t> before = snapshot(cache, {1, 2, 3, 4, 5});
  const CacheStats stats = cache.stats();
  const KvData kv = random_kv(kGeometry.kv_heads, 3, kGeometry.head_dim, seed);
  const std::vector<float> q(3 * query_floats(), 0.5f);
  expect_error([&] { cache.append_batch(kLayer, {2, 3, 2}, kv.keys, kv.values); }, "sequence 2 appears twice");
  expect_error([&] { cache.attention_batch(kLayer, {4, 4, 2}, q); }, "sequence 4 appears twice");
  expect_error([&] { cache.append_batch(kLayer, {2, 99, 3}, kv.keys, kv.values); }, "unknown sequence 99");
  expect_error([&] { cache.attention_batch(kLayer, {2, 3, 99}, q); }, "unknown sequence 99");
  expect_error([&] { cache.append_batch(kLayer, {}, std::vector<uint16_t>{}, std::vector<uint16_t>{}); }, "append_batch of 0 sequences");
  expect_error([&] { cache.attention_batch(kLayer, {}, std::vector<float>{}); }, "attention_batch of 0 sequences");
  expect_error([&] { cache.append_batch(7, {2, 3, 4}, kv.keys, kv.values); }, "layer 7");
  expect_error([&] { cache.append_batch(kLayer, {2, 3}, kv.keys, kv.values); }, "append_batch keys holds");
  expect_error([&] { cache.attention_batch(kLayer, {2, 3}, q); }, "attention_batch q holds");
  // Sequence 1 holds no token in layer 0: its attention is refused, the others' not run.
  expect_error([&] { cache.attention_batch(0, {1, 2, 3}, q); }, "empty sequence");
  expect_error([&] { cache.attention_batch(kLayer, {2, 3, 4}, q, -1.0f); }, "scale");
  // A NaN in entry 2 (its key, head 1, channel 5): named by entry; no entry is written.
  KvData bad = kv;
  bad.keys[2 * token_halves() + kGeometry.head_dim + 5] = 0x7e00;
  expect_error([&] { cache.append_batch(kLayer, {2, 3, 4}, bad.keys, bad.values); }, "at token 2, head 1, channel 5");
  // Device views too small for the count.
  rt::Buffer small(ctx, 2 * token_halves() * 2);
  expect_error([&] { cache.append_batch(kLayer, {2, 3, 4}, small.view(), small.view()); }, "append_batch keys view");
  rt::CommandRunner runner(ctx);
  runner.run([&](VkCommandBuffer cmd) {
    expect_error([&] { cache.record_append_batch(cmd, kLayer, {3, 3}, small.view(), small.view()); }, "twice");
    expect_error([&] { cache.record_attention_batch(cmd, kLayer, {2, 3, 4}, small.view(), small.view()); },
                 "attention_batch q view");
  });
  EXPECT_TRUE(snapshot(cache, {1, 2, 3, 4, 5}) == before);
  EXPECT_TRUE(same_stats(cache.stats(), stats));
  // A full sequence refuses the whole batch.
  Cache tiny(ctx, kGeometry, batch_settings("2bit"), 4);
  const uint32_t a = tiny.create_sequence(), b = tiny.create_sequence();
  const KvData four = random_kv(kGeometry.kv_heads, 4, kGeometry.head_dim, seed);
  tiny.prefill(a, kLayer, four.keys, four.values, 4);
  const std::vector<uint8_t> tiny_before = snapshot(tiny, {a, b});
  const KvData two = random_kv(kGeometry.kv_heads, 2, kGeometry.head_dim, seed);
  expect_error([&] { tiny.append_batch(kLayer, {b, a}, two.keys, two.values); }, "beyond max_tokens");
  EXPECT_TRUE(snapshot(tiny, {a, b}) == tiny_before);
}

}  // namespace
}  // namespace vidkv::test
