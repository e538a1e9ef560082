// Fused decode attention over segments whose values are split by semantic token protection
// (ValueFormat::ternary_stp): protected tokens at 2 bits per channel, the others as trits, and a
// token map. Checked against the float64 reference over the exactly decoded cache
// (reference::decode_segment with the segment's STP split) on fresh random splits, on the
// subgroup-of-8 path (lavapipe's default) and the portable one, outputs poisoned first. Error
// measure (attention_test_data.hpp): per query head max|out - ref| / max|ref|, below 1e-3.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <string>

#include "attention_test_data.hpp"
#include "vidkv/gpu_attention.hpp"
#include "vidkv/stp.hpp"
#include "vulkan_fixture.hpp"

namespace vidkv::test {
namespace {

constexpr uint32_t kGroup = 32;

KeySpec k15(uint32_t group = kGroup) { return KeySpec{1.5, group, ChannelScope::head, FftLayout::half}; }

// `protected_count` positions of 0 .. tokens - 1: spread at random, or one contiguous run.
TokenSplit random_split(uint32_t tokens, uint32_t protected_count, bool clustered, std::mt19937_64& rng,
                        uint32_t group = kGroup) {
  std::vector<uint32_t> all(tokens);
  std::iota(all.begin(), all.end(), 0u);
  std::vector<uint32_t> chosen;
  if (clustered) {
    const uint32_t first = uint32_t(rng() % (tokens - protected_count + 1));
    chosen.assign(all.begin() + first, all.begin() + first + protected_count);
  } else {
    std::shuffle(all.begin(), all.end(), rng);
    chosen.assign(all.begin(), all.begin() + protected_count);
    std::sort(chosen.begin(), chosen.end());
  }
  return reference::split_from_list(chosen, tokens, group);
}

// One quantized segment: keys, and either STP-split values or plain trits (no protected token).
struct StpSegment {
  QuantizedKeys keys;
  StpQuantizedValues stp;
  QuantizedTensor trit_values;
  bool split = false;
  AttentionSegment host() const {
    if (split) return {&keys, nullptr, nullptr, &stp};
    return {&keys, &trit_values, nullptr, nullptr};
  }
};

StpSegment make_segment(const KvData& kv, uint32_t from, uint32_t count, uint32_t heads, uint32_t dim,
                        const std::vector<ChannelSplit>& channels, const TokenSplit* split, uint32_t group = kGroup) {
  const TensorShape shape{heads, count, dim};
  const TensorLayout thd = TensorLayout::thd(shape);
  const auto v = token_slice(kv.values, from, count, heads, dim);
  StpSegment s;
  s.keys = quantize_key_slice(kv, from, count, heads, dim, k15(group), channels);
  s.split = split != nullptr;
  if (s.split) {
    s.stp = reference::quantize_values_stp(*split, group, TernaryScale::lsq, shape, v.data(), thd);
  } else {
    s.trit_values = reference::quantize({QuantBits::b1_58, QuantAxis::channel, group, TernaryScale::lsq}, shape,
                                        v.data(), thd);
  }
  return s;
}

// A segment with 2-bit per-channel values (a format an STP layer cannot hold beside STP).
struct B2Segment {
  QuantizedKeys keys;
  QuantizedTensor values;
};

B2Segment make_b2_segment(const KvData& kv, uint32_t count, uint32_t heads, uint32_t dim,
                          const std::vector<ChannelSplit>& channels) {
  const TensorShape shape{heads, count, dim};
  const auto v = token_slice(kv.values, 0, count, heads, dim);
  return {quantize_key_slice(kv, 0, count, heads, dim, k15(), channels),
          reference::quantize({QuantBits::b2, QuantAxis::channel, kGroup}, shape, v.data(), TensorLayout::thd(shape))};
}

struct StpCase {
  uint32_t kv_heads, ratio, dim, tokens;  // tokens of the STP segment (a multiple of the group)
  uint32_t protected_count;               // n
  bool clustered;                         // protected tokens in one run (else spread at random)
  uint32_t split_tokens;                  // GpuAttention split
  uint32_t group = kGroup;                // key and value group size
};

class GpuAttentionStp : public VulkanTest, public ::testing::WithParamInterface<StpCase> {};

// One STP segment (and a residual of 7 tokens), on both shader paths.
TEST_P(GpuAttentionStp, MatchesReference) {
  const StpCase c = GetParam();
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  std::mt19937_64 rng(seed);
  const uint32_t residual = 7, total = c.tokens + residual;
  const AttentionGeometry g{c.kv_heads, c.kv_heads * c.ratio, c.dim};
  const KvData kv = random_kv(c.kv_heads, total, c.dim, seed);
  const auto q = realistic_query(kv.keys, total, c.kv_heads, g.q_heads, c.dim, seed + 11);
  const TokenSplit split = random_split(c.tokens, c.protected_count, c.clustered, rng, c.group);
  const StpSegment seg = make_segment(kv, 0, c.tokens, c.kv_heads, c.dim, {}, &split, c.group);
  const std::vector<AttentionSegment> host{seg.host()};
  const auto rk = token_slice(kv.keys, c.tokens, residual, c.kv_heads, c.dim);
  const auto rv = token_slice(kv.values, c.tokens, residual, c.kv_heads, c.dim);
  const auto ref = reference::attention_layer(q, g.q_heads, host, rk, rv, residual, c.kv_heads, c.dim);
  for (bool portable : {false, true}) {
    SCOPED_TRACE(portable ? "portable path" : "default path");
    GpuAttention gpu(ctx);
    gpu.set_split_tokens(c.split_tokens);
    gpu.set_portable(portable);
    gpu.set_poison(portable ? 0x00 : 0xff);
    const double error = attention_error(gpu.vidkv_host(g, q, host, rk, rv, residual), ref, c.dim);
    RecordProperty(portable ? "relative_error_portable" : "relative_error", std::to_string(error));
    EXPECT_LT(error, 1e-3);
  }
}

std::vector<StpCase> stp_cases() {
  std::vector<StpCase> cases;
  // n = 0, one group, several groups, all but one group, all: spread and clustered
  for (uint32_t n : {0u, 32u, 96u, 544u, 576u})
    for (bool clustered : {false, true}) cases.push_back({2, 4, 128, 576, n, clustered, 256});
  for (uint32_t ratio : {1u, 4u, 7u})
    for (uint32_t dim : {64u, 128u}) cases.push_back({2, ratio, dim, 640, 128, false, 256});
  cases.push_back({1, 7, 128, 1024, 192, false, 64});    // small splits: edges everywhere
  cases.push_back({1, 4, 128, 512, 224, true, 512});     // one split
  cases.push_back({2, 2, 256, 320, 64, false, 256});
  // GQA beyond 8: head chunks of 5 (one surplus head), 6 and 8
  for (uint32_t ratio : {9u, 12u, 16u}) cases.push_back({2, ratio, 128, 640, 128, false, 256});
  // Groups of 64 and 128: part groups of several 32-token blocks, split edges inside them
  // (splits of 64 and 192), protected runs that start mid-block.
  for (uint32_t group : {64u, 128u}) {
    for (uint32_t n : {0u, group, 3u * group, 1024u - group})
      for (bool clustered : {false, true}) cases.push_back({2, 4, 128, 1024, n, clustered, 192, group});
    cases.push_back({1, 7, 128, 1024, 2u * group, false, 64, group});
    cases.push_back({2, 2, 64, 512, group, true, 256, group});
    cases.push_back({1, 3, 256, 512, group, false, 1024, group});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Splits, GpuAttentionStp, ::testing::ValuesIn(stp_cases()), [](const auto& info) {
  const StpCase& c = info.param;
  return "h" + std::to_string(c.kv_heads) + "_r" + std::to_string(c.ratio) + "_d" + std::to_string(c.dim) + "_t" +
         std::to_string(c.tokens) + "_n" + std::to_string(c.protected_count) + (c.clustered ? "_run" : "_spread") +
         "_s" + std::to_string(c.split_tokens) + (c.group != kGroup ? "_g" + std::to_string(c.group) : "");
});

using GpuAttentionStpLayer = VulkanTest;

// A layer as the cache builds it: the prefill's segment with its STP split, then blocks that
// residual flushes appended (plain trits: decode tokens are not protected), a second STP segment
// between them, and the fp16 residual: one softmax over all of them, on both paths.
TEST_F(GpuAttentionStpLayer, MixedSegmentsAreOneSoftmax) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  std::mt19937_64 rng(seed);
  const uint32_t H = 2, D = 128, ratio = 7, residual = 45;
  const uint32_t sizes[] = {128, 640, 128, 320, 128};  // trits, STP, trits, STP, trits
  uint32_t total = residual;
  for (uint32_t s : sizes) total += s;
  const AttentionGeometry g{H, H * ratio, D};
  const KvData kv = random_kv(H, total, D, seed);
  const auto q = realistic_query(kv.keys, total, H, g.q_heads, D, seed + 3);
  std::vector<StpSegment> segs;
  std::vector<TokenSplit> splits;
  splits.reserve(5);
  uint32_t from = 0;
  for (size_t i = 0; i < 5; ++i) {
    const bool stp = i % 2 == 1;
    if (stp) splits.push_back(random_split(sizes[i], i == 1 ? 128 : 64, false, rng));
    const std::vector<ChannelSplit> channels = segs.empty() ? std::vector<ChannelSplit>{} : segs[0].keys.splits;
    segs.push_back(make_segment(kv, from, sizes[i], H, D, channels, stp ? &splits.back() : nullptr));
    from += sizes[i];
  }
  std::vector<AttentionSegment> host;
  for (const auto& s : segs) host.push_back(s.host());
  const auto rk = token_slice(kv.keys, from, residual, H, D), rv = token_slice(kv.values, from, residual, H, D);
  const auto ref = reference::attention_layer(q, g.q_heads, host, rk, rv, residual, H, D);
  for (bool portable : {false, true}) {
    SCOPED_TRACE(portable ? "portable path" : "default path");
    GpuAttention gpu(ctx);
    gpu.set_portable(portable);
    EXPECT_LT(attention_error(gpu.vidkv_host(g, q, host, rk, rv, residual), ref, D), 1e-3);
  }
  // The library's own decoders (dequantize_values_stp, dequantize_keys) round every value to fp16;
  // attention over those differs from the exact decode by that rounding only.
  const auto rounded = reference::attention_layer(q, g.q_heads, host, rk, rv, residual, H, D, 0.0,
                                                  reference::DecodeRounding::fp16);
  GpuAttention gpu(ctx);
  EXPECT_LT(attention_error(gpu.vidkv_host(g, q, host, rk, rv, residual), rounded, D), 1e-2);
}

TEST_F(GpuAttentionStpLayer, BadSplitsAreClearErrors) {
  const uint64_t seed = tools::test_seed();
  std::mt19937_64 rng(seed);
  const uint32_t H = 2, D = 64, T = 128;
  const AttentionGeometry g{H, 4, D};
  const KvData kv = random_kv(H, T, D, seed);
  const TokenSplit split = random_split(T, 32, false, rng);
  const StpSegment seg = make_segment(kv, 0, T, H, D, {}, &split);
  GpuAttention gpu(ctx);
  const std::vector<float> q(size_t(g.q_heads) * D, 0.25f);
  auto expect_error = [&](const std::vector<AttentionSegment>& segs, ErrorCode code, const char* mentions) {
    try {
      gpu.vidkv_host(g, q, segs, {}, {}, 0);
      ADD_FAILURE() << "accepted; expected " << mentions;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_NE(std::string(e.what()).find(mentions), std::string::npos) << e.what();
    }
  };
  // An STP segment beside a 2-bit one: formats that cannot share a layer.
  const B2Segment b2 = make_b2_segment(kv, T, H, D, seg.keys.splits);
  expect_error({seg.host(), AttentionSegment{&b2.keys, &b2.values, nullptr, nullptr}}, ErrorCode::invalid_argument,
               "segment 1 values are b2_channel");
  // Values and a split at once, and a split whose lists disagree with its parts.
  expect_error({AttentionSegment{&seg.keys, &b2.values, nullptr, &seg.stp}}, ErrorCode::invalid_argument,
               "either values or an STP split");
  StpQuantizedValues shuffled = seg.stp;
  std::swap(shuffled.split.other_tokens.front(), shuffled.split.other_tokens.back());
  expect_error({AttentionSegment{&seg.keys, nullptr, nullptr, &shuffled}}, ErrorCode::invalid_argument, "segment 0");

  // Device-buffer API: protected tokens that are not whole groups, and a token map that is short.
  rt::Buffer big(ctx, 1 << 16), qb(ctx, q.size() * 4), out(ctx, q.size() * 4), partials(ctx, 1 << 20);
  QuantizedLayerBuffers layer;
  layer.keys = k15();
  layer.values = ValueFormat::ternary_stp;
  layer.channels = big.view();
  QuantizedSegmentBuffers s;
  s.tokens = T;
  s.key_anomalous = s.key_normal = s.values = s.values_high = {big.view(), big.view(), big.view()};
  s.token_map = big.view(0, T * 4);
  s.protected_tokens = 48;
  layer.segments.push_back(s);
  auto expect_device_error = [&](ErrorCode code, const char* mentions) {
    try {
      gpu.run_vidkv(g, layer, qb.view(), partials.view(), out.view());
      ADD_FAILURE() << "accepted; expected " << mentions;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_NE(std::string(e.what()).find(mentions), std::string::npos) << e.what();
    }
  };
  expect_device_error(ErrorCode::bad_group_size, "protected tokens 48");
  layer.segments[0].protected_tokens = 160;
  expect_device_error(ErrorCode::bad_group_size, "protected tokens 160");
  layer.segments[0].protected_tokens = 32;
  layer.segments[0].token_map = big.view(0, T * 4 - 4);
  expect_device_error(ErrorCode::buffer_too_small, "segment 0 token map");
}

}  // namespace
}  // namespace vidkv::test
