// Fused VidKV decode attention (packed keys and values read directly) against the float64
// reference over the exactly decoded cache (reference::decode_segment, DecodeRounding::exact: the
// values the codes and scales stand for, without the fp16 rounding of dequantize_keys/dequantize,
// which alone moves attention by ~1e-3 with outlier key channels) plus the fp16 residual. Tokens
// beyond the largest multiple of the group size are the fp16 residual. Error measure:
// per query head max|out - ref| / max|ref|, worst head, below 1e-3.
#include <gtest/gtest.h>

#include <string>

#include "attention_test_data.hpp"
#include "vidkv/gpu_attention.hpp"
#include "vidkv/ternary_pack.hpp"
#include "vulkan_fixture.hpp"

namespace vidkv::test {
namespace {

struct VidkvCase {
  const char* keys;    // "k1.5", "k1.5full", "k2", "k1", "k1.5layer"
  const char* values;  // "v1.58", "v2", "kivi"
  uint32_t kv_heads, ratio, dim, tokens;
  uint32_t group = 32;  // key and value group size
};

KeySpec key_spec(const std::string& name, uint32_t group = 32) {
  KeySpec s;
  s.group_size = group;
  s.nbits = name == "k2" ? 2.0 : (name == "k1" ? 1.0 : 1.5);
  s.fft = name == "k1.5full" ? FftLayout::full : FftLayout::half;
  s.scope = name == "k1.5layer" ? ChannelScope::layer : ChannelScope::head;
  return s;
}

QuantSpec value_spec(const std::string& name, uint32_t group = 32) {
  if (name == "v1.58") return {QuantBits::b1_58, QuantAxis::channel, group};
  return {QuantBits::b2, name == "kivi" ? QuantAxis::token : QuantAxis::channel, group};
}

// Whole groups of tokens (KIVI's values group channels: its keys still group tokens).
uint32_t quantized_tokens(const VidkvCase& c) { return c.tokens / c.group * c.group; }

// A quantized segment of tokens [from, from + count) with the given channel split (empty: chosen
// from this segment), its trits packed when the values are ternary.
struct Segment {
  QuantizedKeys keys;
  QuantizedTensor values;
  std::vector<uint8_t> trits;
};

Segment quantize_segment(const KvData& kv, uint32_t from, uint32_t count, uint32_t heads, uint32_t dim,
                         const KeySpec& ks, const QuantSpec& vs, const std::vector<ChannelSplit>& splits) {
  const TensorShape shape{heads, count, dim};
  const auto v = token_slice(kv.values, from, count, heads, dim);
  Segment s;
  s.keys = quantize_key_slice(kv, from, count, heads, dim, ks, splits);
  s.values = reference::quantize(vs, shape, v.data(), TensorLayout::thd(shape));
  if (vs.bits == QuantBits::b1_58) s.trits = reference::pack_trits(s.values);
  return s;
}

AttentionSegment host_segment(const Segment& s) {
  return {&s.keys, &s.values, s.trits.empty() ? nullptr : &s.trits};
}

class GpuAttentionVidkv : public VulkanTest, public ::testing::WithParamInterface<VidkvCase> {};

TEST_P(GpuAttentionVidkv, MatchesReference) {
  const VidkvCase c = GetParam();
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const AttentionGeometry g{c.kv_heads, c.kv_heads * c.ratio, c.dim};
  const KvData kv = random_kv(c.kv_heads, c.tokens, c.dim, seed);
  const auto q = realistic_query(kv.keys, c.tokens, c.kv_heads, g.q_heads, c.dim, seed + 7);
  const uint32_t quantized = quantized_tokens(c), residual = c.tokens - quantized;
  std::vector<Segment> segments;
  if (quantized > 0) {
    segments.push_back(quantize_segment(kv, 0, quantized, c.kv_heads, c.dim, key_spec(c.keys, c.group),
                                        value_spec(c.values, c.group), {}));
  }
  std::vector<AttentionSegment> host;
  for (const auto& s : segments) host.push_back(host_segment(s));
  const auto rk = token_slice(kv.keys, quantized, residual, c.kv_heads, c.dim);
  const auto rv = token_slice(kv.values, quantized, residual, c.kv_heads, c.dim);
  const auto ref = reference::attention_layer(q, g.q_heads, host, rk, rv, residual, c.kv_heads, c.dim);
  GpuAttention gpu(ctx);
  gpu.set_poison(0xff);
  const auto out = gpu.vidkv_host(g, q, host, rk, rv, residual);
  const double error = attention_error(out, ref, c.dim);
  RecordProperty("relative_error", std::to_string(error));
  EXPECT_LT(error, 1e-3);
}

// Head dims that are not a multiple of the lane count (80, 96, 112: channels left over after whole
// passes): every value format and key kind, GQA 1 to 16, groups 32 to 128. KIVI's value groups run
// along the channels, so it needs head_dim a multiple of the group (96 at 32).
std::vector<VidkvCase> odd_dim_cases() {
  std::vector<VidkvCase> cases;
  for (uint32_t dim : {80u, 96u, 112u}) {
    cases.push_back({"k1.5", "v1.58", 2, 7, dim, 600});
    cases.push_back({"k1.5", "v2", 2, 4, dim, 333});
    cases.push_back({"k2", "v2", 1, 1, dim, 300});
    cases.push_back({"k1.5full", "v1.58", 2, 8, dim, 352});
    cases.push_back({"k1", "v2", 1, 16, dim, 300});
    cases.push_back({"k1.5layer", "v1.58", 2, 3, dim, 300});
    cases.push_back({"k1.5", "v1.58", 1, 12, dim, 700, 64});
    cases.push_back({"k2", "v2", 1, 7, dim, 520, 128});
  }
  cases.push_back({"k1.5", "kivi", 2, 7, 96, 600});
  cases.push_back({"k2", "kivi", 1, 16, 96, 333});
  return cases;
}

std::vector<VidkvCase> vidkv_cases() {
  std::vector<VidkvCase> cases;
  for (uint32_t t : {1u, 31u, 32u, 33u, 127u, 128u, 129u, 1000u}) cases.push_back({"k1.5", "v1.58", 2, 4, 128, t});
  cases.push_back({"k1.5", "v1.58", 1, 7, 128, 6272 + 40});
  cases.push_back({"k2", "v2", 1, 7, 128, 6272 + 40});
  for (uint32_t ratio : {1u, 4u, 7u})
    for (uint32_t dim : {64u, 128u}) {
      cases.push_back({"k1.5", "v1.58", 2, ratio, dim, 600});
      cases.push_back({"k1.5", "v2", 2, ratio, dim, 600});
    }
  for (uint32_t t : {32u, 129u, 1000u}) {
    cases.push_back({"k1.5full", "v1.58", 2, 4, 128, t});
    cases.push_back({"k1.5full", "v2", 2, 7, 64, t});
    cases.push_back({"k2", "v2", 2, 4, 128, t});
    cases.push_back({"k1.5", "kivi", 2, 7, 128, t});
    cases.push_back({"k2", "kivi", 2, 4, 64, t});
  }
  cases.push_back({"k1", "v1.58", 2, 4, 128, 300});
  cases.push_back({"k1", "v2", 2, 1, 64, 300});
  cases.push_back({"k1.5layer", "v1.58", 2, 4, 128, 300});
  cases.push_back({"k1.5", "v1.58", 1, 2, 256, 600});
  // GQA beyond 8 (head chunks: 9 = 2 x 5 with a surplus head, 12 = 2 x 6, 16 = 2 x 8): the
  // k1.5-v1.58, 2bit and kivi presets' formats, with a residual
  for (uint32_t ratio : {9u, 12u, 16u}) {
    cases.push_back({"k1.5", "v1.58", 2, ratio, 128, 333});
    cases.push_back({"k2", "v2", 2, ratio, 128, 333});
    cases.push_back({"k2", "kivi", 2, ratio, 128, 333});
  }
  // Groups of 64 and 128 (several 32-token blocks per scale) for every value format and key kind.
  for (uint32_t group : {64u, 128u}) {
    for (const char* values : {"v1.58", "v2", "kivi"}) {
      for (uint32_t t : {group, 1000u}) cases.push_back({"k1.5", values, 2, 7, 128, t, group});
      cases.push_back({"k2", values, 1, 4, 256, 600, group});
    }
    cases.push_back({"k1.5", "v1.58", 2, 4, 64, 700, group});
    cases.push_back({"k1.5full", "v2", 2, 8, 64, 700, group});
    cases.push_back({"k1", "v1.58", 2, 1, 128, 520, group});
    cases.push_back({"k1.5layer", "v1.58", 2, 4, 128, 520, group});
  }
  cases.push_back({"k2", "kivi", 2, 4, 64, 640, 64});
  // Both at once: GQA head chunks over groups of several blocks
  cases.push_back({"k1.5", "v1.58", 2, 12, 128, 700, 64});
  cases.push_back({"k2", "kivi", 2, 16, 128, 520, 128});
  for (const VidkvCase& c : odd_dim_cases()) cases.push_back(c);
  return cases;
}

std::string case_name(const VidkvCase& c) {
  std::string n = std::string(c.keys) + "_" + c.values + "_h" + std::to_string(c.kv_heads) + "_r" +
                  std::to_string(c.ratio) + "_d" + std::to_string(c.dim) + "_t" + std::to_string(c.tokens);
  if (c.group != 32) n += "_g" + std::to_string(c.group);
  for (char& ch : n)
    if (ch == '.') ch = 'p';
  return n;
}

INSTANTIATE_TEST_SUITE_P(Configurations, GpuAttentionVidkv, ::testing::ValuesIn(vidkv_cases()),
                         [](const auto& info) { return case_name(info.param); });

// The portable kernel (what GPUs run) at every head dim, GQA 1 to 16, every value format and key
// variant, with splits that end inside a group chunk, at the segment's end or past it; outputs and
// scratch poisoned (0xff: NaN) first.
struct PortableCase {
  VidkvCase c;
  uint32_t split;
};

class GpuAttentionPortable : public VulkanTest, public ::testing::WithParamInterface<PortableCase> {};

TEST_P(GpuAttentionPortable, MatchesReference) {
  const VidkvCase c = GetParam().c;
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const AttentionGeometry g{c.kv_heads, c.kv_heads * c.ratio, c.dim};
  const KvData kv = random_kv(c.kv_heads, c.tokens, c.dim, seed);
  const auto q = realistic_query(kv.keys, c.tokens, c.kv_heads, g.q_heads, c.dim, seed + 13);
  const uint32_t quantized = quantized_tokens(c), residual = c.tokens - quantized;
  std::vector<Segment> segs;
  segs.push_back(quantize_segment(kv, 0, quantized, c.kv_heads, c.dim, key_spec(c.keys, c.group),
                                  value_spec(c.values, c.group), {}));
  std::vector<AttentionSegment> host;
  for (const auto& s : segs) host.push_back(host_segment(s));
  const auto rk = token_slice(kv.keys, quantized, residual, c.kv_heads, c.dim);
  const auto rv = token_slice(kv.values, quantized, residual, c.kv_heads, c.dim);
  const auto ref = reference::attention_layer(q, g.q_heads, host, rk, rv, residual, c.kv_heads, c.dim);
  GpuAttention gpu(ctx);
  gpu.set_portable(true);
  gpu.set_split_tokens(GetParam().split);
  gpu.set_poison(0xff);
  const double error = attention_error(gpu.vidkv_host(g, q, host, rk, rv, residual), ref, c.dim);
  RecordProperty("relative_error", std::to_string(error));
  EXPECT_LT(error, 1e-3);
}

std::vector<PortableCase> portable_cases() {
  std::vector<PortableCase> cases;
  for (uint32_t dim : {64u, 128u, 256u})
    for (uint32_t ratio : {1u, 7u, 8u})
      for (const char* values : {"v1.58", "v2", "kivi"}) cases.push_back({{"k1.5", values, 1, ratio, dim, 480}, 256});
  // splits: 64 (one chunk), 192 (a chunk and a half-chunk... of the 416 quantized tokens), 1024 (past the end)
  for (uint32_t split : {64u, 192u, 1024u}) {
    cases.push_back({{"k1.5", "v1.58", 2, 4, 128, 416 + 7}, split});
    cases.push_back({{"k1.5", "v2", 2, 4, 128, 416 + 7}, split});
    cases.push_back({{"k1.5", "kivi", 2, 4, 128, 416 + 7}, split});
  }
  for (const char* keys : {"k1.5full", "k2", "k1", "k1.5layer"})
    for (uint32_t dim : {64u, 256u}) cases.push_back({{keys, "v1.58", 2, 7, dim, 352}, 128});
  // GQA beyond 8 (head chunks, see vidkv_cases)
  for (uint32_t ratio : {9u, 12u, 16u}) {
    cases.push_back({{"k1.5", "v1.58", 2, ratio, 128, 333}, 256});
    cases.push_back({{"k2", "v2", 2, ratio, 128, 333}, 256});
    cases.push_back({{"k2", "kivi", 2, ratio, 128, 333}, 256});
  }
  // Groups of 64 and 128: chunks of two 32-token blocks inside one group, splits ending inside a
  // group (64, 192) or past the end, every head dim the format allows.
  for (uint32_t group : {64u, 128u}) {
    for (uint32_t split : {64u, 192u, 1024u})
      for (const char* values : {"v1.58", "v2", "kivi"}) cases.push_back({{"k1.5", values, 2, 4, 128, 640 + 7, group}, split});
    for (uint32_t dim : {64u, 256u})
      for (const char* values : {"v1.58", "v2"}) cases.push_back({{"k2", values, 1, 7, dim, 512 + 40, group}, 256});
    cases.push_back({{"k1", "kivi", 1, 8, 256, 512, group}, 128});
    cases.push_back({{"k1.5full", "v1.58", 2, 7, 64, 384, group}, 128});
  }
  // Both at once: GQA head chunks over groups of several blocks
  cases.push_back({{"k1.5", "v1.58", 2, 12, 128, 700, 64}, 192});
  cases.push_back({{"k1.5", "v2", 2, 16, 128, 520, 128}, 256});
  for (const VidkvCase& c : odd_dim_cases()) cases.push_back({c, 192});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Configurations, GpuAttentionPortable, ::testing::ValuesIn(portable_cases()),
                         [](const auto& info) {
                           return case_name(info.param.c) + "_s" + std::to_string(info.param.split);
                         });

using GpuAttentionLayer = VulkanTest;

// A layer of three quantized segments (the prefill, then two appended blocks quantized later with
// the prefill's channel lists) and an fp16 residual is one softmax over all of them.
TEST_F(GpuAttentionLayer, SegmentsAndResidualAreOneSoftmax) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const uint32_t H = 2, D = 128, ratio = 7, T = 512 + 128 + 320 + 45;
  const AttentionGeometry g{H, H * ratio, D};
  const KvData kv = random_kv(H, T, D, seed);
  const auto q = realistic_query(kv.keys, T, H, g.q_heads, D, seed + 3);
  for (const char* values : {"v1.58", "v2"}) {
    SCOPED_TRACE(values);
    std::vector<Segment> segs;
    segs.push_back(quantize_segment(kv, 0, 512, H, D, key_spec("k1.5"), value_spec(values), {}));
    segs.push_back(quantize_segment(kv, 512, 128, H, D, key_spec("k1.5"), value_spec(values), segs[0].keys.splits));
    segs.push_back(quantize_segment(kv, 640, 320, H, D, key_spec("k1.5"), value_spec(values), segs[0].keys.splits));
    std::vector<AttentionSegment> host;
    for (const auto& s : segs) host.push_back(host_segment(s));
    const auto rk = token_slice(kv.keys, 960, 45, H, D), rv = token_slice(kv.values, 960, 45, H, D);
    const auto ref = reference::attention_layer(q, g.q_heads, host, rk, rv, 45, H, D);
    GpuAttention gpu(ctx);
    const auto out = gpu.vidkv_host(g, q, host, rk, rv, 45);
    EXPECT_LT(attention_error(out, ref, D), 1e-3);
    // The library's own decoders round every decoded value to fp16; attention over those differs
    // from the exact decode by that rounding only (outlier key channels amplify it in the scores).
    const auto rounded = reference::attention_layer(q, g.q_heads, host, rk, rv, 45, H, D, 0.0,
                                                    reference::DecodeRounding::fp16);
    EXPECT_LT(attention_error(out, rounded, D), 1e-2);
    // Dropping the residual changes the answer: it really is part of the softmax.
    const auto without = reference::attention_layer(q, g.q_heads, host, {}, {}, 0, H, D);
    EXPECT_LT(attention_error(gpu.vidkv_host(g, q, host, {}, {}, 0), without, D), 1e-3);
  }
}

// The portable shaders (attention_fp16.comp, attention_vidkv.comp: what GPUs run) give the same
// answers as the subgroup-of-8 ones lavapipe takes by default, for every value format.
TEST_F(GpuAttentionLayer, PortablePathMatchesReference) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const VidkvCase cases[] = {{"k1.5", "v1.58", 2, 7, 128, 300}, {"k1.5full", "v2", 2, 4, 64, 129},
                             {"k2", "kivi", 1, 3, 128, 100},    {"k1", "v1.58", 2, 1, 64, 600},
                             {"k2", "v2", 1, 7, 128, 1000},     {"k1.5layer", "v2", 2, 4, 128, 33},
                             {"k1.5", "v1.58", 1, 2, 256, 600}, {"k1.5", "kivi", 2, 7, 64, 31}};
  for (const VidkvCase& c : cases) {
    SCOPED_TRACE(case_name(c));
    const AttentionGeometry g{c.kv_heads, c.kv_heads * c.ratio, c.dim};
    const KvData kv = random_kv(c.kv_heads, c.tokens, c.dim, seed);
    const auto q = realistic_query(kv.keys, c.tokens, c.kv_heads, g.q_heads, c.dim, seed + 5);
    const uint32_t quantized = c.tokens / 32 * 32, residual = c.tokens - quantized;
    std::vector<Segment> segs;
    if (quantized > 0) {
      segs.push_back(
          quantize_segment(kv, 0, quantized, c.kv_heads, c.dim, key_spec(c.keys), value_spec(c.values), {}));
    }
    std::vector<AttentionSegment> host;
    for (const auto& s : segs) host.push_back(host_segment(s));
    const auto rk = token_slice(kv.keys, quantized, residual, c.kv_heads, c.dim);
    const auto rv = token_slice(kv.values, quantized, residual, c.kv_heads, c.dim);
    const auto ref = reference::attention_layer(q, g.q_heads, host, rk, rv, residual, c.kv_heads, c.dim);
    GpuAttention gpu(ctx);
    gpu.set_portable(true);
    EXPECT_FALSE(gpu.subgroup8_path());
    EXPECT_LT(attention_error(gpu.vidkv_host(g, q, host, rk, rv, residual), ref, c.dim), 1e-3);
    EXPECT_LT(attention_error(gpu.fp16_host(g, q, kv.keys, kv.values, c.tokens),
                              reference::attention_layer(q, g.q_heads, {}, kv.keys, kv.values, c.tokens, c.kv_heads,
                                                         c.dim),
                              c.dim),
              1e-3);
  }
}

// Every split length gives the same answer on both paths (splits end inside the segment, at its
// end, or past it; the residual gets its own), and the default split follows the path.
TEST_F(GpuAttentionLayer, SplitSizesAgree) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const uint32_t H = 2, D = 128, ratio = 4, T = 2000, quantized = T / 32 * 32;
  const AttentionGeometry g{H, H * ratio, D};
  const KvData kv = random_kv(H, T, D, seed);
  const auto q = realistic_query(kv.keys, T, H, g.q_heads, D, seed + 9);
  const Segment seg = quantize_segment(kv, 0, quantized, H, D, key_spec("k1.5"), value_spec("v1.58"), {});
  const std::vector<AttentionSegment> host{host_segment(seg)};
  const auto rk = token_slice(kv.keys, quantized, T - quantized, H, D);
  const auto rv = token_slice(kv.values, quantized, T - quantized, H, D);
  const auto ref = reference::attention_layer(q, g.q_heads, host, rk, rv, T - quantized, H, D);
  for (bool portable : {false, true}) {
    GpuAttention gpu(ctx);
    gpu.set_portable(portable);
    EXPECT_EQ(gpu.split_tokens(), gpu.subgroup8_path() ? 1024u : 256u);
    // The path is the device's default (CPU, subgroups of 8, shuffles: test_gpu_attention.cpp)
    // unless forced portable.
    EXPECT_EQ(gpu.subgroup8_path(), !portable && GpuAttention::subgroup8_default(*ctx));
    for (uint32_t split : {64u, 448u, 1024u}) {
      gpu.set_split_tokens(split);
      EXPECT_LT(attention_error(gpu.vidkv_host(g, q, host, rk, rv, T - quantized), ref, D), 1e-3)
          << (portable ? "portable" : "default") << " path, split " << split;
    }
  }
}

// The portable kernel's shared memory grows with the split, the GQA ratio and the key indices
// (here ~61 KB: splits of 1024, 8 query heads per KV head, D 256 with a full spectrum): a device
// with less refuses before recording anything, naming shared memory; one with more computes it.
TEST_F(GpuAttentionLayer, PortableSharedMemoryIsCheckedFirst) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  const uint32_t H = 1, D = 256, ratio = 8, T = 1024;
  const AttentionGeometry g{H, H * ratio, D};
  const KvData kv = random_kv(H, T, D, seed);
  const auto q = realistic_query(kv.keys, T, H, g.q_heads, D, seed + 17);
  const Segment s = quantize_segment(kv, 0, T, H, D, key_spec("k1.5full"), value_spec("v1.58"), {});
  const std::vector<AttentionSegment> host{host_segment(s)};
  GpuAttention gpu(ctx);
  gpu.set_portable(true);
  gpu.set_split_tokens(1024);
  try {
    const auto out = gpu.vidkv_host(g, q, host, {}, {}, 0);
    EXPECT_LT(attention_error(out, reference::attention_layer(q, g.q_heads, host, {}, {}, 0, H, D), D), 1e-3);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument) << e.what();
    EXPECT_NE(std::string(e.what()).find("shared memory"), std::string::npos) << e.what();
    EXPECT_LT(ctx->info().max_shared_memory, 64u * 1024) << e.what();
  }
}

TEST_F(GpuAttentionLayer, BadSegmentsAreClearErrors) {
  const uint32_t H = 2, D = 64;
  const KvData kv = random_kv(H, 64, D, 5);
  const Segment s = quantize_segment(kv, 0, 64, H, D, key_spec("k1.5"), value_spec("v1.58"), {});
  GpuAttention gpu(ctx);
  const std::vector<AttentionSegment> host{host_segment(s)};
  auto expect_error = [&](const AttentionGeometry& g, const std::vector<AttentionSegment>& segs, const char* mentions) {
    try {
      gpu.vidkv_host(g, std::vector<float>(size_t(g.q_heads) * g.dim), segs, {}, {}, 0);
      ADD_FAILURE() << "accepted; expected " << mentions;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(mentions), std::string::npos) << e.what();
    }
  };
  expect_error({H, 4, 128}, host, "dim 128");
  expect_error({H, 4, D}, {}, "empty");
  expect_error({H, 4, D}, {AttentionSegment{&s.keys, nullptr, nullptr, nullptr}}, "segment 0");
  // Device-buffer API: a value-trit buffer that is too small is named.
  QuantizedLayerBuffers layer;
  rt::Buffer small(ctx, 16), qb(ctx, 4 * D * 4), out(ctx, 4 * D * 4), partials(ctx, 1 << 16);
  QuantizedSegmentBuffers seg;
  seg.tokens = 64;
  seg.key_anomalous = seg.key_normal = seg.values = {small.view(), small.view(), small.view()};
  layer.segments.push_back(seg);
  layer.channels = small.view();
  try {
    gpu.run_vidkv({H, 4, D}, layer, qb.view(), partials.view(), out.view());
    ADD_FAILURE() << "accepted 16-byte segment buffers";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::buffer_too_small) << e.what();
    EXPECT_NE(std::string(e.what()).find("segment 0"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace vidkv::test
