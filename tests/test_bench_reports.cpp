// The bench's pieces that need no device: option parsing, layer sampling, the error sums, and the
// writers (JSON report, Chrome trace, SVG plot) on synthetic results, including the XML check the
// CLI test relies on.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "bench/attention_reference.hpp"
#include "bench/options.hpp"
#include "bench/report_json.hpp"
#include "bench/svg_plot.hpp"
#include "bench/trace_writer.hpp"
#include "common/json.hpp"
#include "test_bench_xml.hpp"
#include "vidkv/error.hpp"
#include "vidkv/fp16.hpp"

namespace vidkv::test {
namespace {

using namespace vidkv::bench;

BenchOptions parse(std::vector<const char*> args) {
  args.insert(args.begin(), "vidkv-bench");
  return parse_options(int(args.size()), args.data());
}

TEST(BenchOptions, DefaultsAreTheMainJob) {
  const BenchOptions o = parse({});
  EXPECT_EQ(o.frames, std::vector<uint32_t>{32});
  EXPECT_EQ(o.tokens_per_frame, 196u);
  EXPECT_EQ(o.text_tokens, 32u);
  EXPECT_EQ(o.presets, (std::vector<std::string>{"fp16", "2bit", "kivi", "k1.5-v2", "k1.5-v1.58", "k1.5-v1.58-stp"}));
  EXPECT_TRUE(o.kv_dir.empty());
}

TEST(BenchOptions, ParsesListsAndValues) {
  const BenchOptions o = parse({"--frames", "8,16,32", "--preset", "fp16,k1.5-v2", "--seed", "7", "--json", "x.json",
                                "--rope-base", "10000", "--model", "qwen2.5-vl-7b", "--error-layers", "0"});
  EXPECT_EQ(o.frames, (std::vector<uint32_t>{8, 16, 32}));
  EXPECT_EQ(o.presets, (std::vector<std::string>{"fp16", "k1.5-v2"}));
  EXPECT_EQ(o.seed, 7u);
  EXPECT_EQ(o.json_path, "x.json");
  EXPECT_EQ(o.rope_base, 10000.0);
  EXPECT_EQ(o.model, "qwen2.5-vl-7b");
  EXPECT_EQ(o.error_layers, 0u);
  const BenchOptions t = parse({"--tokens", "1000,2000"});
  EXPECT_TRUE(t.frames.empty());
  EXPECT_EQ(t.tokens, (std::vector<uint32_t>{1000, 2000}));
  // A configuration dictionary holds commas and is one item.
  const BenchOptions d = parse({"--preset", "{'backend': 'QuantizedCacheVLM', 'nbits': [1.5, 2]}"});
  EXPECT_EQ(d.presets.size(), 1u);
}

TEST(BenchOptions, RefusesBadOptionsNamingThem) {
  const std::vector<std::pair<std::vector<const char*>, std::string>> cases = {
      {{"--frames"}, "--frames needs a value"},
      {{"--frames", "0"}, "--frames 0"},
      {{"--frames", "8,,16"}, "empty item"},
      {{"--frames", "x"}, "not a non-negative integer"},
      {{"--tokens", "100", "--frames", "2"}, "use one"},
      {{"--preset", "fp16,k3"}, "k3"},
      {{"--model", "gpt"}, "--model gpt"},
      {{"--frame-correlation", "1.5"}, "--frame-correlation 1.5"},
      {{"--rope-base", "abc"}, "--rope-base abc"},
      {{"--first-visual", "3"}, "describe a dump"},
      {{"--kv", "d", "--frames", "3"}, "use --tokens with --kv"},
      {{"--bogus"}, "unknown option --bogus"},
  };
  for (const auto& [args, message] : cases) {
    try {
      parse(args);
      ADD_FAILURE() << "accepted; expected " << message;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
  }
}

TEST(BenchSampling, LayersSpreadOverTheDepth) {
  EXPECT_EQ(sample_layers(28, 4), (std::vector<uint32_t>{3, 10, 17, 24}));
  EXPECT_EQ(sample_layers(28, 1), std::vector<uint32_t>{14});
  EXPECT_EQ(sample_layers(3, 0), (std::vector<uint32_t>{0, 1, 2}));
  EXPECT_EQ(sample_layers(3, 5), (std::vector<uint32_t>{0, 1, 2}));
  const auto seven = sample_layers(28, 7);
  ASSERT_EQ(seven.size(), 7u);
  for (size_t i = 1; i < seven.size(); ++i) EXPECT_EQ(seven[i] - seven[i - 1], 4u);
}

TEST(BenchErrorSum, RelativeL2OverSeveralTensors) {
  ErrorSum e;
  EXPECT_NEAR(e.add({1.0f, 1.0f}, {1.0, 2.0}), 1.0 / std::sqrt(5.0), 1e-12);
  EXPECT_NEAR(e.add({3.0f}, {3.0}), 0.0, 1e-12);
  EXPECT_NEAR(e.relative(), std::sqrt(1.0 / 14.0), 1e-12);
  ErrorSum h;
  h.add_halves({fp16::from_float(1.5f), fp16::from_float(-2.0f)}, {fp16::from_float(1.0f), fp16::from_float(-2.0f)});
  EXPECT_NEAR(h.relative(), std::sqrt(0.25 / 5.0), 1e-12);
  EXPECT_THROW(h.add_halves({0}, {0, 0}), Error);
}

// Two sizes, four presets, one with a name that needs escaping, one measured only up to its storage.
std::vector<SizeResults> synthetic_sizes() {
  std::vector<SizeResults> sizes;
  for (uint32_t tokens : {1000u, 4000u}) {
    SizeResults s;
    s.workload.source = "generator";
    s.workload.tokens = tokens;
    s.workload.layers = 2;
    s.workload.frames = tokens / 100;
    s.error_layers = {0, 1};
    s.copy_gbps = 20;
    for (const char* name : {"fp16", "k1.5-v1.58", "{'odd': \"<name> & co\"}", "k1.5-v1.58-stp"}) {
      PresetResult r;
      r.preset = name;
      r.tokens = tokens;
      r.bytes = tokens * (name[0] == 'f' ? 1000 : 150);
      r.fp16_bytes = tokens * 1000;
      r.decode_ms = tokens * (name[0] == 'f' ? 0.01 : 0.008);
      r.bits_k = 16;
      r.done = Stage::timed;
      if (std::string(name) == "k1.5-v1.58-stp") {
        r.done = Stage::stored;
        r.error = "unsupported: something";
      }
      s.results.push_back(r);
    }
    sizes.push_back(s);
  }
  return sizes;
}

TEST(BenchReports, JsonHasEveryKeyAndNullsForUnmeasuredPresets) {
  RunSummary run;
  run.device.name = "test device";
  run.device.type = rt::DeviceType::cpu;
  run.device.driver_name = "driver";
  const json::Value root = json::parse(json::write(report_json(run, BenchOptions{}, synthetic_sizes(), {}), true));
  EXPECT_EQ(root["device"]["name"].as_string(), "test device");
  EXPECT_EQ(root["device"]["type"].as_string(), "cpu");
  EXPECT_EQ(root["device"]["driver"].as_string(), "driver");
  EXPECT_EQ(root["copy_gbps"].as_number(), 20.0);
  const auto& results = root["results"].as_array();
  ASSERT_EQ(results.size(), 8u);
  for (const auto& r : results)
    for (const char* key : {"preset", "tokens", "bits_k", "bits_v", "bytes", "fp16_bytes", "k_rel_l2", "v_rel_l2",
                            "attn_rel_err", "prefill_ms", "decode_ms", "fp16_decode_ms", "speedup_vs_fp16",
                            "achieved_gbps"})
      EXPECT_TRUE(r.contains(key)) << key;
  EXPECT_EQ(results[0]["bits_k"].as_number(), 16.0);
  EXPECT_EQ(results[7]["tokens"].as_number(), 4000.0);
  EXPECT_EQ(results[2]["preset"].as_string(), "{'odd': \"<name> & co\"}");
  EXPECT_EQ(results[3]["bits_k"].as_number(), 16.0);  // stored: storage measured
  EXPECT_TRUE(results[3]["k_rel_l2"].is_null());      // the rest not
  EXPECT_TRUE(results[3]["attn_rel_err"].is_null());
  EXPECT_TRUE(results[3]["decode_ms"].is_null());
  EXPECT_EQ(results[3]["error"].as_string(), "unsupported: something");
  EXPECT_FALSE(results[1].contains("error"));
}

TEST(BenchReports, TraceIsChromeTraceEventJson) {
  std::vector<TraceEvent> events = {{"prefill", "prefill", 0, 10.0, 500.0}, {"quantize_grouped", "gpu", 1, 20.0, 30.5}};
  const json::Value root = json::parse(trace_json(events, "dev \"x\""));
  const auto& list = root["traceEvents"].as_array();
  size_t complete = 0;
  for (const auto& e : list) {
    if (e["ph"].as_string() != "X") continue;
    ++complete;
    EXPECT_TRUE(e["ts"].is_number());
    EXPECT_TRUE(e["dur"].is_number());
    EXPECT_TRUE(e["pid"].is_number());
    EXPECT_TRUE(e["tid"].is_number());
  }
  EXPECT_EQ(complete, 2u);
  EXPECT_EQ(list[1]["args"]["name"].as_string(), "GPU: dev \"x\"");
}

TEST(BenchReports, SvgIsWellFormedWithALinePerMeasuredPreset) {
  const std::string svg = memory_decode_svg(synthetic_sizes(), "title <&> 'quoted'");
  EXPECT_EQ(xml_problem(svg), "");
  size_t polylines = 0;
  for (size_t at = svg.find("<polyline"); at != std::string::npos; at = svg.find("<polyline", at + 1)) ++polylines;
  EXPECT_EQ(polylines, 7u);  // memory: four presets; decode: the three that were timed
  EXPECT_NE(svg.find("context length (tokens)"), std::string::npos);
  EXPECT_NE(svg.find("memory, all layers (MB)"), std::string::npos);
  EXPECT_NE(svg.find(">k1.5-v1.58</text>"), std::string::npos);  // legend
  EXPECT_NE(svg.find(">{&apos;odd&apos;: &quot;&lt;name&gt; &amp; co&quot;}</text>"), std::string::npos);
  EXPECT_NE(svg.find(">k1.5-v1.58-stp</text>"), std::string::npos);
  // Nothing measured still gives a valid document.
  EXPECT_EQ(xml_problem(memory_decode_svg({}, "empty")), "");
}

TEST(BenchReports, XmlCheckFindsBrokenDocuments) {
  EXPECT_EQ(xml_problem("<?xml version=\"1.0\"?>\n<a x=\"1\"><b/>t &amp; &#38; &#x26;<!-- c --></a>\n"), "");
  for (const char* bad : {"", "<a>", "<a></b>", "<a/><b/>", "<a x=\"1\" x=\"2\"/>", "<a x=1/>", "<a>&bogus;</a>",
                          "<a>x < y</a>", "text<a/>", "<a x=\"<\"/>", "<a></a>tail", "<a x=\"1\"y=\"2\"/>",
                          "<1a/>", "<a><!-- open </a>"})
    EXPECT_NE(xml_problem(bad), "") << bad;
}

TEST(BenchReports, NiceStepsAndEscaping) {
  EXPECT_EQ(nice_step(0.7), 1.0);
  EXPECT_EQ(nice_step(1.2), 2.0);
  EXPECT_EQ(nice_step(3), 5.0);
  EXPECT_EQ(nice_step(1300), 2000.0);
  EXPECT_EQ(nice_step(5000), 5000.0);
  EXPECT_EQ(xml_escape("a<b>&\"'\x01"), "a&lt;b&gt;&amp;&quot;&apos; ");
}

}  // namespace
}  // namespace vidkv::test
