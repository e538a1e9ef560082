// The bench's workloads: a K/V dump directory (written here with write_npy, fp16 keys and fp32
// values) reads back as exactly the data written, a token prefix and a visual range can be chosen,
// and values fp16 cannot hold are refused naming the file and the element.
#include <gtest/gtest.h>

#include <bit>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "bench/video_generator.hpp"
#include "bench/workload.hpp"
#include "common/npy.hpp"
#include "common/random_data.hpp"
#include "vidkv/error.hpp"
#include "vidkv/fp16.hpp"

namespace vidkv::test {
namespace {

namespace fs = std::filesystem;
using namespace vidkv::bench;

struct DumpDir {
  fs::path path;
  VideoKvSpec spec;
  std::vector<LayerKv> layers;
  // Generated layers written as k_<l>.npy (fp16) and v_<l>.npy (fp32, exact copies of the halves).
  DumpDir() {
    path = fs::temp_directory_path() /
           ("vidkv_dump_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
            std::to_string(tools::test_seed()));
    fs::remove_all(path);
    fs::create_directories(path);
    spec.layers = 2;
    spec.visual_tokens = 3 * 196;
    spec.text_tokens = 20;
    const VideoKvGenerator gen(spec);
    for (uint32_t l = 0; l < spec.layers; ++l) {
      layers.push_back(gen.layer(l));
      write(l, 'k', layers.back().keys, tools::NpyType::f16);
      write(l, 'v', layers.back().values, tools::NpyType::f32);
    }
  }
  ~DumpDir() { fs::remove_all(path); }
  void write(uint32_t layer, char kind, const std::vector<uint16_t>& halves, tools::NpyType type) const {
    tools::NpyArray a;
    a.type = type;
    a.shape = {halves.size() / (spec.kv_heads * spec.head_dim), spec.kv_heads, spec.head_dim};
    if (type == tools::NpyType::f16) {
      a.data.resize(halves.size() * 2);
      std::memcpy(a.data.data(), halves.data(), a.data.size());  // little-endian host
    } else {
      a.data.resize(halves.size() * 4);
      for (size_t i = 0; i < halves.size(); ++i) {
        const uint32_t bits = std::bit_cast<uint32_t>(fp16::to_float(halves[i]));
        std::memcpy(a.data.data() + 4 * i, &bits, 4);
      }
    }
    tools::write_npy((path / (std::string(1, kind) + "_" + std::to_string(layer) + ".npy")).string(), a);
  }
};

TEST(BenchWorkload, DumpReadsBackWhatWasWritten) {
  const DumpDir dump;
  auto w = make_dump_workload(dump.path.string(), DumpSelection{});
  const WorkloadInfo& info = w->info();
  EXPECT_EQ(info.source, "kv-dump");
  EXPECT_EQ(info.layers, 2u);
  EXPECT_EQ(info.tokens, dump.spec.tokens());
  EXPECT_EQ(info.kv_heads, 4u);
  EXPECT_EQ(info.head_dim, 128u);
  EXPECT_EQ(info.q_heads, 28u);  // 7 per KV head unless told
  EXPECT_EQ(info.first_visual, 0u);
  EXPECT_EQ(info.visual_tokens, dump.spec.tokens() - 32);  // all but the default 32 prompt tokens
  EXPECT_EQ(info.text_tokens, 32u);
  for (uint32_t l = 0; l < 2; ++l) {
    EXPECT_EQ(w->layer(l).keys, dump.layers[l].keys);
    EXPECT_EQ(w->layer(l).values, dump.layers[l].values);
    EXPECT_TRUE(w->kept(l));
  }
  EXPECT_THROW(w->layer(2), Error);
}

TEST(BenchWorkload, DumpPrefixLayersAndVisualRange) {
  const DumpDir dump;
  DumpSelection sel;
  sel.tokens = 100;
  sel.layers = 1;
  sel.q_heads = 8;
  sel.first_visual = 10;
  sel.visual_tokens = 64;
  auto w = make_dump_workload(dump.path.string(), sel);
  EXPECT_EQ(w->info().layers, 1u);
  EXPECT_EQ(w->info().tokens, 100u);
  EXPECT_EQ(w->info().q_heads, 8u);
  EXPECT_EQ(w->info().first_visual, 10u);
  EXPECT_EQ(w->info().visual_tokens, 64u);
  EXPECT_EQ(w->info().text_tokens, 26u);
  const size_t n = 100 * 4 * 128;
  EXPECT_EQ(w->layer(0).tokens, 100u);
  EXPECT_EQ(w->layer(0).keys, std::vector<uint16_t>(dump.layers[0].keys.begin(), dump.layers[0].keys.begin() + n));

  auto expect_refused = [&](DumpSelection s, const std::string& part) {
    try {
      make_dump_workload(dump.path.string(), s);
      ADD_FAILURE() << "accepted; expected " << part;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  DumpSelection too_long;
  too_long.tokens = dump.spec.tokens() + 1;
  expect_refused(too_long, "--tokens");
  DumpSelection too_deep;
  too_deep.layers = 3;
  expect_refused(too_deep, "--layers 3");
  DumpSelection past_end;
  past_end.first_visual = 500;
  past_end.visual_tokens = 200;
  expect_refused(past_end, "do not fit");
}

TEST(BenchWorkload, DumpRefusesValuesFp16CannotHold) {
  const DumpDir dump;
  std::vector<uint16_t> values = dump.layers[1].values;
  const size_t bad = (size_t(5) * 4 + 2) * 128 + 77;  // token 5, head 2, channel 77
  values[bad] = 0x7c00;                              // +inf, written as fp32 inf
  dump.write(1, 'v', values, tools::NpyType::f32);
  auto w = make_dump_workload(dump.path.string(), DumpSelection{});
  try {
    w->layer(1);
    ADD_FAILURE() << "an infinite value was accepted";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("v_1.npy"), std::string::npos) << m;
    EXPECT_NE(m.find("token 5, head 2, channel 77"), std::string::npos) << m;
  }
  EXPECT_EQ(w->layer(0).keys, dump.layers[0].keys);  // the other layer is fine
}

TEST(BenchWorkload, GeneratedWorkloadDescribesItself) {
  VideoKvSpec spec;
  spec.layers = 2;
  spec.visual_tokens = 2 * 196;
  auto w = make_generated_workload(spec);
  EXPECT_EQ(w->info().source, "generator");
  EXPECT_EQ(w->info().frames, 2u);
  EXPECT_EQ(w->info().tokens, 2 * 196 + 32u);
  EXPECT_NE(w->info().description.find("2 frames x 196 tokens + 32 text"), std::string::npos) << w->info().description;
  EXPECT_FALSE(w->kept(1));
  EXPECT_EQ(w->layer(1).keys, VideoKvGenerator(spec).layer(1).keys);
  EXPECT_TRUE(w->kept(1));
}

}  // namespace
}  // namespace vidkv::test
