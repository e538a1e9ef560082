// vidkv-bench end to end on tiny workloads (the process, as a user runs it, with the validation
// layer on through the test environment, so a validation message fails the run): the JSON has
// every key scripts rely on with plausible values, the trace is Chrome trace-event JSON with GPU
// kernels in it, the SVG is well-formed XML; sweeps, dumps, decode over cycled layer copies, and
// bad options. Also vidkv-attention-bench's layer cycling and markdown rows (scripts/gpu-check).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "bench/video_generator.hpp"
#include "common/json.hpp"
#include "common/npy.hpp"
#include "common/random_data.hpp"
#include "test_bench_xml.hpp"
#include "vidkv/version.hpp"

namespace vidkv::test {
namespace {

namespace fs = std::filesystem;

struct BenchRun {
  int status = -1;
  std::string out, err;
};

class BenchCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() /
          ("vidkv_bench_cli_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
           std::to_string(tools::test_seed()));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  std::string file(const std::string& name) const { return (dir / name).string(); }

  BenchRun bench(const std::string& args) const { return run(VIDKV_BENCH_EXE, args); }
  BenchRun attention_bench(const std::string& args) const { return run(VIDKV_ATTENTION_BENCH_EXE, args); }
  BenchRun run(const char* exe, const std::string& args) const {
    const std::string command = std::string("'") + exe + "' " + args + " > '" + file("stdout.txt") +
                                "' 2> '" + file("stderr.txt") + "'";
    BenchRun r;
    const int raw = std::system(command.c_str());
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    r.out = read(file("stdout.txt"));
    r.err = read(file("stderr.txt"));
    return r;
  }
  static std::string read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  fs::path dir;
};

// The tiny workload: 2 frames of 32 tokens + 16 text tokens, 2 layers; decode over 2 layer copies
// (the default, copies past 64 MiB, would be hundreds of a layer this small).
const char* kTiny = "--frames 2 --tokens-per-frame 32 --text-tokens 16 --layers 2 --queries 2 --runs 2 --no-progress "
                    "--decode-layers 2";

TEST_F(BenchCli, DefaultPresetsWriteJsonTraceAndPlot) {
  const BenchRun r = bench(std::string(kTiny) + " --json '" + file("r.json") + "' --trace '" + file("r.trace.json") +
                      "' --plot '" + file("r.svg") + "'");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("preset"), std::string::npos);
  EXPECT_NE(r.out.find("GPU time per kernel"), std::string::npos);
  EXPECT_EQ(r.err.find("\r"), std::string::npos) << "no progress bar when stderr is not a terminal";

  const json::Value root = json::parse_file(file("r.json"));
  const auto& device = root["device"];
  EXPECT_FALSE(device["name"].as_string().empty());
  EXPECT_TRUE(std::set<std::string>({"cpu", "integrated", "discrete", "virtual"}).count(device["type"].as_string()))
      << device["type"].as_string();
  EXPECT_TRUE(device["driver"].is_string());
  EXPECT_GT(root["copy_gbps"].as_number(), 0.0);
  const auto& results = root["results"].as_array();
  ASSERT_EQ(results.size(), 6u);
  std::set<std::string> presets;
  for (const auto& res : results) {
    const std::string preset = res["preset"].as_string();
    SCOPED_TRACE(preset);
    presets.insert(preset);
    EXPECT_EQ(res["tokens"].as_number(), 2 * 32 + 16.0);
    for (const char* key : {"bits_k", "bits_v", "bytes", "fp16_bytes", "k_rel_l2", "v_rel_l2", "attn_rel_err",
                            "prefill_ms", "decode_ms", "fp16_decode_ms", "speedup_vs_fp16", "achieved_gbps"})
      ASSERT_TRUE(res.contains(key)) << key;
    // Without --head-scores the results are plain caches, with no per-head policy keys.
    for (const char* key : {"sparsity", "policy_bytes", "policy_heads"}) EXPECT_FALSE(res.contains(key)) << key;
    if (res.contains("error")) {
      // STP while the cache takes it only in part; then the row is measured like the others.
      // What was not measured is null, and so is everything after it.
      EXPECT_EQ(preset, "k1.5-v1.58-stp");
      EXPECT_EQ(res["error"].as_string().rfind("unsupported: ", 0), 0u) << res["error"].as_string();
      EXPECT_TRUE(res["decode_ms"].is_null());
      if (res["bits_k"].is_null()) {
        EXPECT_TRUE(res["k_rel_l2"].is_null());
      }
      if (res["k_rel_l2"].is_null()) {
        EXPECT_TRUE(res["attn_rel_err"].is_null());
      }
      continue;
    }
    const double bits_k = res["bits_k"].as_number(), bits_v = res["bits_v"].as_number();
    EXPECT_GT(bits_k, 1.0);
    EXPECT_LE(bits_k, 16.0);
    EXPECT_GT(bits_v, 1.0);
    EXPECT_LE(res["bytes"].as_number(), res["fp16_bytes"].as_number());
    EXPECT_EQ(res["fp16_bytes"].as_number(), 2.0 * 80 * 4 * 128 * 2 * 2);  // layers x tokens x heads x D x K,V x 2 B
    EXPECT_GT(res["decode_ms"].as_number(), 0.0);
    EXPECT_GT(res["fp16_decode_ms"].as_number(), 0.0);
    EXPECT_NEAR(res["speedup_vs_fp16"].as_number(), res["fp16_decode_ms"].as_number() / res["decode_ms"].as_number(),
                1e-9);
    EXPECT_GT(res["achieved_gbps"].as_number(), 0.0);
    EXPECT_GT(res["prefill_ms"].as_number(), 0.0);
    EXPECT_EQ(res["decode_layers"].as_number(), 2.0);
    EXPECT_EQ(res["decode_cycled_bytes"].as_number(), 2.0 * res["decode_bytes"].as_number());
    if (preset == "fp16") {
      EXPECT_EQ(bits_k, 16.0);
      EXPECT_EQ(res["k_rel_l2"].as_number(), 0.0);
      EXPECT_EQ(res["v_rel_l2"].as_number(), 0.0);
      EXPECT_LT(res["attn_rel_err"].as_number(), 1e-4);  // the shader against float64, nothing quantized
      EXPECT_EQ(res["bytes"].as_number(), res["fp16_bytes"].as_number());
    } else {
      // Quantized at 1.5 to 3 bits: a real error, but far from noise.
      for (const char* key : {"k_rel_l2", "v_rel_l2", "attn_rel_err"}) {
        EXPECT_GT(res[key].as_number(), 0.01) << key;
        EXPECT_LT(res[key].as_number(), 0.9) << key;
      }
      EXPECT_LT(bits_k, 4.0);
    }
  }
  EXPECT_EQ(presets, std::set<std::string>({"fp16", "2bit", "kivi", "k1.5-v2", "k1.5-v1.58", "k1.5-v1.58-stp"}));
  EXPECT_FALSE(root.contains("head_policies"));
  EXPECT_EQ(root["sampled"]["decode_layers_fixed"].as_number(), 2.0);
  EXPECT_EQ(root["sampled"]["decode_cycle_bytes"].as_number(), 0.0);
  EXPECT_NE(r.out.find("through the copies --decode-layers gives"), std::string::npos) << r.out;

  const json::Value trace = json::parse_file(file("r.trace.json"));
  std::vector<std::pair<double, double>> host;  // [start, end) of each host phase, in order
  std::vector<const json::Value*> gpu;
  std::set<std::string> kernels;
  for (const auto& e : trace["traceEvents"].as_array()) {
    if (e["ph"].as_string() != "X") continue;
    EXPECT_GE(e["ts"].as_number(), 0.0);
    EXPECT_GE(e["dur"].as_number(), 0.0);
    if (e["tid"].as_number() == 1) {
      gpu.push_back(&e);
      kernels.insert(e["name"].as_string());
    } else {
      host.push_back({e["ts"].as_number(), e["ts"].as_number() + e["dur"].as_number()});
    }
  }
  EXPECT_GT(host.size(), 10u);
  EXPECT_GT(gpu.size(), 10u);
  // Every kernel sits inside the host phase (a synchronous call) that ran it.
  for (const json::Value* g : gpu) {
    const double start = (*g)["ts"].as_number(), end = start + (*g)["dur"].as_number();
    const bool inside = std::any_of(host.begin(), host.end(), [&](const std::pair<double, double>& h) {
      return start >= h.first - 1e-3 && end <= h.second + 1e-3;
    });
    EXPECT_TRUE(inside) << (*g)["name"].as_string() << " at " << start;
  }
  // The attention shaders have _sg8 variants taken on subgroup-of-8 CPU devices (lavapipe).
  for (const char* k : {"attention_fp16", "attention_vidkv", "quantize_grouped", "buffer copy"})
    EXPECT_TRUE(kernels.count(k) || kernels.count(std::string(k) + "_sg8")) << k;

  const std::string svg = read(file("r.svg"));
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_NE(svg.find("<svg"), std::string::npos);
}

TEST_F(BenchCli, SweepOverTokensGivesOneRowPerPresetAndSize) {
  const BenchRun r = bench("--tokens 80,144 --text-tokens 16 --layers 1 --queries 1 --runs 1 --no-progress --decode-layers 1 "
                      "--preset k1.5-v1.58,2bit --error-layers 1 --model qwen2.5-vl-7b --json '" +
                      file("s.json") + "' --plot '" + file("s.svg") + "'");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  const json::Value root = json::parse_file(file("s.json"));
  const auto& results = root["results"].as_array();
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(results[0]["tokens"].as_number(), 80.0);
  EXPECT_EQ(results[3]["tokens"].as_number(), 144.0);
  // No fp16 preset asked for: the speed-up still has its fp16 baseline.
  EXPECT_GT(results[0]["fp16_decode_ms"].as_number(), 0.0);
  EXPECT_GT(results[2]["bytes"].as_number(), results[0]["bytes"].as_number());  // k1.5-v1.58, 144 vs 80 tokens
  EXPECT_GT(results[3]["bytes"].as_number(), results[1]["bytes"].as_number());  // 2bit
  const std::string svg = read(file("s.svg"));
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_NE(svg.find("<polyline"), std::string::npos);
}

TEST_F(BenchCli, ReadsADumpDirectory) {
  bench::VideoKvSpec spec;
  spec.layers = 1;
  spec.visual_tokens = 96;
  spec.text_tokens = 16;
  const auto kv = bench::VideoKvGenerator(spec).layer(0);
  fs::create_directories(dir / "dump");
  for (char kind : {'k', 'v'}) {
    tools::NpyArray a;
    a.type = tools::NpyType::f16;
    a.shape = {kv.tokens, 4, 128};
    const auto& halves = kind == 'k' ? kv.keys : kv.values;
    a.data.resize(halves.size() * 2);
    for (size_t i = 0; i < halves.size(); ++i) {
      a.data[2 * i] = uint8_t(halves[i]);
      a.data[2 * i + 1] = uint8_t(halves[i] >> 8);
    }
    tools::write_npy((dir / "dump" / (std::string(1, kind) + "_0.npy")).string(), a);
  }
  const BenchRun r = bench("--kv '" + file("dump") + "' --text-tokens 16 --preset fp16,k1.5-v2 --queries 1 --runs 1 "
                      "--no-progress --json '" + file("d.json") + "'");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  const json::Value root = json::parse_file(file("d.json"));
  EXPECT_EQ(root["workload"]["source"].as_string(), "kv-dump");
  EXPECT_EQ(root["workload"]["visual_tokens"].as_number(), 96.0);
  EXPECT_EQ(root["results"].as_array().size(), 2u);
  EXPECT_EQ(root["results"][0]["tokens"].as_number(), 112.0);
  EXPECT_EQ(root["results"][0]["k_rel_l2"].as_number(), 0.0);
}

// Per-head policies from a score file: 2 layers x 4 KV heads, 144 tokens, windows of 4 + 16 tokens.
// Ranked over both layers the scores are (0,3) < (1,1) < (0,1) < (1,3) < (1,0) < (0,2) < (0,0) < (1,2).
const char* kScoresCsv = "layer,head,score\n0,0,0.8\n0,1,0.3\n0,2,0.6\n0,3,0.1\n1,0,0.5\n1,1,0.2\n1,2,0.9\n1,3,0.4\n";
const char* kPolicyRun =
    "--frames 2 --tokens-per-frame 64 --text-tokens 16 --layers 2 --queries 2 --runs 2 --no-progress --decode-layers 2";

TEST_F(BenchCli, HeadPoliciesFromAScoreFile) {
  std::ofstream(file("scores.csv")) << kScoresCsv;
  const BenchRun r = bench(std::string(kPolicyRun) + " --preset k1.5-v1.58 --head-scores '" + file("scores.csv") +
                           "' --sparsity 0,0.5,0.9 --window-sink 4 --window-recent 16 --json '" + file("p.json") + "'");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("memory per head policy"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("k1.5-v1.58 s=0.5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("note: no head takes the preset"), std::string::npos) << r.out;

  const json::Value root = json::parse_file(file("p.json"));
  EXPECT_EQ(root["head_policies"]["low"].as_string(), "window");
  EXPECT_EQ(root["head_policies"]["high"].as_string(), "full");
  const auto& results = root["results"].as_array();
  ASSERT_EQ(results.size(), 3u);
  const double sparsity[] = {0.0, 0.5, 0.9};
  const double window_heads[] = {0, 4, 7};  // floor(s x 8)
  // Layer 1 (the decode timing's, layers / 2) at each sparsity, by the ranking above.
  const std::vector<std::vector<std::string>> timing = {{"full", "full", "full", "full"},
                                                        {"full", "window", "full", "window"},
                                                        {"window", "window", "full", "window"}};
  const double token_bytes = 128 * 2 * 2;  // one head's K and V of one token in fp16
  for (size_t i = 0; i < 3; ++i) {
    const auto& res = results[i];
    SCOPED_TRACE("sparsity " + std::to_string(sparsity[i]));
    ASSERT_FALSE(res.contains("error")) << res["error"].as_string();
    EXPECT_EQ(res["sparsity"].as_number(), sparsity[i]);
    EXPECT_EQ(res["policy_heads"]["vidkv"].as_number(), 0.0);
    EXPECT_EQ(res["policy_heads"]["window"].as_number(), window_heads[i]);
    EXPECT_EQ(res["policy_heads"]["full"].as_number(), 8 - window_heads[i]);
    // Full heads hold every token (144), window heads their 20; nothing else is held.
    EXPECT_EQ(res["policy_bytes"]["full"].as_number(), (8 - window_heads[i]) * 144 * token_bytes);
    EXPECT_EQ(res["policy_bytes"]["window"].as_number(), window_heads[i] * 20 * token_bytes);
    EXPECT_EQ(res["policy_bytes"]["vidkv"].as_number(), 0.0);
    EXPECT_EQ(res["bytes"].as_number(),
              res["policy_bytes"]["full"].as_number() + res["policy_bytes"]["window"].as_number());
    EXPECT_EQ(res["fp16_bytes"].as_number(), 2.0 * 144 * 4 * token_bytes);
    EXPECT_TRUE(res["bits_k"].is_null());  // no head takes the preset
    EXPECT_GT(res["decode_ms"].as_number(), 0.0);
    EXPECT_GT(res["fp16_decode_ms"].as_number(), 0.0);
    std::vector<std::string> got;
    for (const auto& p : res["timing_layer_policies"].as_array()) got.push_back(p.as_string());
    EXPECT_EQ(got, timing[i]);
    if (i > 0) {
      // Memory falls as sparsity grows; the error against full attention over every token rises.
      EXPECT_LT(res["bytes"].as_number(), results[i - 1]["bytes"].as_number());
      EXPECT_GT(res["attn_rel_err"].as_number(), results[i - 1]["attn_rel_err"].as_number());
      EXPECT_GT(res["k_rel_l2"].as_number(), results[i - 1]["k_rel_l2"].as_number());
    }
  }
  // Sparsity 0: every head full, fp16 of every token: the shader's rounding only.
  EXPECT_LT(results[0]["attn_rel_err"].as_number(), 1e-3);
  EXPECT_EQ(results[0]["k_rel_l2"].as_number(), 0.0);
  EXPECT_GT(results[2]["attn_rel_err"].as_number(), 0.01);  // 7 of 8 heads see 20 of 144 tokens
}

// High-score heads on the preset: at sparsity 0 the cache is the plain preset's, bit for bit.
TEST_F(BenchCli, HeadPoliciesWithThePresetMatchAPlainRunAtSparsityZero) {
  const std::string common = std::string(kPolicyRun) + " --preset k1.5-v1.58";
  const BenchRun plain = bench(common + " --json '" + file("plain.json") + "'");
  ASSERT_EQ(plain.status, 0) << plain.out << plain.err;
  const BenchRun mixed = bench(common + " --head-scores synthetic --high-policy vidkv --sparsity 0,0.5 --json '" +
                               file("mixed.json") + "'");
  ASSERT_EQ(mixed.status, 0) << mixed.out << mixed.err;
  EXPECT_EQ(mixed.out.find("note: no head takes the preset"), std::string::npos);
  const json::Value plain_root = json::parse_file(file("plain.json")), mixed_root = json::parse_file(file("mixed.json"));
  const json::Value& a = plain_root["results"].as_array().at(0);
  const auto& results = mixed_root["results"].as_array();
  ASSERT_EQ(results.size(), 2u);
  const json::Value& b = results[0];
  EXPECT_EQ(b["policy_heads"]["vidkv"].as_number(), 8.0);
  for (const char* key : {"bits_k", "bits_v", "bytes", "fp16_bytes", "k_rel_l2", "v_rel_l2", "attn_rel_err"})
    EXPECT_EQ(b[key].as_number(), a[key].as_number()) << key;
  // Half the heads on windows: the preset's bits stay, and the heads are split 4 / 4.
  const json::Value& half = results[1];
  ASSERT_FALSE(half.contains("error")) << half["error"].as_string();
  EXPECT_EQ(half["policy_heads"]["vidkv"].as_number(), 4.0);
  EXPECT_EQ(half["policy_heads"]["window"].as_number(), 4.0);
  EXPECT_GT(half["bits_k"].as_number(), 1.0);
  EXPECT_LT(half["bits_k"].as_number(), 4.0);
  EXPECT_GT(half["policy_bytes"]["window"].as_number(), 0.0);
  EXPECT_GT(half["attn_rel_err"].as_number(), 0.0);
}

TEST_F(BenchCli, BadHeadPolicyInput) {
  BenchRun r = bench("--head-scores synthetic --sparsity 1.0");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--sparsity 1.0"), std::string::npos) << r.err;
  r = bench("--sparsity 0.5");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--head-scores"), std::string::npos) << r.err;
  r = bench(std::string(kPolicyRun) + " --head-scores '" + file("absent.csv") + "'");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("absent.csv"), std::string::npos) << r.err;
  // Scores for a model with more layers than the run: refused before any device work.
  std::ofstream(file("deep.csv")) << kScoresCsv << "5,0,0.7\n";
  r = bench(std::string(kPolicyRun) + " --head-scores '" + file("deep.csv") + "'");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("layer 5"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("context"), std::string::npos) << "nothing measured: " << r.out;
}

// Decode over copies of the timing layer until they exceed --cycle-bytes: a copy count per preset
// that just passes the bound, the same copy bytes for every copy, said in the table and the JSON.
TEST_F(BenchCli, DecodeCyclesLayerCopiesPastTheByteBound) {
  const BenchRun r = bench("--frames 2 --tokens-per-frame 32 --text-tokens 16 --layers 2 --queries 1 --runs 1 "
                           "--error-layers 1 --no-progress --preset fp16,k1.5-v1.58 --cycle-bytes 256K --json '" +
                           file("c.json") + "'");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("until they exceed 0.25 MiB"), std::string::npos) << r.out;
  const json::Value root = json::parse_file(file("c.json"));
  EXPECT_EQ(root["sampled"]["decode_cycle_bytes"].as_number(), 262144.0);
  EXPECT_EQ(root["sizes"].as_array().at(0)["decode_cycle_bytes"].as_number(), 262144.0);
  const auto& results = root["results"].as_array();
  ASSERT_EQ(results.size(), 2u);
  for (const auto& res : results) {
    SCOPED_TRACE(res["preset"].as_string());
    const double layers = res["decode_layers"].as_number(), bytes = res["decode_bytes"].as_number();
    EXPECT_EQ(layers, std::floor(262144.0 / bytes) + 1);
    EXPECT_EQ(res["decode_cycled_bytes"].as_number(), layers * bytes);
    EXPECT_GT(res["decode_cycled_bytes"].as_number(), 262144.0);
    EXPECT_GT(res["decode_ms"].as_number(), 0.0);
  }
  // The packed preset's layer is smaller: more copies of it.
  EXPECT_GT(results[1]["decode_layers"].as_number(), results[0]["decode_layers"].as_number());
  // The copy reads at least the bound too.
  EXPECT_GE(root["sizes"].as_array().at(0)["copy_bytes"].as_number(), 262144.0);
}

// --sequences: one row per preset and batch size with the batched-decode keys; fp16 batched is
// the baseline even when not asked for (and takes the preset's step count).
TEST_F(BenchCli, BatchedDecodeRowsPerPresetAndBatchSize) {
  // Residuals of 32 tokens: 32 timed steps per row (after 32 appends and 2 steps), one flushing.
  const BenchRun r = bench("--tokens 96 --sequences 1,3 --preset \"{'backend': 'QuantizedCacheVLM', 'nbits': [1.5, "
                           "1.58], 'residual_length': 32}\" --q-heads 8 --no-progress --json '" +
                           file("b.json") + "'");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("batched decode"), std::string::npos) << r.out;
  const json::Value root = json::parse_file(file("b.json"));
  EXPECT_EQ(root["mode"].as_string(), "batched_decode");
  const auto& results = root["results"].as_array();
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0]["preset"].as_string().substr(0, 1), "{");
  EXPECT_EQ(results[0]["sequences"].as_number(), 1.0);
  EXPECT_EQ(results[1]["sequences"].as_number(), 3.0);
  for (const auto& row : results) {
    EXPECT_EQ(row["tokens"].as_number(), 96.0);
    EXPECT_EQ(row["steps"].as_number(), 32.0);
    for (const char* key : {"step_ms", "step_p99_ms", "flush_step_ms", "unbatched_step_ms", "fp16_step_ms"}) {
      EXPECT_GT(row[key].as_number(), 0.0) << key;
    }
    EXPECT_GE(row["step_p99_ms"].as_number(), row["step_ms"].as_number());
  }
  for (const char* args : {"--sequences 0", "--sequences 8193", "--sequences 2 --head-scores synthetic"}) {
    const BenchRun bad = bench(args);
    EXPECT_EQ(bad.status, 2) << args;
    EXPECT_NE(bad.err.find("--sequences"), std::string::npos) << args << ": " << bad.err;
  }
}

TEST_F(BenchCli, BadDecodeCycleOptions) {
  for (const char* args : {"--decode-layers 0", "--decode-layers 1025", "--cycle-bytes 12X", "--cycle-bytes 100",
                           "--cycle-bytes M", "--decode-layers 2 --cycle-bytes 1M"}) {
    const BenchRun r = bench(args);
    EXPECT_EQ(r.status, 2) << args;
    EXPECT_NE(r.err.find(std::string(args).substr(0, 8)), std::string::npos) << args << ": " << r.err;
  }
}

// vidkv-attention-bench: every case cycles through its layer copies; the markdown rows that
// scripts/gpu-check gathers name preset, tokens, layers and MB cycled.
TEST_F(BenchCli, AttentionBenchCyclesLayerCopies) {
  BenchRun r = attention_bench("--tokens 100 --runs 1 --layers 3 --case k1.5-v1.58 --markdown");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("device type: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cycles through 3 distinct copies"), std::string::npos) << r.out;
  std::vector<std::string> rows;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("| ", 0) == 0) rows.push_back(line);
  ASSERT_EQ(rows.size(), 3u) << r.out;
  EXPECT_EQ(rows[0].rfind("| fp16 | 100 | 3 | ", 0), 0u) << rows[0];
  EXPECT_EQ(rows[1].rfind("| k1.5-v1.58 | 100 | 3 | ", 0), 0u) << rows[1];
  EXPECT_EQ(rows[2].rfind("| copy | 100 | 1 | ", 0), 0u) << rows[2];
  // The model's columns close each row: fp16's predicted speed-up over itself is 1.
  EXPECT_EQ(rows[0].substr(rows[0].size() - 9), "| 1.00x |") << rows[0];
  EXPECT_EQ(std::count(rows[1].begin(), rows[1].end(), '|'), 11) << rows[1];

  // By bytes: each case's copies just pass the bound (MB cycled is the 4th column).
  r = attention_bench("--tokens 100 --runs 1 --cycle-bytes 1M --case 2bit --markdown");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  std::istringstream lines2(r.out);
  int checked = 0;
  for (std::string line; std::getline(lines2, line);) {
    if (line.rfind("| fp16 ", 0) != 0 && line.rfind("| 2bit ", 0) != 0) continue;
    std::vector<std::string> cells;
    std::istringstream cs(line);
    for (std::string cell; std::getline(cs, cell, '|');) cells.push_back(cell);
    ASSERT_GE(cells.size(), 5u) << line;
    const double layers = std::stod(cells[3]), mb = std::stod(cells[4]);
    EXPECT_GT(layers, 1.0) << line;
    EXPECT_GT(mb * 1e6, 1048576.0 - 0.05e6) << line;       // printed to 0.1 MB
    EXPECT_LT(mb * 1e6 * (layers - 1) / layers, 1048576.0 + 0.05e6) << line;  // one copy fewer would not pass it
    ++checked;
  }
  EXPECT_EQ(checked, 2) << r.out;

  // KIVI (2-bit keys, 2-bit values per token) is a case too; a case it does not have is an error
  // that names it and the cases there are (not a run that silently skips it).
  r = attention_bench("--tokens 100 --runs 1 --layers 2 --case kivi --markdown");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("\n| kivi | 100 | 2 | "), std::string::npos) << r.out;
  r = attention_bench("--case k1.5-v9");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("no case 'k1.5-v9'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("kivi"), std::string::npos) << r.err;

  for (const char* args : {"--layers 0", "--cycle-bytes x", "--cycle-bytes 1Q", "--bogus"}) {
    r = attention_bench(args);
    EXPECT_EQ(r.status, 2) << args;
    EXPECT_NE(r.err.find("usage"), std::string::npos) << args << ": " << r.err;
  }
}

TEST_F(BenchCli, HelpVersionAndBadInput) {
  BenchRun r = bench("--version");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, std::string("vidkv-bench ") + VIDKV_VERSION_STRING + "\n");
  r = bench("--help");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("--kv DIR"), std::string::npos);
  r = bench("--frames 0");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--frames 0"), std::string::npos) << r.err;
  r = bench("--preset fp16,k9");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("k9"), std::string::npos) << r.err;
  r = bench("--kv '" + file("absent") + "'");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("absent"), std::string::npos) << r.err;
  r = bench(std::string(kTiny) + " --json '" + file("no/such/dir/r.json") + "' --preset fp16");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("r.json"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace vidkv::test
