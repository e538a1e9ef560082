#include "common/golden.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "common/sha256.hpp"
#include "vidkv/error.hpp"

namespace vidkv::tools {
namespace fs = std::filesystem;
namespace {

// Little-endian bytes -> host integers (x86 and ARM Linux hosts are little-endian; the explicit
// assembly keeps this right on any host anyway).
template <class T>
std::vector<T> from_le(const GoldenArray& a, std::initializer_list<const char*> dtypes) {
  if (std::none_of(dtypes.begin(), dtypes.end(), [&](const char* d) { return a.dtype == d; })) {
    throw Error(ErrorCode::invalid_argument,
                "golden array of dtype " + a.dtype + " cannot be read as " +
                    std::to_string(sizeof(T) * 8) + "-bit " + *dtypes.begin());
  }
  std::vector<T> out(a.bytes.size() / sizeof(T));
  for (size_t i = 0; i < out.size(); ++i) {
    uint64_t v = 0;
    for (size_t b = 0; b < sizeof(T); ++b) v |= uint64_t(a.bytes[i * sizeof(T) + b]) << (8 * b);
    out[i] = T(v);
  }
  return out;
}

[[noreturn]] void corrupt(const std::string& file, const std::string& problem) {
  throw Error(ErrorCode::corrupt_data, "golden file " + file + ": " + problem);
}

}  // namespace

uint32_t dtype_size(const std::string& dtype) {
  if (dtype == "uint8" || dtype == "int8" || dtype == "bool") return 1;
  if (dtype == "float16" || dtype == "uint16" || dtype == "int16") return 2;
  if (dtype == "float32" || dtype == "uint32" || dtype == "int32") return 4;
  if (dtype == "float64" || dtype == "uint64" || dtype == "int64") return 8;
  return 0;
}

std::vector<uint16_t> GoldenArray::as_u16() const {
  return from_le<uint16_t>(*this, {"float16", "uint16", "int16"});
}
std::vector<int32_t> GoldenArray::as_i32() const {
  return from_le<int32_t>(*this, {"int32", "uint32"});
}
std::vector<uint8_t> GoldenArray::as_u8() const {
  return from_le<uint8_t>(*this, {"uint8", "int8", "bool"});
}
std::vector<int64_t> GoldenArray::as_i64() const {
  return from_le<int64_t>(*this, {"int64", "uint64"});
}

uint64_t GoldenArray::elements() const {
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;
  return n;
}

GoldenCase GoldenCase::load(const std::string& dir) {
  GoldenCase c;
  c.dir_ = dir;
  const std::string path = (fs::path(dir) / "manifest.json").string();
  if (!fs::is_regular_file(path)) throw Error(ErrorCode::io_error, "no golden manifest " + path);
  c.manifest_ = json::parse_file(path);
  if (!c.manifest_.is_object() || !c.manifest_.contains("arrays") ||
      !c.manifest_.at("arrays").is_object() || !c.manifest_.contains("params") ||
      !c.manifest_.at("params").is_object()) {
    corrupt(path, "manifest lacks an \"arrays\" or \"params\" object");
  }
  const json::Value* name = c.manifest_.find("case");
  c.name_ = name && name->is_string() ? name->as_string()
                                      : fs::path(dir).lexically_normal().filename().string();
  if (c.name_.empty()) c.name_ = fs::path(dir).parent_path().filename().string();
  return c;
}

bool GoldenCase::has(const std::string& array) const {
  return manifest_.at("arrays").contains(array);
}

GoldenArray GoldenCase::array(const std::string& name) const {
  const json::Value* entry = manifest_.at("arrays").find(name);
  if (entry == nullptr) {
    throw Error(ErrorCode::invalid_argument,
                "golden case " + name_ + " has no array \"" + name + "\"");
  }
  const std::string where = "case " + name_ + ", array " + name;
  GoldenArray a;
  std::string file, digest;
  uint64_t nbytes = 0;
  try {
    file = (fs::path(dir_) / entry->at("file").as_string()).string();
    a.dtype = entry->at("dtype").as_string();
    for (const json::Value& d : entry->at("shape").as_array()) a.shape.push_back(d.as_uint());
    nbytes = entry->at("nbytes").as_uint();
    digest = entry->at("sha256").as_string();
  } catch (const Error& e) {
    corrupt(dir_ + "/manifest.json", where + ": " + e.what());
  }
  const uint32_t size = dtype_size(a.dtype);
  if (size == 0) corrupt(file, where + ": unknown dtype " + a.dtype);
  if (nbytes != a.elements() * size) {
    corrupt(file, where + ": manifest nbytes " + std::to_string(nbytes) + " does not match " +
                      std::to_string(a.elements()) + " elements of " + a.dtype);
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(ErrorCode::io_error, "cannot open golden file " + file + " (" + where + ")");
  a.bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(ErrorCode::io_error, "cannot read golden file " + file);
  if (a.bytes.size() != nbytes) {
    corrupt(file, "holds " + std::to_string(a.bytes.size()) + " bytes, manifest says " +
                      std::to_string(nbytes) + " (" + where + ")");
  }
  const std::string actual = sha256_hex(a.bytes);
  if (actual != digest) {
    corrupt(file, "sha256 " + actual + " differs from the manifest's " + digest + " (" + where +
                      ")");
  }
  return a;
}

std::vector<std::string> list_golden_cases(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    throw Error(ErrorCode::io_error, "golden directory " + root + " does not exist");
  }
  std::vector<std::string> out;
  for (const fs::directory_entry& e : fs::directory_iterator(root, ec)) {
    if (e.is_directory() && fs::is_regular_file(e.path() / "manifest.json")) {
      out.push_back(e.path().string());
    }
  }
  if (ec) throw Error(ErrorCode::io_error, "cannot list golden directory " + root);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace vidkv::tools
