// The CPU reference against the golden vectors of the authors' quantizer (DESIGN section 7), and
// GoldenCase's refusal of damaged golden files.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <fstream>
#include <map>
#include <string>

#include "common/golden.hpp"
#include "common/golden_checks.hpp"
#include "common/sha256.hpp"
#include "vidkv/error.hpp"
#include "vidkv/reference.hpp"

namespace fs = std::filesystem;
using namespace vidkv;
using vidkv::tools::GoldenCase;

namespace {

QuantizedTensor ref_quantize(const QuantSpec& spec, const TensorShape& shape,
                             const std::vector<uint16_t>& input, const TensorLayout& layout) {
  if (input.size() < layout.span(shape)) throw Error(ErrorCode::buffer_too_small, "input");
  return reference::quantize(spec, shape, input.data(), layout);
}

std::vector<uint16_t> ref_dequantize(const QuantizedTensor& q, const TensorLayout& layout) {
  return reference::dequantize(q, layout);
}

// A fresh copy of one golden case in a temporary directory, removed afterwards.
struct TempCase {
  fs::path dir;
  explicit TempCase(const std::string& source) {
    dir = fs::temp_directory_path() /
          ("vidkv_golden_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
           "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
    for (const auto& e : fs::directory_iterator(source)) {
      fs::copy_file(e.path(), dir / e.path().filename());
      fs::permissions(dir / e.path().filename(), fs::perms::owner_read | fs::perms::owner_write,
                      fs::perm_options::add);
    }
  }
  ~TempCase() { fs::remove_all(dir); }
};

const std::string kSmallCase = std::string(VIDKV_GOLDEN_DIR) + "/q1p58bit_values_h2_t64";

ErrorCode error_of(const std::function<void()>& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const Error& e) {
    if (message) *message = e.what();
    return e.code();
  }
  ADD_FAILURE() << "no vidkv::Error thrown";
  return ErrorCode::invalid_argument;
}

}  // namespace

TEST(ReferenceGolden, EveryPerChannelCaseMatches) {
  size_t cases = 0;
  std::vector<std::string> names;
  for (const std::string& dir : tools::list_golden_cases(VIDKV_GOLDEN_DIR)) {
    const GoldenCase c = GoldenCase::load(dir);
    if (!tools::golden_case_is_per_channel(c)) continue;
    ++cases;
    names.push_back(c.name());
    const auto results = tools::run_per_channel_golden_case(c, ref_quantize, ref_dequantize, "ref");
    ASSERT_GE(results.size(), 5u) << c.name();
    for (const auto& r : results) {
      EXPECT_TRUE(r.passed) << r.name << " [" << r.shape << "] max_error " << r.max_error << ": "
                            << r.detail;
      EXPECT_EQ(r.name.rfind("ref/" + c.name() + "/", 0), 0u) << r.name;
    }
  }
  // Never pass vacuously: the eight plain per-channel cases of the golden set must all be found.
  EXPECT_EQ(cases, 8u);
  for (const char* want : {"perchan_2bit_keys_h2_t64", "perchan_2bit_keys_h4_t256",
                           "perchan_4bit_keys_h4_t256", "perchan_8bit_keys_h4_t256",
                           "q1bit_values_h2_t64", "q1bit_values_h4_t256",
                           "q1p58bit_values_h2_t64", "q1p58bit_values_h4_t256"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
  }
}

TEST(ReferenceGolden, OtherKindsAreNotPerChannel) {
  for (const char* name : {"fft1bit_keysall128_h2_t64", "fft1bit_keysubset64_h4_t256",
                           "dynkey_1p5_h4_t256", "stp_values_low2bit_rel1p58_h4_t256"}) {
    EXPECT_FALSE(tools::golden_case_is_per_channel(
        GoldenCase::load(std::string(VIDKV_GOLDEN_DIR) + "/" + name)))
        << name;
  }
}

// The checks are not vacuous: an implementation with the original's faults, or one wrong code,
// must fail exactly the checks concerned.
TEST(ReferenceGolden, ChecksCatchWrongImplementations) {
  const GoldenCase one_bit =
      GoldenCase::load(std::string(VIDKV_GOLDEN_DIR) + "/q1bit_values_h2_t64");
  const auto original_decode = [](const QuantizedTensor& q, const TensorLayout& l) {
    auto y = reference::dequantize(q, l);
    for (uint16_t& v : y) v = (v & 0x8000) ? 0 : v;  // the original's q * s: negatives become 0
    return y;
  };
  std::map<std::string, bool> passed;
  for (const auto& r : tools::run_per_channel_golden_case(one_bit, ref_quantize, original_decode,
                                                          "orig")) {
    passed[r.name.substr(r.name.rfind('/') + 1)] = r.passed;
  }
  EXPECT_TRUE(passed.at("codes"));
  EXPECT_TRUE(passed.at("scales"));
  EXPECT_FALSE(passed.at("dequant_corrected"));
  EXPECT_FALSE(passed.at("dequant_original_differs"));

  const GoldenCase two_bit =
      GoldenCase::load(std::string(VIDKV_GOLDEN_DIR) + "/perchan_2bit_keys_h2_t64");
  const auto flip_one_code = [](const QuantSpec& s, const TensorShape& sh,
                                const std::vector<uint16_t>& x, const TensorLayout& l) {
    QuantizedTensor q = ref_quantize(s, sh, x, l);
    q.codes[17] ^= 0x30u;
    return q;
  };
  const auto results = tools::run_per_channel_golden_case(two_bit, flip_one_code, ref_dequantize,
                                                          "flip");
  EXPECT_FALSE(results.at(0).passed);
  EXPECT_NE(results.at(0).detail.find("word 17"), std::string::npos) << results.at(0).detail;
  EXPECT_EQ(results.at(0).name, "flip/perchan_2bit_keys_h2_t64/codes");
  const auto throwing = [](const QuantSpec&, const TensorShape&, const std::vector<uint16_t>&,
                           const TensorLayout&) -> QuantizedTensor {
    throw Error(ErrorCode::vulkan_error, "device gone");
  };
  const auto failed = tools::run_per_channel_golden_case(two_bit, throwing, ref_dequantize, "t");
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_FALSE(failed[0].passed);
  EXPECT_NE(failed[0].detail.find("device gone"), std::string::npos);
}

TEST(GoldenFiles, Sha256KnownAnswers) {
  // FIPS 180-2 examples.
  EXPECT_EQ(tools::sha256_hex("", 0),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(tools::sha256_hex("abc", 3),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  EXPECT_EQ(tools::sha256_hex(two_blocks.data(), two_blocks.size()),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const std::vector<uint8_t> million(1000000, 'a');
  EXPECT_EQ(tools::sha256_hex(million),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(GoldenFiles, IntactCopyLoads) {
  TempCase tmp(kSmallCase);
  const GoldenCase c = GoldenCase::load(tmp.dir.string());
  EXPECT_EQ(c.name(), "q1p58bit_values_h2_t64");
  EXPECT_EQ(c.dir(), tmp.dir.string());
  const auto input = c.array("input");
  EXPECT_EQ(input.dtype, "float16");
  EXPECT_EQ(input.shape, (std::vector<uint64_t>{1, 2, 64, 128}));
  EXPECT_EQ(input.elements(), 16384u);
  EXPECT_EQ(input.as_u16().size(), 16384u);
  EXPECT_EQ(c.array("code").as_i32().size(), 1024u);
  EXPECT_EQ(c.array("codes_unpacked").as_u8().size(), 16384u);
  EXPECT_THROW(input.as_i32(), Error);  // wrong dtype
  EXPECT_EQ(error_of([&] { c.array("nonexistent"); }), ErrorCode::invalid_argument);
  const auto listed = tools::list_golden_cases(tmp.dir.parent_path().string());
  EXPECT_NE(std::find(listed.begin(), listed.end(), tmp.dir.string()), listed.end());
  EXPECT_TRUE(std::is_sorted(listed.begin(), listed.end()));
}

TEST(GoldenFiles, TruncatedFileIsCorrupt) {
  TempCase tmp(kSmallCase);
  fs::resize_file(tmp.dir / "scale.bin", 1000);
  const GoldenCase c = GoldenCase::load(tmp.dir.string());
  std::string msg;
  EXPECT_EQ(error_of([&] { c.array("scale"); }, &msg), ErrorCode::corrupt_data);
  EXPECT_NE(msg.find("scale.bin"), std::string::npos) << msg;
  EXPECT_NE(msg.find("1000 bytes"), std::string::npos) << msg;
  EXPECT_NO_THROW(c.array("mn"));  // the others are still fine
}

TEST(GoldenFiles, FlippedByteIsCorrupt) {
  TempCase tmp(kSmallCase);
  {
    std::fstream f(tmp.dir / "code.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(100);
    const char b = char(f.get());
    f.seekp(100);
    f.put(char(b ^ 0x04));
  }
  std::string msg;
  const GoldenCase c = GoldenCase::load(tmp.dir.string());
  EXPECT_EQ(error_of([&] { c.array("code"); }, &msg), ErrorCode::corrupt_data);
  EXPECT_NE(msg.find("code.bin"), std::string::npos) << msg;
  EXPECT_NE(msg.find("sha256"), std::string::npos) << msg;
}

TEST(GoldenFiles, MissingFilesAndBadManifests) {
  TempCase tmp(kSmallCase);
  fs::remove(tmp.dir / "mn.bin");
  std::string msg;
  EXPECT_EQ(error_of([&] { GoldenCase::load(tmp.dir.string()).array("mn"); }, &msg),
            ErrorCode::io_error);
  EXPECT_NE(msg.find("mn.bin"), std::string::npos) << msg;
  // A manifest whose nbytes disagrees with dtype x shape.
  std::string text = json::write(json::parse_file((tmp.dir / "manifest.json").string()));
  json::Value m = json::parse(text);
  m["arrays"]["scale"]["nbytes"] = 999;
  std::ofstream((tmp.dir / "manifest.json").string()) << json::write(m);
  EXPECT_EQ(error_of([&] { GoldenCase::load(tmp.dir.string()).array("scale"); }, &msg),
            ErrorCode::corrupt_data);
  EXPECT_NE(msg.find("nbytes 999"), std::string::npos) << msg;
  // Malformed JSON, then no manifest at all.
  std::ofstream((tmp.dir / "manifest.json").string()) << text.substr(0, text.size() / 2);
  EXPECT_EQ(error_of([&] { GoldenCase::load(tmp.dir.string()); }, &msg), ErrorCode::corrupt_data);
  EXPECT_NE(msg.find("byte offset"), std::string::npos) << msg;
  fs::remove(tmp.dir / "manifest.json");
  EXPECT_EQ(error_of([&] { GoldenCase::load(tmp.dir.string()); }), ErrorCode::io_error);
  EXPECT_EQ(error_of([] { tools::list_golden_cases("/nonexistent/vidkv/golden"); }),
            ErrorCode::io_error);
}
