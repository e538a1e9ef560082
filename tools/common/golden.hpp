#pragma once
// Golden vectors made by the authors' quantizer (tests/golden/README.md): one directory per
// case, a manifest.json naming raw little-endian arrays with dtype, shape, nbytes and sha256.
// Every array read is checked against its manifest entry, so a damaged file is never compared.
#include <cstdint>
#include <string>
#include <vector>

#include "common/json.hpp"

namespace vidkv::tools {

struct GoldenArray {
  std::string dtype;  // numpy name: float16, int32, uint8, int64, ...
  std::vector<uint64_t> shape;
  std::vector<uint8_t> bytes;
  // Typed copies; each throws Error(invalid_argument) naming the dtype when it does not match
  // (as_u16: float16/uint16/int16 bits; as_i32: int32/uint32; as_u8: uint8/int8/bool).
  std::vector<uint16_t> as_u16() const;
  std::vector<int32_t> as_i32() const;
  std::vector<uint8_t> as_u8() const;
  std::vector<int64_t> as_i64() const;  // int64/uint64 (index arrays of later cases)
  uint64_t elements() const;            // product of shape (1 for a scalar)
};

class GoldenCase {
 public:
  // Reads dir/manifest.json: Error(io_error) when missing, corrupt_data when malformed or when it
  // lacks "arrays" or "params".
  static GoldenCase load(const std::string& dir);
  const std::string& name() const { return name_; }
  const std::string& dir() const { return dir_; }
  const json::Value& manifest() const { return manifest_; }
  const json::Value& params() const { return manifest_.at("params"); }
  bool has(const std::string& array) const;
  // Reads the file named in the manifest and checks its size against nbytes, nbytes against
  // dtype x shape, and the sha256: Error(io_error) when it cannot be read, corrupt_data otherwise,
  // naming the file and the problem; invalid_argument when the manifest has no such array.
  GoldenArray array(const std::string& name) const;

 private:
  std::string name_, dir_;
  json::Value manifest_;
};

// Full paths (root/<name>) of the subdirectories of root that hold a manifest.json, sorted by
// name; Error(io_error) when root is missing or not a directory.
std::vector<std::string> list_golden_cases(const std::string& root);

// Bytes per element of a numpy dtype name; 0 when unknown.
uint32_t dtype_size(const std::string& dtype);

}  // namespace vidkv::tools
