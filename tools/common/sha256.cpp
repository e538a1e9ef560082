#include "common/sha256.hpp"

#include <openssl/evp.h>

#include "vidkv/error.hpp"

namespace vidkv::tools {

// OpenSSL's libcrypto (Debian libssl-dev) computes the digest.
std::string sha256_hex(const void* data, size_t size) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(data, size, digest, &length, EVP_sha256(), nullptr) != 1 || length != 32) {
    throw Error(ErrorCode::missing_feature, "OpenSSL could not compute a SHA-256 digest");
  }
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) out += hex[digest[i] >> 4], out += hex[digest[i] & 15];
  return out;
}

}  // namespace vidkv::tools
