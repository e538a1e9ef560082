// The .npy reader and writer (tools/common/npy.hpp): files written by real NumPy (tests/data/npy,
// made by make_npy.py there) read back to the values NumPy was given, the writer reproduces
// NumPy's bytes exactly, and every malformed header is refused with a vidkv::Error naming the file
// and the problem. scan_kv_dir finds the geometry of a dump and names the missing or odd file.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "common/npy.hpp"
#include "common/random_data.hpp"
#include "vidkv/error.hpp"
#include "vidkv/fp16.hpp"

namespace vidkv::test {
namespace {

namespace fs = std::filesystem;
using tools::NpyArray;
using tools::NpyType;

const std::string kData = std::string(VIDKV_TEST_DATA_DIR) + "/npy/";

// make_npy.py's value(i): element i of every fixture.
double fixture_value(size_t i) {
  if (i % 11 == 3) return -0.0;
  if (i == 7) return 1000.0;
  return double(int64_t(i * 37 % 105) - 52) / 8.0;
}

std::vector<uint8_t> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

float f32_at(const NpyArray& a, size_t i) {
  uint32_t bits;
  std::memcpy(&bits, a.data.data() + 4 * i, 4);
  return std::bit_cast<float>(bits);
}

// A fresh directory under the system temp dir, removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("vidkv_npy_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name() + "_" + std::to_string(tools::test_seed()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// Expects `f` to throw vidkv::Error with `code` and a message holding every string of `parts`.
template <typename F>
void expect_error(F f, ErrorCode code, std::vector<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one mentioning " << parts.front();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what() << "\n  lacks: " << p;
  }
}

// A version 1.0 file with `header` as the dict text, padded like NumPy unless `raw`, and `data`.
std::vector<uint8_t> npy_v1(const std::string& header, size_t data_bytes, bool raw = false) {
  std::string h = header;
  if (!raw) {
    h.append((64 - (10 + h.size() + 1) % 64) % 64, ' ');
    h.push_back('\n');
  }
  const std::string preamble = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0, char(h.size() & 0xff), char(h.size() >> 8)};
  const std::string file = preamble + h + std::string(data_bytes, '\x3c');  // 0x3c3c: a finite half
  return std::vector<uint8_t>(file.begin(), file.end());
}

void expect_parse_error(const std::vector<uint8_t>& bytes, const std::string& problem) {
  expect_error([&] { tools::parse_npy(bytes.data(), bytes.size(), "case.npy"); }, ErrorCode::invalid_argument,
               {"case.npy", problem});
}

TEST(Npy, ReadsNumpyFilesOfEveryVersionAndType) {
  struct Fixture {
    const char* file;
    NpyType type;
    std::vector<uint64_t> shape;
  } fixtures[] = {{"f16_5x2x4.npy", NpyType::f16, {5, 2, 4}},
                  {"f32_3x2x8.npy", NpyType::f32, {3, 2, 8}},
                  {"f32_v2_4x1x8.npy", NpyType::f32, {4, 1, 8}},
                  {"f16_v3_2x3x8.npy", NpyType::f16, {2, 3, 8}}};
  for (const auto& f : fixtures) {
    SCOPED_TRACE(f.file);
    const NpyArray a = tools::read_npy(kData + f.file);
    EXPECT_EQ(a.type, f.type);
    EXPECT_EQ(a.shape, f.shape);
    const size_t n = f.shape[0] * f.shape[1] * f.shape[2];
    ASSERT_EQ(a.data.size(), n * (f.type == NpyType::f16 ? 2 : 4));
    const std::vector<uint16_t> halves = tools::npy_to_fp16(a);
    ASSERT_EQ(halves.size(), n);
    for (size_t i = 0; i < n; ++i) {
      // Bit patterns, so that NumPy's -0.0 must come back as -0.0.
      EXPECT_EQ(halves[i], fp16::from_float(float(fixture_value(i)))) << "element " << i;
      if (f.type == NpyType::f32) {
        EXPECT_EQ(std::bit_cast<uint32_t>(f32_at(a, i)), std::bit_cast<uint32_t>(float(fixture_value(i))));
      }
    }
  }
}

TEST(Npy, WriterReproducesNumpyBytes) {
  TempDir dir;
  for (const char* name : {"f16_5x2x4.npy", "f32_3x2x8.npy"}) {
    SCOPED_TRACE(name);
    const NpyArray a = tools::read_npy(kData + name);
    tools::write_npy(dir.file(name), a);
    EXPECT_EQ(file_bytes(dir.file(name)), file_bytes(kData + name));
  }
}

TEST(Npy, RandomArraysRoundTrip) {
  const uint64_t seed = tools::test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set VIDKV_TEST_SEED to replay)");
  std::mt19937_64 rng(seed);
  TempDir dir;
  for (NpyType type : {NpyType::f16, NpyType::f32}) {
    NpyArray a;
    a.type = type;
    a.shape = {1 + rng() % 40, 1 + rng() % 5, 1 + rng() % 130};
    a.data.resize(a.shape[0] * a.shape[1] * a.shape[2] * (type == NpyType::f16 ? 2 : 4));
    for (auto& b : a.data) b = uint8_t(rng());
    tools::write_npy(dir.file("a.npy"), a);
    const auto bytes = file_bytes(dir.file("a.npy"));
    EXPECT_EQ((bytes.size() - a.data.size()) % 64, 0u) << "data starts 64-byte aligned, as NumPy writes it";
    const NpyArray b = tools::read_npy(dir.file("a.npy"));
    EXPECT_EQ(b.type, a.type);
    EXPECT_EQ(b.shape, a.shape);
    EXPECT_EQ(b.data, a.data);
  }
}

TEST(Npy, Fp32IsRoundedToNearestEvenHalves) {
  // Ties between two halves go to the even one; values beyond fp16 become infinities (the bench's
  // dump reader then refuses them, naming the element).
  const float values[] = {1.0f + 0x1.0p-11f, 1.0f + 3 * 0x1.0p-11f, -2.5f, 65520.0f, 1e-8f, -0.0f};
  NpyArray a;
  a.type = NpyType::f32;
  a.shape = {1, 1, 6};
  a.data.resize(24);
  std::memcpy(a.data.data(), values, 24);
  const auto h = tools::npy_to_fp16(a);
  EXPECT_EQ(h[0], 0x3c00u);  // 1 + 2^-11 ties to 1.0
  EXPECT_EQ(h[1], 0x3c02u);  // 1 + 3 * 2^-11 ties up to the even 1 + 2^-9
  EXPECT_EQ(h[2], 0xc100u);
  EXPECT_EQ(h[3], 0x7c00u);  // 65520 rounds to +inf
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(h[i], fp16::from_float(values[i]));
}

TEST(Npy, AcceptsTheHeaderVariantsTheFormatAllows) {
  // Any key order, double quotes, '=' on a little-endian host, no trailing comma, tabs.
  for (const std::string header : {"{'shape': (1, 2, 3), 'fortran_order': False, 'descr': '<f2', }",
                                   "{\"descr\": \"<f2\", \"fortran_order\": False, \"shape\": (1, 2, 3)}",
                                   "{'descr': '=f2', 'fortran_order': False, 'shape': (1,2,3,)}",
                                   "{'descr':\t'<f2','fortran_order':False,'shape':(1, 2, 3)}"}) {
    SCOPED_TRACE(header);
    const auto bytes = npy_v1(header, 12);
    const NpyArray a = tools::parse_npy(bytes.data(), bytes.size(), "ok.npy");
    EXPECT_EQ(a.type, NpyType::f16);
    EXPECT_EQ(a.shape, (std::vector<uint64_t>{1, 2, 3}));
    EXPECT_EQ(a.data.size(), 12u);
  }
}

TEST(Npy, RefusesRealNumpyFilesItCannotRead) {
  struct Case {
    const char* file;
    const char* problem;
  } cases[] = {{"bad_fortran_2x3x4.npy", "fortran_order is True"},
               {"bad_bigendian_2x2x2.npy", "big-endian"},
               {"bad_2d_4x8.npy", "2-D"},
               {"bad_float64_2x2x2.npy", "'<f8' is not fp16 or fp32"},
               {"bad_int32_2x2x2.npy", "'<i4' is not fp16 or fp32"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file);
    expect_error([&] { tools::read_npy(kData + c.file); }, ErrorCode::invalid_argument, {c.file, c.problem});
  }
}

TEST(Npy, RefusesBrokenPreambles) {
  const std::string good = "{'descr': '<f2', 'fortran_order': False, 'shape': (1, 2, 3), }";
  expect_parse_error({}, "not a .npy file");
  expect_parse_error({0x93, 'N', 'U'}, "not a .npy file");
  expect_parse_error({'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0, 0, 0}, "not a .npy file");
  expect_parse_error({0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0}, "ends inside the .npy preamble");
  auto bytes = npy_v1(good, 12);
  bytes[6] = 4;
  expect_parse_error(bytes, "version 4.0");
  bytes[6] = 1;
  bytes[7] = 1;
  expect_parse_error(bytes, "version 1.1");
  // Header length past the end of the file.
  bytes = npy_v1(good, 12);
  bytes[8] = 0xff;
  bytes[9] = 0xff;
  expect_parse_error(bytes, "runs past the end");
  // A version 2.0 length of almost 4 GiB is refused before anything is read or allocated.
  std::vector<uint8_t> v2 = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0xf0, 0xff, 0xff, 0xff, '{', '}'};
  expect_parse_error(v2, "over the 1048576-byte limit");
  v2.resize(11);
  expect_parse_error(v2, "ends inside the .npy preamble");
}

TEST(Npy, RefusesMalformedHeaders) {
  struct Case {
    std::string header;
    const char* problem;
  } cases[] = {
      {"[1, 2, 3]", "expected '{'"},
      {"{'descr': '<f2', 'shape': (1, 2, 3), }", "no 'fortran_order'"},
      {"{'fortran_order': False, 'shape': (1, 2, 3), }", "no 'descr'"},
      {"{'descr': '<f2', 'fortran_order': False, }", "no 'shape'"},
      {"{'descr': '<f2', 'descr': '<f2', 'fortran_order': False, 'shape': (1, 2, 3), }", "'descr' appears twice"},
      {"{'descr': '<f2', 'fortran_order': False, 'shape': (1, 2, 3), 'extra': 1, }", "unexpected key 'extra'"},
      {"{'descr': '<f2' 'fortran_order': False, 'shape': (1, 2, 3), }", "expected ',' or '}'"},
      {"{descr: '<f2', 'fortran_order': False, 'shape': (1, 2, 3), }", "quoted string"},
      {"{'descr': '<f2, 'fortran_order': False, 'shape': (1, 2, 3), }", "expected ',' or '}'"},
      {"{'descr': '|f2', 'fortran_order': False, 'shape': (1, 2, 3), }", "no byte order"},
      {"{'descr': '>f4', 'fortran_order': False, 'shape': (1, 2, 3), }", "big-endian"},
      {"{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2, 3), }", "'<f8' is not fp16 or fp32"},
      {"{'descr': 'float16', 'fortran_order': False, 'shape': (1, 2, 3), }", "'float16' is not fp16 or fp32"},
      {"{'descr': '<f2', 'fortran_order': True, 'shape': (1, 2, 3), }", "fortran_order is True"},
      {"{'descr': '<f2', 'fortran_order': 'False', 'shape': (1, 2, 3), }", "not True or False"},
      {"{'descr': '<f2', 'fortran_order': 0, 'shape': (1, 2, 3), }", "not True or False"},
      {"{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), }", "is 2-D"},
      {"{'descr': '<f2', 'fortran_order': False, 'shape': (1, 1, 2, 3), }", "is 4-D"},
      {"{'descr': '<f2', 'fortran_order': False, 'shape': (), }", "is 0-D"},
      {"{'descr': '<f2', 'fortran_order': False, 'shape': (6), }", "without a comma is not a tuple"},
      {"{'descr': '<f2', 'fortran_order': False, 'shape': (1, 0, 3), }", "zero dimension"},
      {"{'descr': '<f2', 'fortran_order': False, 'shape': (1, -2, 3), }", "non-negative integer"},
      {"{'descr': '<f2', 'fortran_order': False, 'shape': (1, 02, 3), }", "leading zero"},
      {"{'descr': '<f2', 'fortran_order': False, 'shape': (1, 2L, 3), }", "expected ',' or ')'"},
      {"{'descr': '<f2', 'fortran_order': False, 'shape': [1, 2, 3], }", "expected '('"},
      {"{'descr': '<f2', 'fortran_order': False, 'shape': (99999999999999999999, 1, 1), }", "overflows 64 bits"},
      {"{'descr': '<f2', 'fortran_order': False, 'shape': (1, 2, 3), } x", "does not end with spaces and a newline"},
      {"{'descr': '<f2', 'fortran_order': False, 'shape': (1, 2, 3), ", "quoted string"},
      {"{'descr': '<f2', 'fortran_order': False, 'shape': (1, 2, 3", "expected ',' or ')'"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.header);
    expect_parse_error(npy_v1(c.header, 12), c.problem);
  }
  // A header cut short, no newline at the end, and a byte that is not printable ASCII.
  expect_parse_error(npy_v1("{'descr': '<f2'", 12, true), "ends inside the dict");
  expect_parse_error(npy_v1("{'descr': '<f2', 'fortran_order': False, 'shape': (1, 2, 3), }    ", 12, true),
                     "does not end with spaces and a newline");
  expect_parse_error(npy_v1("{'descr': '<f2', 'fortran_order': False, 'shape': (1, 2, 3), '\xc3\xa9': 1}", 12),
                     "not printable ASCII");
}

TEST(Npy, RefusesDataOfTheWrongSize) {
  const std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }";
  expect_parse_error(npy_v1(header, 95), "needs 96 data bytes, the file has 95");
  expect_parse_error(npy_v1(header, 97), "needs 96 data bytes, the file has 97");
  // A lying header that claims 2^64 / 8 elements in a tiny file: refused by the size check, never
  // allocated (read_npy allocates the file's real size only).
  expect_parse_error(npy_v1("{'descr': '<f2', 'fortran_order': False, 'shape': (4294967296, 4294967296, 1), }", 8),
                     "overflows 64 bits");
  expect_parse_error(npy_v1("{'descr': '<f2', 'fortran_order': False, 'shape': (4294967295, 65535, 8), }", 8),
                     "the file has 8");
  TempDir dir;
  const auto lying = npy_v1("{'descr': '<f2', 'fortran_order': False, 'shape': (4000000000, 1000, 8), }", 8);
  std::ofstream(dir.file("lying.npy"), std::ios::binary).write(reinterpret_cast<const char*>(lying.data()), lying.size());
  expect_error([&] { tools::read_npy(dir.file("lying.npy")); }, ErrorCode::invalid_argument, {"lying.npy", "the file has 8"});
}

TEST(Npy, ReadAndWriteFailuresNameThePath) {
  TempDir dir;
  expect_error([&] { tools::read_npy(dir.file("absent.npy")); }, ErrorCode::io_error, {"absent.npy"});
  expect_error([&] { tools::read_npy(dir.path.string()); }, ErrorCode::io_error, {dir.path.string()});
  NpyArray a;
  a.type = NpyType::f16;
  a.shape = {2, 2, 2};
  a.data.resize(16);
  expect_error([&] { tools::write_npy(dir.file("no/such/dir/x.npy"), a); }, ErrorCode::io_error, {"x.npy"});
  a.data.resize(15);
  expect_error([&] { tools::write_npy(dir.file("y.npy"), a); }, ErrorCode::invalid_argument, {"y.npy", "15 bytes"});
  a.shape = {4, 4};
  expect_error([&] { tools::write_npy(dir.file("z.npy"), a); }, ErrorCode::invalid_argument, {"z.npy", "3-D"});
  EXPECT_FALSE(fs::exists(dir.file("y.npy")));
  EXPECT_FALSE(fs::exists(dir.file("z.npy")));
}

NpyArray zeros(NpyType type, uint64_t t, uint64_t h, uint64_t d) {
  NpyArray a;
  a.type = type;
  a.shape = {t, h, d};
  a.data.assign(t * h * d * (type == NpyType::f16 ? 2 : 4), 0);
  return a;
}

TEST(Npy, ScanKvDirFindsTheGeometry) {
  TempDir dir;
  for (int l = 0; l < 3; ++l) {
    // fp16 and fp32 may be mixed; other files in the directory are ignored.
    tools::write_npy(dir.file("k_" + std::to_string(l) + ".npy"), zeros(NpyType::f16, 70, 2, 64));
    tools::write_npy(dir.file("v_" + std::to_string(l) + ".npy"), zeros(l == 1 ? NpyType::f32 : NpyType::f16, 70, 2, 64));
  }
  std::ofstream(dir.file("README.txt")) << "notes";
  std::ofstream(dir.file("q_0.npy")) << "not a layer file";
  const tools::KvDump d = tools::scan_kv_dir(dir.path.string());
  EXPECT_EQ(d.layers, 3u);
  EXPECT_EQ(d.tokens, 70u);
  EXPECT_EQ(d.kv_heads, 2u);
  EXPECT_EQ(d.head_dim, 64u);
}

TEST(Npy, ScanKvDirNamesTheMissingOrOddFile) {
  TempDir dir;
  const std::string path = dir.path.string();
  expect_error([&] { tools::scan_kv_dir(path); }, ErrorCode::io_error, {"no k_0.npy"});
  expect_error([&] { tools::scan_kv_dir(dir.file("absent")); }, ErrorCode::io_error, {"absent", "not a directory"});
  for (int l = 0; l < 3; ++l) {
    tools::write_npy(dir.file("k_" + std::to_string(l) + ".npy"), zeros(NpyType::f16, 40, 4, 128));
    if (l != 1) tools::write_npy(dir.file("v_" + std::to_string(l) + ".npy"), zeros(NpyType::f16, 40, 4, 128));
  }
  expect_error([&] { tools::scan_kv_dir(path); }, ErrorCode::io_error, {"v_1.npy", "missing"});
  tools::write_npy(dir.file("v_1.npy"), zeros(NpyType::f32, 40, 4, 64));
  expect_error([&] { tools::scan_kv_dir(path); }, ErrorCode::invalid_argument, {"v_1.npy", "(40, 4, 64)", "differs"});
  tools::write_npy(dir.file("v_1.npy"), zeros(NpyType::f32, 40, 4, 128));
  EXPECT_EQ(tools::scan_kv_dir(path).layers, 3u);
  // A gap: k_4 without k_3.
  tools::write_npy(dir.file("k_4.npy"), zeros(NpyType::f16, 40, 4, 128));
  expect_error([&] { tools::scan_kv_dir(path); }, ErrorCode::io_error, {"k_3.npy", "missing"});
  fs::remove(dir.file("k_4.npy"));
  // Names that look like layer files but are not.
  std::ofstream(dir.file("k_01.npy")) << "x";
  expect_error([&] { tools::scan_kv_dir(path); }, ErrorCode::invalid_argument, {"k_01.npy", "odd file name"});
  fs::remove(dir.file("k_01.npy"));
  std::ofstream(dir.file("v_x.npy")) << "x";
  expect_error([&] { tools::scan_kv_dir(path); }, ErrorCode::invalid_argument, {"v_x.npy", "odd file name"});
  fs::remove(dir.file("v_x.npy"));
  // A malformed layer file: truncated data.
  auto bytes = file_bytes(dir.file("k_2.npy"));
  bytes.resize(bytes.size() - 2);
  std::ofstream(dir.file("k_2.npy"), std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  expect_error([&] { tools::scan_kv_dir(path); }, ErrorCode::invalid_argument, {"k_2.npy", "data bytes"});
}

}  // namespace
}  // namespace vidkv::test
