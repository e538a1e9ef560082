// GPU semantic token protection against the CPU reference (cache/reference/stp_reference.cpp) on
// fresh random inputs: scores bit for bit (fp32 and fp16 embeddings), and the selection exactly
// (the same tokens, ties to the lower index, non-visual tokens before and after the visual ones).
// Device outputs are poisoned twice (all 0xFF, then all 0x00) and must match both times, so an
// entry the shaders forgot to write cannot pass. The token-split quantization and bad input are in
// test_gpu_stp_values.cpp.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/random_data.hpp"
#include "vidkv/fp16.hpp"
#include "vidkv/gpu_stp.hpp"
#include "vidkv/stp.hpp"
#include "vulkan_fixture.hpp"

namespace vidkv::test {
namespace {

constexpr uint8_t kPoisons[] = {0xff, 0x00};

// Normal values with a few exact zeros of both signs and some half subnormals, as fp32.
std::vector<float> random_embeddings(size_t count, std::mt19937_64& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> pick(0, 99);
  std::vector<float> v(count);
  for (auto& x : v) {
    const int p = pick(rng);
    x = p == 0 ? 0.0f : p == 1 ? -0.0f : p == 2 ? 3.0e-6f * normal(rng) : normal(rng);
  }
  return v;
}

std::vector<uint16_t> to_halves(const std::vector<float>& v) {
  std::vector<uint16_t> h(v.size());
  for (size_t i = 0; i < v.size(); ++i) h[i] = fp16::from_float(v[i]);
  return h;
}

std::vector<float> to_floats(const std::vector<uint16_t>& h) {
  std::vector<float> v(h.size());
  for (size_t i = 0; i < h.size(); ++i) v[i] = fp16::to_float(h[i]);
  return v;
}

// Bitwise equality (so -0 vs +0 and NaN payloads count), reporting the first difference.
void expect_same_bits(const std::vector<float>& gpu, const std::vector<float>& ref, const std::string& what) {
  ASSERT_EQ(gpu.size(), ref.size()) << what;
  for (size_t i = 0; i < gpu.size(); ++i) {
    uint32_t a, b;
    std::memcpy(&a, &gpu[i], 4);
    std::memcpy(&b, &ref[i], 4);
    ASSERT_EQ(a, b) << what << ": score " << i << " is " << gpu[i] << " on the GPU, " << ref[i] << " in the reference";
  }
}

struct ScoreCase {
  uint32_t visual, text, hidden;
};

class GpuStpScores : public VulkanTest {
 protected:
  // Device path with a poisoned output, then the host round trip; both against the reference.
  void check(const ScoreCase& c, bool fp16_inputs) {
    const uint64_t seed = tools::test_seed();
    SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay), N " + std::to_string(c.visual) +
                 " M " + std::to_string(c.text) + " hidden " + std::to_string(c.hidden) +
                 (fp16_inputs ? " fp16" : " fp32"));
    std::mt19937_64 rng(seed);
    std::vector<float> visual = random_embeddings(size_t(c.visual) * c.hidden, rng);
    std::vector<float> text = random_embeddings(size_t(c.text) * c.hidden, rng);
    const std::vector<uint16_t> visual_h = to_halves(visual), text_h = to_halves(text);
    if (fp16_inputs) visual = to_floats(visual_h), text = to_floats(text_h);
    const std::vector<float> ref = reference::stp_scores(visual, text, c.hidden);

    GpuStp stp(ctx);
    const ElementType type = fp16_inputs ? ElementType::f16 : ElementType::f32;
    const uint64_t vb = (visual.size() * element_bytes(type) + 3) / 4 * 4;
    const uint64_t tb = (text.size() * element_bytes(type) + 3) / 4 * 4;
    rt::Buffer vbuf(ctx, vb), tbuf(ctx, tb), out(ctx, uint64_t(c.visual) * 4);
    vbuf.upload(fp16_inputs ? static_cast<const void*>(visual_h.data()) : visual.data(),
                visual.size() * element_bytes(type));
    tbuf.upload(fp16_inputs ? static_cast<const void*>(text_h.data()) : text.data(), text.size() * element_bytes(type));
    for (uint8_t poison : kPoisons) {
      out.fill(poison);
      stp.scores(vbuf.view(), type, c.visual, tbuf.view(), type, c.text, c.hidden, out.view());
      std::vector<float> gpu(c.visual);
      out.download(gpu.data(), gpu.size() * 4);
      expect_same_bits(gpu, ref, "device scores, poison " + std::to_string(poison));
    }
    const auto host =
        fp16_inputs ? stp.scores_host(visual_h, text_h, c.hidden) : stp.scores_host(visual, text, c.hidden);
    expect_same_bits(host, ref, "scores_host");
  }
};

TEST_F(GpuStpScores, BitExactFp32) {
  for (const ScoreCase c :
       {ScoreCase{392, 7, 256}, ScoreCase{6272, 5, 64}, ScoreCase{40, 3, 3584}, ScoreCase{1, 1, 1}}) {
    check(c, false);
  }
}

TEST_F(GpuStpScores, BitExactFp16) {
  // odd sizes: rows straddle 32-bit words of two halves
  for (const ScoreCase c : {ScoreCase{392, 7, 256}, ScoreCase{6272, 5, 64}, ScoreCase{33, 3, 3583}}) check(c, true);
}

struct SelectCase {
  std::string name;
  uint32_t visual;
  uint32_t first_visual;
  uint32_t total;
  double ratio;
  int distinct;  // 0: continuous random scores; k: only k distinct values (many ties)
};

class GpuStpSelect : public VulkanTest {
 protected:
  void check(const SelectCase& c, std::mt19937_64& rng) {
    SCOPED_TRACE(c.name);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_int_distribution<int> pick(0, std::max(c.distinct, 1) - 1);
    std::vector<float> scores(c.visual);
    for (auto& s : scores) {
      // tied scores include both zeros, which compare equal and so tie too
      const float tied[] = {0.0f, -0.0f, 1.5f, -2.0f, 1.0e-40f, 7.0f, -1.0e-40f, 3.25f};
      s = c.distinct > 0 ? tied[pick(rng) % 8] : normal(rng);
    }
    const StpSpec spec{c.ratio, 32, c.first_visual};
    const TokenSplit ref = reference::stp_select(spec, scores, c.total);
    GpuStp stp(ctx);
    const TokenSplit host = stp.select_host(spec, scores, c.total);
    EXPECT_EQ(host.protected_tokens, ref.protected_tokens);
    EXPECT_EQ(host.other_tokens, ref.other_tokens);
    if (c.visual == 0) return;

    const uint32_t n = uint32_t(ref.protected_tokens.size()), others = uint32_t(ref.other_tokens.size());
    rt::Buffer sbuf(ctx, uint64_t(c.visual) * 4), pbuf(ctx, std::max(n, 1u) * 4ull),
        obuf(ctx, std::max(others, 1u) * 4ull);
    sbuf.upload(scores.data(), scores.size() * 4);
    for (uint8_t poison : kPoisons) {
      pbuf.fill(poison);
      obuf.fill(poison);
      EXPECT_EQ(stp.select(spec, sbuf.view(), c.visual, c.total, pbuf.view(), obuf.view()), n);
      std::vector<uint32_t> p(n), o(others);
      if (n > 0) pbuf.download(p.data(), n * 4ull);
      obuf.download(o.data(), others * 4ull);
      EXPECT_EQ(p, ref.protected_tokens) << "poison " << int(poison);
      EXPECT_EQ(o, ref.other_tokens) << "poison " << int(poison);
    }
  }
};

TEST_F(GpuStpSelect, MatchesReference) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  std::mt19937_64 rng(seed);
  GpuStp stp(ctx);
  SCOPED_TRACE("dispatches for N 6272: " + std::to_string(stp.select_dispatch_count(6272)));
  const SelectCase cases[] = {
      {"N392 text after", 392, 0, 416, 0.2, 0},
      {"N392 text before and after", 392, 13, 416, 0.2, 0},
      {"N6272 text before and after", 6272, 5, 6304, 0.2, 0},
      {"N6272 many ties", 6272, 5, 6304, 0.2, 4},
      {"N1000 eight tied values", 1000, 20, 1024, 0.5, 8},
      {"N2048 all tied but for sign of zero", 2048, 0, 2048, 0.25, 2},
      {"N1024 power of two", 1024, 0, 1024, 0.3, 0},
      {"N100 below one chunk", 100, 7, 128, 0.4, 0},
      {"N392 ratio rounds to nothing", 392, 0, 416, 0.01, 0},
      {"N0 no visual tokens", 0, 0, 64, 0.2, 0},
  };
  for (const auto& c : cases) check(c, rng);
}

}  // namespace
}  // namespace vidkv::test
