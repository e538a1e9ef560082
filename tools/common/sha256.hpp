#pragma once
// SHA-256 (FIPS 180-4, through OpenSSL), used to check golden-vector files against their manifests.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vidkv::tools {

// Lowercase hex digest (64 characters) of size bytes at data.
std::string sha256_hex(const void* data, size_t size);
inline std::string sha256_hex(const std::vector<uint8_t>& bytes) {
  return sha256_hex(bytes.data(), bytes.size());
}

}  // namespace vidkv::tools
