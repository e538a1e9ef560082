// Per-head cache policies (head_policy.hpp): names, the assignment of policies to heads, and their
// place in CacheSettings and the configuration text (presets.hpp). Score files:
// test_head_scores.cpp. CPU only.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "vidkv/error.hpp"
#include "vidkv/head_policy.hpp"
#include "vidkv/presets.hpp"
#include "head_policy_test_helpers.hpp"

using namespace vidkv;
using namespace vidkv::head_policy_test;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

// Every (layer, head) scored, layer-major.
std::vector<HeadScore> grid(uint32_t layers, uint32_t heads, const std::vector<double>& s) {
  std::vector<HeadScore> out;
  for (uint32_t l = 0; l < layers; ++l) {
    for (uint32_t h = 0; h < heads; ++h) out.push_back(HeadScore{l, h, s[l * heads + h]});
  }
  return out;
}

HeadPolicySpec scored(std::vector<HeadScore> scores, double sparsity) {
  HeadPolicySpec spec;
  spec.scores = std::move(scores);
  spec.sparsity = sparsity;
  return spec;
}

// The quantile rule spelled out as ranks: head i's rank is the number of heads before it in the
// order (score, layer-major index); the floor(s x n) heads of rank below that take `low`.
std::vector<HeadPolicy> brute_force(const std::vector<double>& score, double s, HeadPolicy low, HeadPolicy high) {
  const size_t n = score.size(), n_low = size_t(std::floor(s * double(n)));
  std::vector<HeadPolicy> out(n);
  for (size_t i = 0; i < n; ++i) {
    size_t rank = 0;
    for (size_t j = 0; j < n; ++j) rank += score[j] < score[i] || (score[j] == score[i] && j < i);
    out[i] = rank < n_low ? low : high;
  }
  return out;
}

std::string vlm(const std::string& extra) {
  return "{'backend': 'QuantizedCacheVLM', 'nbits': [1.5, 1.58], " + extra + "}";
}

void expect_parse_error(const std::string& text, ErrorCode code, const std::vector<std::string>& parts) {
  SCOPED_TRACE(text);
  expect_error([&] { parse_settings(text); }, code, parts);
}

// "at byte N" of the first occurrence of `value_text` in `text`.
std::string at_byte(const std::string& text, const std::string& value_text) {
  return "at byte " + std::to_string(text.find(value_text));
}

}  // namespace

TEST(HeadPolicy, NamesRoundTripAndUnknownNames) {
  for (HeadPolicy p : {HeadPolicy::vidkv, HeadPolicy::full, HeadPolicy::window}) {
    EXPECT_EQ(parse_head_policy(head_policy_name(p)), p);
  }
  EXPECT_STREQ(head_policy_name(HeadPolicy::vidkv), "vidkv");
  EXPECT_STREQ(head_policy_name(HeadPolicy::full), "full");
  EXPECT_STREQ(head_policy_name(HeadPolicy::window), "window");
  EXPECT_STREQ(head_policy_name(HeadPolicy(7)), "?");
  for (const char* bad : {"Full", "", "windows", " full"}) {
    expect_error([&] { parse_head_policy(bad); }, ErrorCode::invalid_argument,
                 {"'" + std::string(bad) + "'", "vidkv, full, window"});
  }
}

TEST(HeadPolicy, DefaultSpecIsUniform) {
  const HeadPolicySpec spec;
  EXPECT_TRUE(spec.uniform());
  EXPECT_EQ(spec.low, HeadPolicy::window);
  EXPECT_EQ(spec.high, HeadPolicy::full);
  EXPECT_EQ(spec.sink, 16u);
  EXPECT_EQ(spec.recent, 64u);
  EXPECT_EQ(resolve_head_policies(spec, 3, 2), std::vector<HeadPolicy>(6, HeadPolicy::vidkv));
  // Every preset keeps the plain cache.
  for (const std::string& n : preset_names()) {
    SCOPED_TRACE(n);
    EXPECT_TRUE(preset(n).head_policies.uniform());
    EXPECT_TRUE(same_head_policies(preset(n).head_policies, spec));
  }
}

TEST(HeadPolicy, SameHeadPolicies) {
  HeadPolicySpec a = scored(grid(1, 3, {0.1, 0.2, 0.3}), 0.5);
  a.score_source = "a.csv";
  HeadPolicySpec b = a;
  b.score_source = "b.json";  // where the scores came from is not configuration
  EXPECT_TRUE(same_head_policies(a, b));
  std::reverse(b.scores.begin(), b.scores.end());  // nor is their order
  EXPECT_TRUE(same_head_policies(a, b));
  auto differs = [&](auto change) {
    HeadPolicySpec c = a;
    change(c);
    return !same_head_policies(a, c) && !same_head_policies(c, a);
  };
  EXPECT_TRUE(differs([](HeadPolicySpec& c) { c.scores[1].score = 0.25; }));
  EXPECT_TRUE(differs([](HeadPolicySpec& c) { c.scores[1].head = 5; }));
  EXPECT_TRUE(differs([](HeadPolicySpec& c) { c.scores[1].layer = 1; }));
  EXPECT_TRUE(differs([](HeadPolicySpec& c) { c.scores.pop_back(); }));
  EXPECT_TRUE(differs([](HeadPolicySpec& c) { c.sparsity = 0.25; }));
  EXPECT_TRUE(differs([](HeadPolicySpec& c) { c.low = HeadPolicy::vidkv; }));
  EXPECT_TRUE(differs([](HeadPolicySpec& c) { c.high = HeadPolicy::vidkv; }));
  EXPECT_TRUE(differs([](HeadPolicySpec& c) { c.sink = 4; }));
  EXPECT_TRUE(differs([](HeadPolicySpec& c) { c.recent = 4; }));
  EXPECT_TRUE(differs([](HeadPolicySpec& c) {
    c.scores.clear();
    c.sparsity = 0;
    c.heads = {HeadPolicy::full, HeadPolicy::full, HeadPolicy::full};
  }));
  HeadPolicySpec l1, l2;
  l1.heads = {HeadPolicy::full, HeadPolicy::window};
  l2.heads = {HeadPolicy::window, HeadPolicy::full};
  EXPECT_FALSE(same_head_policies(l1, l2));
  l2.heads = l1.heads;
  EXPECT_TRUE(same_head_policies(l1, l2));
}

// ---- resolve ----

TEST(HeadPolicyResolve, ExplicitList) {
  HeadPolicySpec spec;
  spec.heads = {HeadPolicy::vidkv, HeadPolicy::full, HeadPolicy::window, HeadPolicy::full,
                HeadPolicy::window, HeadPolicy::vidkv};
  EXPECT_EQ(resolve_head_policies(spec, 3, 2), spec.heads);
  EXPECT_EQ(resolve_head_policies(spec, 2, 3), spec.heads);
  expect_error([&] { resolve_head_policies(spec, 2, 2); }, ErrorCode::invalid_argument,
               {"6 policies", "2 layers x 2 KV heads = 4"});
  expect_error([&] { resolve_head_policies(spec, 4, 2); }, ErrorCode::invalid_argument,
               {"6 policies", "4 layers x 2 KV heads = 8"});
  spec.heads[3] = HeadPolicy(9);
  expect_error([&] { resolve_head_policies(spec, 3, 2); }, ErrorCode::invalid_argument,
               {"layer 1 head 1", "enum value 9"});
}

TEST(HeadPolicyResolve, ChecksScoresAgainstGeometry) {
  const std::vector<double> s = {0.4, 0.1, 0.3, 0.2};
  HeadPolicySpec spec = scored(grid(2, 2, s), 0.5);
  spec.score_source = "gates.csv";
  EXPECT_EQ(resolve_head_policies(spec, 2, 2),
            (std::vector<HeadPolicy>{HeadPolicy::full, HeadPolicy::window, HeadPolicy::full, HeadPolicy::window}));

  auto fails = [&](auto change, uint32_t layers, uint32_t heads, const std::vector<std::string>& parts) {
    HeadPolicySpec c = spec;
    change(c);
    std::vector<std::string> all = parts;
    all.push_back("gates.csv");  // the score source is named
    expect_error([&] { resolve_head_policies(c, layers, heads); }, ErrorCode::invalid_argument, all);
  };
  auto none = [](HeadPolicySpec&) {};
  fails(none, 1, 2, {"layer 1 head 0", "layer 1 is not below the cache's 1 layers"});
  fails(none, 2, 1, {"layer 0 head 1", "head 1 is not below the cache's 1 KV heads"});
  fails([](HeadPolicySpec& c) { c.scores.push_back({1, 1, 0.7}); }, 2, 2,
        {"layer 1 head 1 is scored twice (0.2 and 0.7)"});
  fails([](HeadPolicySpec& c) { c.scores.erase(c.scores.begin() + 2); }, 2, 2,
        {"layer 1 head 0 has no score", "3 scores for 2 layers x 2 KV heads = 4"});
  fails(none, 2, 3, {"layer 0 head 2 has no score"});
  fails([](HeadPolicySpec& c) { c.scores[2].score = kNaN; }, 2, 2, {"score of layer 1 head 0 is nan"});
  fails([](HeadPolicySpec& c) { c.scores[1].score = -kInf; }, 2, 2, {"score of layer 0 head 1 is -inf"});
  for (double bad : {-0.1, 1.0, 1.5, kNaN, kInf, -kInf}) {
    SCOPED_TRACE(bad);
    fails([&](HeadPolicySpec& c) { c.sparsity = bad; }, 2, 2, {"sparsity", "is not in [0, 1)"});
  }
  fails([](HeadPolicySpec& c) { c.sink = c.recent = 0; }, 2, 2, {"window sink + recent must be > 0"});
  fails([](HeadPolicySpec& c) { c.heads.assign(4, HeadPolicy::full); }, 2, 2,
        {"both an explicit list (4 heads) and 4 head scores"});
  fails([](HeadPolicySpec& c) { c.low = HeadPolicy(5); }, 2, 2, {"low policy enum value 5"});
  fails(none, 0, 2, {"0 layers x 2 KV heads"});
  fails(none, 2, 0, {"2 layers x 0 KV heads"});
  // Checks that do not depend on scores hold for the other sources too.
  HeadPolicySpec plain;
  plain.sink = plain.recent = 0;
  expect_error([&] { resolve_head_policies(plain, 2, 2); }, ErrorCode::invalid_argument, {"sink + recent"});
  plain = HeadPolicySpec();
  plain.sparsity = 0.5;
  expect_error([&] { resolve_head_policies(plain, 2, 2); }, ErrorCode::invalid_argument,
               {"sparsity 0.5 is given without head scores"});
  // A window of sink only or recent only is fine.
  plain = scored(grid(2, 2, s), 0.5);
  plain.recent = 0;
  EXPECT_NO_THROW(resolve_head_policies(plain, 2, 2));
  plain.recent = 1;
  plain.sink = 0;
  EXPECT_NO_THROW(resolve_head_policies(plain, 2, 2));
}

TEST(HeadPolicyResolve, QuantileMatchesBruteForce) {
  // LLaVA-OneVision-like geometry: 28 layers x 4 KV heads.
  const uint32_t layers = 28, heads = 4;
  const size_t n = size_t(layers) * heads;
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::uniform_int_distribution<int> coarse(0, 5);
  for (int trial = 0; trial < 3; ++trial) {
    // Trial 2 draws from six values only: many ties, broken by (layer, head).
    std::vector<double> s(n);
    for (double& x : s) x = trial == 2 ? 0.25 * coarse(rng) : u(rng);
    for (double sp : {0.0, 0.25, 0.5, 0.9, 0.999}) {
      for (auto lh : {std::make_pair(HeadPolicy::window, HeadPolicy::full),
                      std::make_pair(HeadPolicy::vidkv, HeadPolicy::full),
                      std::make_pair(HeadPolicy::window, HeadPolicy::vidkv)}) {
        SCOPED_TRACE("trial " + std::to_string(trial) + " s " + std::to_string(sp) + " low " +
                     head_policy_name(lh.first) + " high " + head_policy_name(lh.second));
        HeadPolicySpec spec = scored(grid(layers, heads, s), sp);
        spec.low = lh.first;
        spec.high = lh.second;
        // The order of the scores does not matter.
        std::shuffle(spec.scores.begin(), spec.scores.end(), rng);
        const std::vector<HeadPolicy> got = resolve_head_policies(spec, layers, heads);
        EXPECT_EQ(got, brute_force(s, sp, lh.first, lh.second));
        EXPECT_EQ(size_t(std::count(got.begin(), got.end(), lh.first)), size_t(std::floor(sp * double(n))));
        // Every low head scores at most every high one.
        double max_low = -kInf, min_high = kInf;
        for (size_t i = 0; i < n; ++i) {
          if (got[i] == lh.first) max_low = std::max(max_low, s[i]);
          else min_high = std::min(min_high, s[i]);
        }
        EXPECT_LE(max_low, min_high);
      }
    }
  }
}

TEST(HeadPolicyResolve, TiesGoToLowerLayerAndHead) {
  // All equal: the first floor(s x n) heads in layer-major order take low.
  HeadPolicySpec spec = scored(grid(2, 2, {1, 1, 1, 1}), 0.5);
  spec.low = HeadPolicy::vidkv;
  EXPECT_EQ(resolve_head_policies(spec, 2, 2),
            (std::vector<HeadPolicy>{HeadPolicy::vidkv, HeadPolicy::vidkv, HeadPolicy::full, HeadPolicy::full}));
  // A tie across layers at the cut: layer 0 head 1 goes below it, layer 1 head 0 stays above.
  spec = scored(grid(2, 2, {0.9, 0.5, 0.5, 0.9}), 0.25);
  EXPECT_EQ(resolve_head_policies(spec, 2, 2),
            (std::vector<HeadPolicy>{HeadPolicy::full, HeadPolicy::window, HeadPolicy::full, HeadPolicy::full}));
  // 0.74 x 4 = 2.96: floor gives 2 heads, not 3.
  spec = scored(grid(2, 2, {4, 3, 2, 1}), 0.74);
  EXPECT_EQ(resolve_head_policies(spec, 2, 2),
            (std::vector<HeadPolicy>{HeadPolicy::full, HeadPolicy::full, HeadPolicy::window, HeadPolicy::window}));
  // s = 0: nobody is below the quantile.
  spec.sparsity = 0.0;
  EXPECT_EQ(resolve_head_policies(spec, 2, 2), std::vector<HeadPolicy>(4, HeadPolicy::full));
}

// ---- settings ----

TEST(HeadPolicySettings, ValidateChecksHeadPolicies) {
  auto with = [](auto change) {
    CacheSettings s = preset("k1.5-v1.58");
    change(s.head_policies);
    return s;
  };
  auto invalid = [&](auto change, const std::vector<std::string>& parts) {
    const CacheSettings s = with(change);
    std::vector<std::string> all = parts;
    all.push_back("'k1.5-v1.58'");
    expect_error([&] { validate(s); }, ErrorCode::invalid_argument, all);
  };
  invalid([](HeadPolicySpec& h) { h.sink = h.recent = 0; }, {"window sink + recent must be > 0"});
  invalid([](HeadPolicySpec& h) { h.sparsity = 0.5; }, {"sparsity 0.5 is given without head scores"});
  invalid([](HeadPolicySpec& h) { h.sparsity = kNaN; }, {"sparsity nan is given without head scores"});
  invalid([](HeadPolicySpec& h) {
    h.heads = {HeadPolicy::full};
    h.scores = {{0, 0, 1.0}};
  }, {"both an explicit list (1 heads) and 1 head scores"});
  for (double bad : {-0.5, 1.0, kNaN, kInf}) {
    SCOPED_TRACE(bad);
    invalid([&](HeadPolicySpec& h) {
      h.scores = {{0, 0, 1.0}};
      h.sparsity = bad;
    }, {"sparsity", "is not in [0, 1)"});
  }
  invalid([](HeadPolicySpec& h) { h.scores = {{0, 0, 1.0}, {3, 1, kInf}}; }, {"score of layer 3 head 1 is inf"});
  invalid([](HeadPolicySpec& h) { h.high = HeadPolicy(3); }, {"high policy enum value 3"});
  invalid([](HeadPolicySpec& h) { h.low = HeadPolicy(4); }, {"low policy enum value 4"});
  invalid([](HeadPolicySpec& h) { h.heads = {HeadPolicy::full, HeadPolicy(8)}; }, {"enum value 8 at index 1"});
  // Fine: scores with s = 0 (every head high), a window of one kind of token only, a list.
  EXPECT_NO_THROW(validate(with([](HeadPolicySpec& h) { h.scores = {{0, 0, 1.0}}; })));
  EXPECT_NO_THROW(validate(with([](HeadPolicySpec& h) { h.sink = 0; })));
  EXPECT_NO_THROW(validate(with([](HeadPolicySpec& h) { h.heads = {HeadPolicy::window, HeadPolicy::vidkv}; })));
}

TEST(HeadPolicySettings, SameConfigurationNameAndDescribe) {
  const CacheSettings base = preset("k1.5-v1.58");
  CacheSettings s = base;
  s.head_policies = scored(grid(1, 2, {0.1, 0.9}), 0.5);
  s.head_policies.score_source = "gates.csv";
  EXPECT_FALSE(same_configuration(base, s));
  CacheSettings t = s;
  t.head_policies.score_source = "other.json";
  EXPECT_TRUE(same_configuration(s, t));
  t.head_policies.sparsity = 0.25;
  EXPECT_FALSE(same_configuration(s, t));
  // Never named as the preset it is not.
  EXPECT_EQ(settings_name(s), "k1.5-v1.58-heads");
  CacheSettings f = preset("fp16");
  f.head_policies.heads = {HeadPolicy::full, HeadPolicy::window, HeadPolicy::window};
  EXPECT_EQ(settings_name(f), "fp16-heads");
  // Even an unused window setting makes the settings differ from the preset.
  CacheSettings w = base;
  w.head_policies.sink = 4;
  EXPECT_FALSE(same_configuration(base, w));
  EXPECT_NE(settings_name(w), "k1.5-v1.58");

  EXPECT_EQ(describe(s),
            "k1.5-v1.58: keys VidKV nbits 1.5 (head, fft half), values 1.58-bit trits (lsq), group 32, residual 128"
            ", heads: scores from gates.csv, sparsity 0.5 -> window (sink 16, recent 64) / full");
  s.head_policies.score_source.clear();
  s.head_policies.low = HeadPolicy::vidkv;
  s.head_policies.high = HeadPolicy::window;
  s.head_policies.recent = 32;
  EXPECT_EQ(describe(s),
            "k1.5-v1.58: keys VidKV nbits 1.5 (head, fft half), values 1.58-bit trits (lsq), group 32, residual 128"
            ", heads: 2 scores, sparsity 0.5 -> vidkv / window (sink 16, recent 32)");
  EXPECT_EQ(describe(f), "fp16: keys fp16, values fp16 (no quantization), heads: explicit list (3: 1 full, "
                         "2 window (sink 16, recent 64))");
  // Uniform settings describe as before (Presets.Describe checks the exact text).
  EXPECT_EQ(describe(base).find("heads:"), std::string::npos);
}

// ---- configuration text ----

TEST(HeadPolicyConfig, ExplicitLists) {
  const CacheSettings flat = parse_settings(vlm("'head_policies': ['vidkv', 'full', \"window\", 'vidkv',]"));
  EXPECT_EQ(flat.head_policies.heads,
            (std::vector<HeadPolicy>{HeadPolicy::vidkv, HeadPolicy::full, HeadPolicy::window, HeadPolicy::vidkv}));
  EXPECT_TRUE(flat.head_policies.scores.empty());
  EXPECT_EQ(flat.name, "k1.5-v1.58-heads");
  EXPECT_TRUE(flat.ignored_keys.empty());
  const CacheSettings nested = parse_settings(
      vlm("'head_policies': [['vidkv', 'full'], ('window', 'vidkv')], 'window_sink': 4, 'window_recent': 0"));
  EXPECT_EQ(nested.head_policies.heads, flat.head_policies.heads);
  EXPECT_EQ(nested.head_policies.sink, 4u);
  EXPECT_EQ(nested.head_policies.recent, 0u);
  EXPECT_FALSE(same_configuration(flat, nested));  // the window differs
  EXPECT_EQ(resolve_head_policies(nested.head_policies, 2, 2), flat.head_policies.heads);
}

TEST(HeadPolicyConfig, ScoreFiles) {
  const std::string path = temp_file("gates.csv", "layer,head,score\n0,0,0.3\n0,1,0.1\n1,0,0.2\n1,1,0.4\n");
  const std::string text = vlm("'head_scores': '" + path +
                               "', 'sparsity': 0.5, 'low_policy': 'vidkv', 'high_policy': 'window', "
                               "'window_sink': 8, 'window_recent': 24");
  const CacheSettings s = parse_settings(text);
  const HeadPolicySpec& h = s.head_policies;
  expect_scores(h.scores, read_head_scores(path));
  EXPECT_EQ(h.score_source, path);
  EXPECT_EQ(h.sparsity, 0.5);
  EXPECT_EQ(h.low, HeadPolicy::vidkv);
  EXPECT_EQ(h.high, HeadPolicy::window);
  EXPECT_EQ(h.sink, 8u);
  EXPECT_EQ(h.recent, 24u);
  EXPECT_TRUE(h.heads.empty());
  EXPECT_EQ(resolve_head_policies(h, 2, 2),
            (std::vector<HeadPolicy>{HeadPolicy::window, HeadPolicy::vidkv, HeadPolicy::vidkv, HeadPolicy::window}));
  EXPECT_NE(describe(s).find(", heads: scores from " + path + ", sparsity 0.5 -> vidkv / window (sink 8, recent 24)"),
            std::string::npos)
      << describe(s);
  // Defaults: sparsity 0, window / full, sink 16, recent 64; JSON files too.
  const std::string json = temp_file("gates.json", "[[0.3, 0.1], [0.2, 0.4]]");
  const CacheSettings d = parse_settings(vlm("'head_scores': '" + json + "'"));
  EXPECT_EQ(d.head_policies.sparsity, 0.0);
  EXPECT_EQ(d.head_policies.low, HeadPolicy::window);
  EXPECT_EQ(d.head_policies.high, HeadPolicy::full);
  EXPECT_EQ(d.head_policies.sink, 16u);
  EXPECT_EQ(d.head_policies.recent, 64u);
  expect_scores(d.head_policies.scores, h.scores);
  // An integer sparsity is a number like any other.
  EXPECT_EQ(parse_settings(vlm("'head_scores': '" + json + "', 'sparsity': 0")).head_policies.sparsity, 0.0);
}

TEST(HeadPolicyConfig, BadValuesNameKeyAndOffset) {
  const std::string good = temp_file("good.csv", "0,0,1\n0,1,2\n");
  const std::string broken = temp_file("broken.csv", "0,0,1\n0,x,2\n");
  const std::string missing = ::testing::TempDir() + "vidkv_missing_gates.csv";
  std::remove(missing.c_str());
  const std::string scores = "'head_scores': '" + good + "', ";
  // Each case: the extra keys, the key the message names, the value's text (its first occurrence
  // after the key is the offset named; "" for no check), what the message says.
  const struct { std::string extra, key, token, why; ErrorCode code = ErrorCode::invalid_argument; } cases[] = {
      {"'head_policies': 'full'", "head_policies", "'full'", "is not a list of policy names"},
      {"'head_policies': []", "head_policies", "[]", "is empty"},
      {"'head_policies': ['full', 'fast']", "head_policies[1]", "'fast'", "is not a known policy"},
      {"'head_policies': ['full', 3]", "head_policies[1]", "3", "is not a policy name"},
      {"'head_policies': ['full', ['full']]", "head_policies[1]", "['full']", "is not a policy name"},
      {"'head_policies': [['full'], ['full', 'full']]", "head_policies[1]", "['full', 'full']",
       "has 2 policies; head_policies[0] has 1"},
      {"'head_policies': [['full'], 'full']", "head_policies[1]", "", "is not a list of policy names"},
      {"'head_policies': [[], []]", "head_policies[0]", "[]", "is empty"},
      {"'head_policies': [['full', 'Full']]", "head_policies[0][1]", "'Full'", "is not a known policy"},
      {"'head_policies': ['full'], " + scores.substr(0, scores.size() - 2), "head_scores", "'" + good + "'",
       "together with 'head_policies'"},
      {"'head_scores': 3", "head_scores", "3", "is not a file name"},
      {"'head_scores': ''", "head_scores", "''", "is an empty file name"},
      {"'head_scores': '" + missing + "'", "head_scores", "'" + missing + "'", "cannot open", ErrorCode::io_error},
      {"'head_scores': '" + broken + "'", "head_scores", "'" + broken + "'", "line 2"},
      {scores + "'sparsity': 1.0", "sparsity", "1.0", "is not in [0, 1)"},
      {scores + "'sparsity': -0.1", "sparsity", "-0.1", "is not in [0, 1)"},
      {scores + "'sparsity': '0.5'", "sparsity", "'0.5'", "is not a number"},
      {scores + "'sparsity': None", "sparsity", "None", "is not a number"},
      {"'sparsity': 0.5", "sparsity", "0.5", "without 'head_scores'"},
      {"'head_policies': ['full'], 'sparsity': 0.5", "sparsity", "0.5", "without 'head_scores'"},
      {"'low_policy': 'full'", "low_policy", "'full'", "without 'head_scores'"},
      {"'high_policy': 'full'", "high_policy", "'full'", "without 'head_scores'"},
      {scores + "'low_policy': 'sparse'", "low_policy", "'sparse'", "is not a known policy"},
      {scores + "'high_policy': 1", "high_policy", "1", "is not a policy name"},
      {scores + "'window_sink': -1", "window_sink", "-1", "is not a count"},
      {scores + "'window_recent': 1.5", "window_recent", "1.5", "is not an integer"},
      {scores + "'window_recent': 4294967296", "window_recent", "4294967296", "is not a count"},
      {scores + "'window_sink': torch.x", "window_sink", "torch.x", "is not an integer"},
      {"'window_sink': 4", "window_sink", "4", "without 'head_policies' or 'head_scores'"},
      {"'window_recent': 4", "window_recent", "4", "without 'head_policies' or 'head_scores'"},
      {scores + "'window_sink': 0, 'window_recent': 0", "window_recent", "0", "sink + recent 0"},
      {scores + "'window_recent': 0, 'window_sink': 0", "window_sink", "0", "sink + recent 0"},
  };
  for (const auto& c : cases) {
    const std::string text = vlm(c.extra);
    std::vector<std::string> parts = {"config: '" + c.key + "' = ", c.why};
    if (!c.token.empty()) {
      const size_t key_at = text.find("'" + c.key.substr(0, c.key.find('[')) + "'");
      ASSERT_NE(key_at, std::string::npos) << text;
      parts.push_back(" at byte " + std::to_string(text.find(c.token, key_at + c.key.size())) + " ");
      // Lists are shown as "a list", other values as written.
      if (c.token[0] != '[') parts.push_back("'" + c.key + "' = " + c.token + " at byte");
    }
    expect_parse_error(text, c.code, parts);
  }
  // Element offsets, spelled out.
  const std::string text = vlm("'head_policies': [['full', 'vidkv'], ['window', 'Full']]");
  expect_parse_error(text, ErrorCode::invalid_argument,
                     {"'head_policies[1][1]' = 'Full' " + at_byte(text, "'Full'"), "is not a known policy"});
  // A score file that does not fit the cache is found when the cache resolves it.
  const CacheSettings s = parse_settings(vlm(scores + "'sparsity': 0.5"));
  expect_error([&] { resolve_head_policies(s.head_policies, 2, 2); }, ErrorCode::invalid_argument,
               {good, "layer 1 head 0 has no score"});
}
