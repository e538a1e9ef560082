// GpuAttention::record_batch (many sequences' layers in one step, one reduction over all of them)
// on both shader paths (the subgroup-of-8 one lavapipe takes, the portable one GPUs take): every
// layer's output equals record_vidkv's for that layer alone within 1e-5 relative, and the float64
// reference over the exactly decoded layer within 1e-3. The layers of a batch differ: segments
// and residual, segments only, residual only (the fp16 pass), several splits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "attention_test_data.hpp"
#include "vidkv/gpu_attention.hpp"
#include "vidkv/ternary_pack.hpp"
#include "vulkan_fixture.hpp"

namespace vidkv::test {
namespace {

struct Segment {
  QuantizedKeys keys;
  QuantizedTensor values;
  std::vector<uint8_t> trits;
};

struct BatchCase {
  const char* name;
  KeySpec keys;
  QuantSpec values;
};

// One layer: `segments` token counts quantized in order (the first chooses the channels), then a
// residual of `residual` fp16 tokens.
struct LayerData {
  std::vector<Segment> segments;
  std::vector<uint16_t> rk, rv;
  uint32_t residual = 0;
  GpuAttention::HostLayer host() const {
    GpuAttention::HostLayer l;
    for (const Segment& s : segments) l.segments.push_back({&s.keys, &s.values, s.trits.empty() ? nullptr : &s.trits});
    l.residual_keys = rk;
    l.residual_values = rv;
    l.residual_tokens = residual;
    return l;
  }
};

LayerData make_layer(const BatchCase& c, const std::vector<uint32_t>& segments, uint32_t residual, uint32_t H,
                     uint32_t D, uint64_t seed) {
  uint32_t total = residual;
  for (uint32_t t : segments) total += t;
  const KvData kv = random_kv(H, total, D, seed);
  LayerData l;
  uint32_t at = 0;
  for (uint32_t t : segments) {
    const TensorShape shape{H, t, D};
    Segment s;
    s.keys = quantize_key_slice(kv, at, t, H, D, c.keys,
                                l.segments.empty() ? std::vector<ChannelSplit>{} : l.segments[0].keys.splits);
    const auto v = token_slice(kv.values, at, t, H, D);
    s.values = reference::quantize(c.values, shape, v.data(), TensorLayout::thd(shape));
    if (c.values.bits == QuantBits::b1_58) s.trits = reference::pack_trits(s.values);
    l.segments.push_back(std::move(s));
    at += t;
  }
  l.rk = token_slice(kv.keys, at, residual, H, D);
  l.rv = token_slice(kv.values, at, residual, H, D);
  l.residual = residual;
  return l;
}

// The batch's host layers and a realistic query per layer, side by side.
void batch_inputs(const std::vector<LayerData>& data, const AttentionGeometry& g, uint64_t seed,
                  std::vector<GpuAttention::HostLayer>& layers, std::vector<float>& q) {
  for (size_t i = 0; i < data.size(); ++i) {
    layers.push_back(data[i].host());
    const auto qi = realistic_query(data[i].rk, data[i].residual, g.kv_heads, g.q_heads, g.dim, seed + 10 + i);
    q.insert(q.end(), qi.begin(), qi.end());
  }
}

double max_relative(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::abs(double(a[i]) - b[i]) / std::max(1e-3, std::abs(double(b[i]))));
  }
  return worst;
}

using GpuAttentionBatch = VulkanTest;

TEST_F(GpuAttentionBatch, EqualsEachLayerAloneOnBothPaths) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  KeySpec layer_scope;
  layer_scope.scope = ChannelScope::layer;
  KeySpec two_bit;
  two_bit.nbits = 2.0;
  const BatchCase cases[] = {{"k1.5-v1.58", KeySpec{}, {QuantBits::b1_58, QuantAxis::channel, 32}},
                             {"k2-kivi", two_bit, {QuantBits::b2, QuantAxis::token, 32}},
                             {"k1.5layer-v2", layer_scope, {QuantBits::b2, QuantAxis::channel, 32}}};
  const uint32_t H = 2, ratio = 4, D = 128;
  const AttentionGeometry g{H, H * ratio, D};
  for (const BatchCase& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<LayerData> data;
    data.push_back(make_layer(c, {512, 128}, 45, H, D, seed + 1));
    data.push_back(make_layer(c, {256}, 0, H, D, seed + 2));
    data.push_back(make_layer(c, {}, 20, H, D, seed + 3));  // fp16 residual alone
    data.push_back(make_layer(c, {1024, 128, 128}, 100, H, D, seed + 4));
    std::vector<GpuAttention::HostLayer> layers;
    std::vector<float> q;
    batch_inputs(data, g, seed, layers, q);
    const size_t row = size_t(g.q_heads) * D;
    for (bool portable : {false, true}) {
      SCOPED_TRACE(portable ? "portable" : "default path");
      GpuAttention gpu(ctx);
      gpu.set_portable(portable);
      if (portable) gpu.set_split_tokens(256);  // several splits per segment
      const std::vector<float> batch = gpu.batch_host(g, q, layers);
      ASSERT_EQ(batch.size(), q.size());
      for (size_t i = 0; i < data.size(); ++i) {
        SCOPED_TRACE("layer " + std::to_string(i));
        const std::vector<float> qi(q.begin() + i * row, q.begin() + (i + 1) * row);
        const std::vector<float> got(batch.begin() + i * row, batch.begin() + (i + 1) * row);
        const std::vector<float> alone = data[i].segments.empty()
                                             ? gpu.fp16_host(g, qi, data[i].rk, data[i].rv, data[i].residual)
                                             : gpu.vidkv_host(g, qi, layers[i].segments, data[i].rk, data[i].rv,
                                                              data[i].residual);
        EXPECT_LE(max_relative(got, alone), 1e-5);
        EXPECT_EQ(got, alone);  // the same passes and reduction order: in fact bit for bit
        const auto ref = reference::attention_layer(qi, g.q_heads, layers[i].segments, data[i].rk, data[i].rv,
                                                    data[i].residual, H, D);
        EXPECT_LT(attention_error(got, ref, D), 1e-3);
      }
    }
  }
}

// One query transform serves a batch whose layers share their keys' layout; layers of different
// layouts (not one cache's) are transformed one by one. Both equal each layer alone.
TEST_F(GpuAttentionBatch, LayersOfDifferentKeyLayoutsInOneBatch) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  KeySpec layer_scope;
  layer_scope.scope = ChannelScope::layer;
  const BatchCase head{"k1.5-v1.58", KeySpec{}, {QuantBits::b1_58, QuantAxis::channel, 32}};
  const BatchCase layer{"k1.5layer-v1.58", layer_scope, {QuantBits::b1_58, QuantAxis::channel, 32}};
  const uint32_t H = 2, ratio = 3, D = 64;
  const AttentionGeometry g{H, H * ratio, D};
  const std::vector<LayerData> data = {make_layer(head, {256}, 7, H, D, seed + 1), make_layer(layer, {128, 64}, 0, H, D, seed + 2),
                                       make_layer(head, {}, 9, H, D, seed + 3), make_layer(layer, {64}, 30, H, D, seed + 4)};
  std::vector<GpuAttention::HostLayer> layers;
  std::vector<float> q;
  batch_inputs(data, g, seed, layers, q);
  GpuAttention gpu(ctx);
  const std::vector<float> batch = gpu.batch_host(g, q, layers);
  ASSERT_EQ(batch.size(), q.size());
  const size_t row = size_t(g.q_heads) * D;
  for (size_t i = 0; i < data.size(); ++i) {
    SCOPED_TRACE("layer " + std::to_string(i));
    const std::vector<float> qi(q.begin() + i * row, q.begin() + (i + 1) * row);
    const std::vector<float> got(batch.begin() + i * row, batch.begin() + (i + 1) * row);
    const std::vector<float> alone = data[i].segments.empty()
                                         ? gpu.fp16_host(g, qi, data[i].rk, data[i].rv, data[i].residual)
                                         : gpu.vidkv_host(g, qi, layers[i].segments, data[i].rk, data[i].rv, data[i].residual);
    EXPECT_EQ(got, alone);
  }
}

TEST_F(GpuAttentionBatch, BadBatchesAreClearErrors) {
  GpuAttention gpu(ctx);
  const AttentionGeometry g{2, 8, 64};
  const BatchCase c{"k1.5-v1.58", KeySpec{}, {QuantBits::b1_58, QuantAxis::channel, 32}};
  const LayerData one = make_layer(c, {64}, 3, 2, 64, 1);
  const LayerData empty;
  auto expect = [&](const std::function<void()>& f, const std::string& mentions) {
    try {
      f();
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(mentions), std::string::npos) << e.what();
    }
  };
  expect([&] { gpu.batch_host(g, {}, {}); }, "attention batch of 0 layers");
  expect([&] { gpu.batch_host(g, std::vector<float>(8 * 64), {one.host(), one.host()}); }, "q holds");
  expect([&] { gpu.batch_host(g, std::vector<float>(2 * 8 * 64), {one.host(), empty.host()}); },
         "batch layer 1: the KV cache is empty");
}

}  // namespace
}  // namespace vidkv::test
