// vidkv-bench's per-head policy options without a device (--head-scores, --sparsity, the policies
// and the window): parsing and its errors, synthetic scores, the spec handed to the cache (checked
// against the geometry, a score file read from disk), and the JSON and table of policy runs. The
// runs themselves are in test_bench_cli.cpp (the process, on the device).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "bench/head_policies.hpp"
#include "bench/options.hpp"
#include "bench/report_json.hpp"
#include "bench/report_table.hpp"
#include "common/json.hpp"
#include "common/random_data.hpp"
#include "vidkv/error.hpp"

namespace vidkv::test {
namespace {

using namespace vidkv::bench;
namespace fs = std::filesystem;

BenchOptions parse(std::vector<const char*> args) {
  args.insert(args.begin(), "vidkv-bench");
  return parse_options(int(args.size()), args.data());
}

std::string parse_error(std::vector<const char*> args) {
  try {
    parse(std::move(args));
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    return e.what();
  }
  return "(accepted)";
}

TEST(BenchPolicyOptions, NoHeadScoresMeansNoPolicies) {
  const BenchOptions o = parse({"--frames", "4"});
  EXPECT_FALSE(o.head_policies());
  EXPECT_TRUE(o.sparsity.empty());
}

TEST(BenchPolicyOptions, DefaultsWithHeadScores) {
  const BenchOptions o = parse({"--head-scores", "scores.csv"});
  EXPECT_TRUE(o.head_policies());
  EXPECT_EQ(o.head_scores, "scores.csv");
  EXPECT_EQ(o.sparsity, std::vector<double>{0.0});
  EXPECT_EQ(o.low_policy, "window");
  EXPECT_EQ(o.high_policy, "full");
  EXPECT_EQ(o.window_sink, 16u);
  EXPECT_EQ(o.window_recent, 64u);
}

TEST(BenchPolicyOptions, ParsesEveryPolicyOption) {
  const BenchOptions o = parse({"--head-scores", "synthetic", "--sparsity", "0,0.25,0.9", "--low-policy", "vidkv",
                                "--high-policy", "vidkv", "--window-sink", "0", "--window-recent", "8"});
  EXPECT_EQ(o.head_scores, "synthetic");
  EXPECT_EQ(o.sparsity, (std::vector<double>{0.0, 0.25, 0.9}));
  EXPECT_EQ(o.low_policy, "vidkv");
  EXPECT_EQ(o.high_policy, "vidkv");
  EXPECT_EQ(o.window_sink, 0u);
  EXPECT_EQ(o.window_recent, 8u);
  // Option order does not matter: --sparsity before --head-scores.
  EXPECT_EQ(parse({"--sparsity", "0.5", "--head-scores", "x.json"}).sparsity, std::vector<double>{0.5});
}

TEST(BenchPolicyOptions, RefusesBadPolicyOptionsNamingThem) {
  const std::vector<std::pair<std::vector<const char*>, std::string>> cases = {
      {{"--head-scores", "s.csv", "--sparsity", "1.0"}, "--sparsity 1.0: not a number in [0, 1)"},
      {{"--head-scores", "s.csv", "--sparsity", "1"}, "--sparsity 1:"},
      {{"--head-scores", "s.csv", "--sparsity", "-0.1"}, "--sparsity -0.1"},
      {{"--head-scores", "s.csv", "--sparsity", "0.2,x"}, "--sparsity x"},
      {{"--head-scores", "s.csv", "--sparsity", "0.2,,0.4"}, "empty item"},
      {{"--head-scores", "s.csv", "--sparsity", "nan"}, "--sparsity nan"},
      {{"--sparsity", "0.5"}, "--sparsity describes per-head policies: give --head-scores"},
      {{"--low-policy", "vidkv"}, "--low-policy describes per-head policies"},
      {{"--window-recent", "8"}, "--window-recent describes per-head policies"},
      {{"--head-scores", "s.csv", "--low-policy", "full"}, "--low-policy full: window or vidkv"},
      {{"--head-scores", "s.csv", "--high-policy", "window"}, "--high-policy window: full or vidkv"},
      {{"--head-scores", "s.csv", "--window-sink", "0", "--window-recent", "0"}, "leave window heads no tokens"},
      {{"--head-scores", "s.csv", "--window-sink", "-1"}, "--window-sink -1"},
      {{"--head-scores", ""}, "--head-scores needs a file"},
      {{"--head-scores"}, "--head-scores needs a value"},
  };
  for (const auto& [args, message] : cases) {
    const std::string what = parse_error(args);
    EXPECT_NE(what.find(message), std::string::npos) << "got: " << what << "\nexpected: " << message;
  }
}

TEST(BenchHeadScores, SyntheticScoresAreDeterministicAndCoverEveryHead) {
  const auto a = synthetic_head_scores(3, 4, 7), b = synthetic_head_scores(3, 4, 7), c = synthetic_head_scores(3, 4, 8);
  ASSERT_EQ(a.size(), 12u);
  bool differs = false;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].layer, i / 4);
    EXPECT_EQ(a[i].head, i % 4);
    EXPECT_GE(a[i].score, 0.0);
    EXPECT_LT(a[i].score, 1.0);
    EXPECT_EQ(a[i].score, b[i].score);
    differs = differs || a[i].score != c[i].score;
  }
  EXPECT_TRUE(differs) << "another seed gives other scores";
  // Not all alike: the quantile split has something to rank.
  const auto [lo, hi] = std::minmax_element(a.begin(), a.end(), [](const HeadScore& x, const HeadScore& y) {
    return x.score < y.score;
  });
  EXPECT_LT(lo->score, hi->score);
}

class BenchHeadScoreFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() /
          ("vidkv_bench_policies_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) +
           "_" + std::to_string(tools::test_seed()));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  std::string write(const std::string& name, const std::string& text) const {
    const std::string path = (dir / name).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  fs::path dir;
};

TEST_F(BenchHeadScoreFiles, SpecFromACsvFileAtEachSparsity) {
  // 2 layers x 2 heads; the two lowest scores are layer 1 head 0 and layer 0 head 1.
  BenchOptions o = parse({"--head-scores", "placeholder", "--sparsity", "0,0.5", "--window-sink", "2",
                          "--window-recent", "6"});
  o.head_scores = write("scores.csv", "layer,head,score\n0,0,0.9\n0,1,0.2\n1,0,0.1\n1,1,0.7\n");
  HeadPolicySpec spec = head_policy_spec(o, 2, 2);
  EXPECT_EQ(spec.scores.size(), 4u);
  EXPECT_EQ(spec.score_source, o.head_scores);
  EXPECT_EQ(spec.low, HeadPolicy::window);
  EXPECT_EQ(spec.high, HeadPolicy::full);
  EXPECT_EQ(spec.sink, 2u);
  EXPECT_EQ(spec.recent, 6u);
  EXPECT_EQ(spec.sparsity, 0.0);
  EXPECT_EQ(resolve_head_policies(spec, 2, 2), std::vector<HeadPolicy>(4, HeadPolicy::full));
  spec.sparsity = 0.5;
  const std::vector<HeadPolicy> half = resolve_head_policies(spec, 2, 2);
  EXPECT_EQ(half, (std::vector<HeadPolicy>{HeadPolicy::full, HeadPolicy::window, HeadPolicy::window,
                                           HeadPolicy::full}));
  // The decode timing's one-layer cache: layer 1's row as an explicit list.
  const HeadPolicySpec one = layer_policy_spec(spec, 2, 2, 1);
  EXPECT_TRUE(one.scores.empty());
  EXPECT_EQ(one.sparsity, 0.0);
  EXPECT_EQ(one.heads, (std::vector<HeadPolicy>{HeadPolicy::window, HeadPolicy::full}));
  EXPECT_EQ(resolve_head_policies(one, 1, 2), one.heads);
}

TEST_F(BenchHeadScoreFiles, JsonFilesAndSyntheticScoresToo) {
  BenchOptions o = parse({"--head-scores", "placeholder", "--high-policy", "vidkv"});
  o.head_scores = write("scores.json", "[[0.5, 0.25], [0.75, 1.0]]");
  const HeadPolicySpec spec = head_policy_spec(o, 2, 2);
  EXPECT_EQ(spec.scores.size(), 4u);
  EXPECT_EQ(spec.high, HeadPolicy::vidkv);
  o.head_scores = "synthetic";
  const HeadPolicySpec synthetic = head_policy_spec(o, 28, 4);
  EXPECT_EQ(synthetic.scores.size(), 112u);
  EXPECT_NE(synthetic.score_source.find("synthetic"), std::string::npos);
}

TEST_F(BenchHeadScoreFiles, BadFilesFailNamingTheProblem) {
  BenchOptions o = parse({"--head-scores", "placeholder", "--sparsity", "0.5"});
  auto error = [&](const std::string& path) -> std::string {
    o.head_scores = path;
    try {
      (void)head_policy_spec(o, 2, 2);
    } catch (const Error& e) {
      return e.what();
    }
    return "(accepted)";
  };
  const std::string absent = (dir / "absent.csv").string();
  EXPECT_NE(error(absent).find("absent.csv"), std::string::npos) << error(absent);
  // Malformed: the line is named.
  const std::string bad = error(write("bad.csv", "0,0,0.5\n0,1,zero\n"));
  EXPECT_NE(bad.find("line 2"), std::string::npos) << bad;
  // A file for another geometry: a layer the workload does not have, or heads missing; the
  // message names the file.
  const std::string deep = error(write("deep.csv", "0,0,1\n0,1,2\n1,0,3\n1,1,4\n5,0,1\n"));
  EXPECT_NE(deep.find("layer 5"), std::string::npos) << deep;
  EXPECT_NE(deep.find("deep.csv"), std::string::npos) << deep;
  const std::string short_file = error(write("short.csv", "0,0,1\n0,1,2\n"));
  EXPECT_NE(short_file.find("layer 1 head 0 has no score"), std::string::npos) << short_file;
}

// One size, three sparsities of one preset: the JSON carries sparsity beside bytes and
// attn_rel_err, bytes per policy, null bits when no head takes the preset; a plain result none of it.
std::vector<SizeResults> policy_sizes() {
  SizeResults s;
  s.workload.source = "generator";
  s.workload.tokens = 1000;
  s.workload.layers = 2;
  s.workload.kv_heads = 4;
  s.error_layers = {0, 1};
  for (double sparsity : {0.0, 0.5}) {
    PresetResult r;
    r.preset = "k1.5-v1.58";
    r.sparsity = sparsity;
    r.tokens = 1000;
    r.policy_heads[size_t(HeadPolicy::full)] = sparsity == 0.0 ? 8 : 4;
    r.policy_heads[size_t(HeadPolicy::window)] = sparsity == 0.0 ? 0 : 4;
    r.policy_bytes[size_t(HeadPolicy::full)] = r.policy_heads[size_t(HeadPolicy::full)] * 1000u;
    r.policy_bytes[size_t(HeadPolicy::window)] = r.policy_heads[size_t(HeadPolicy::window)] * 80u;
    r.bytes = r.policy_bytes[1] + r.policy_bytes[2];
    r.fp16_bytes = 8000;
    r.attn_rel_err = sparsity;
    r.timing_policies = {HeadPolicy::full, HeadPolicy::window, HeadPolicy::full, HeadPolicy::full};
    r.done = Stage::timed;
    s.results.push_back(r);
  }
  PresetResult with_preset;
  with_preset.preset = "2bit";
  with_preset.sparsity = 0.5;
  with_preset.policy_heads[size_t(HeadPolicy::vidkv)] = 4;
  with_preset.bits_k = 3.0;
  with_preset.done = Stage::stored;
  s.results.push_back(with_preset);
  PresetResult refused;
  refused.preset = "kivi";
  refused.sparsity = 0.9;
  refused.error = "unsupported: no";
  s.results.push_back(refused);
  PresetResult plain;
  plain.preset = "fp16";
  plain.bits_k = 16;
  plain.done = Stage::timed;
  s.results.push_back(plain);
  return {s};
}

TEST(BenchPolicyReports, JsonCarriesSparsityAndBytesPerPolicy) {
  BenchOptions o = parse({"--head-scores", "synthetic", "--sparsity", "0,0.5,0.9"});
  const json::Value root = json::parse(json::write(report_json(RunSummary{}, o, policy_sizes(), {}), true));
  const auto& hp = root["head_policies"];
  EXPECT_EQ(hp["scores"].as_string(), "synthetic");
  EXPECT_EQ(hp["low"].as_string(), "window");
  EXPECT_EQ(hp["high"].as_string(), "full");
  EXPECT_EQ(hp["sink"].as_number(), 16.0);
  EXPECT_EQ(hp["recent"].as_number(), 64.0);
  EXPECT_EQ(hp["sparsities"].as_array().size(), 3u);
  const auto& results = root["results"].as_array();
  ASSERT_EQ(results.size(), 5u);
  for (size_t i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    for (const char* key : {"sparsity", "bytes", "attn_rel_err", "policy_bytes", "policy_heads", "timing_layer_policies"})
      EXPECT_TRUE(results[i].contains(key)) << key;
    for (const char* policy : {"vidkv", "full", "window"}) {
      EXPECT_TRUE(results[i]["policy_bytes"].contains(policy)) << policy;
      EXPECT_TRUE(results[i]["policy_heads"].contains(policy)) << policy;
    }
  }
  EXPECT_EQ(results[0]["sparsity"].as_number(), 0.0);
  EXPECT_EQ(results[1]["sparsity"].as_number(), 0.5);
  EXPECT_EQ(results[1]["policy_bytes"]["full"].as_number(), 4000.0);
  EXPECT_EQ(results[1]["policy_bytes"]["window"].as_number(), 320.0);
  EXPECT_EQ(results[1]["policy_heads"]["window"].as_number(), 4.0);
  EXPECT_EQ(results[1]["bytes"].as_number(), 4320.0);
  EXPECT_EQ(results[1]["attn_rel_err"].as_number(), 0.5);
  EXPECT_EQ(results[1]["timing_layer_policies"][1].as_string(), "window");
  // No head takes the preset: no bits to report; one that does keeps them.
  EXPECT_TRUE(results[0]["bits_k"].is_null());
  EXPECT_TRUE(results[0]["bits_v"].is_null());
  EXPECT_EQ(results[2]["bits_k"].as_number(), 3.0);
  // Not stored: the policy keys are there, null.
  EXPECT_EQ(results[3]["sparsity"].as_number(), 0.9);
  EXPECT_TRUE(results[3]["policy_bytes"]["full"].is_null());
  EXPECT_EQ(results[3]["error"].as_string(), "unsupported: no");
  // A plain result (and a run without --head-scores) has none of the policy keys.
  for (const char* key : {"sparsity", "policy_bytes", "policy_heads", "timing_layer_policies"})
    EXPECT_FALSE(results[4].contains(key)) << key;
  EXPECT_EQ(results[4]["bits_k"].as_number(), 16.0);
  const json::Value plain = json::parse(json::write(report_json(RunSummary{}, BenchOptions{}, {}, {}), true));
  EXPECT_FALSE(plain.contains("head_policies"));
}

TEST(BenchPolicyReports, TableHasASparsityPerRowAndMemoryPerPolicy) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  print_size_table(f, policy_sizes().front(), 2, 2);
  std::rewind(f);
  std::string text;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
  std::fclose(f);
  EXPECT_NE(text.find("k1.5-v1.58 s=0 "), std::string::npos) << text;
  EXPECT_NE(text.find("k1.5-v1.58 s=0.5 "), std::string::npos) << text;
  EXPECT_NE(text.find("memory per head policy"), std::string::npos) << text;
  EXPECT_NE(text.find("0/4/4"), std::string::npos) << text;  // heads vidkv/full/window at s=0.5
  EXPECT_NE(text.find("full,window,full,full"), std::string::npos) << text;
  EXPECT_NE(text.find("kivi s=0.9"), std::string::npos) << text;
}

}  // namespace
}  // namespace vidkv::test
