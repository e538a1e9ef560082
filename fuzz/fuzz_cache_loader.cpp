// libFuzzer target: parse_cache_file over arbitrary bytes (fuzz/CMakeLists.txt builds it with
// AddressSanitizer and UBSan). The parser must accept or throw vidkv::Error(corrupt_data), never
// crash, hang, read out of bounds or allocate what a length field claims; and whatever it accepts
// must be a fixed point: serializing the parsed contents gives back the same bytes.
//
// A mutated byte almost always breaks its section's CRC-32C, which would stop every input at the
// checksum. So each input is parsed twice: as it is (magic, version, lengths, checksums), and with
// every section's checksum recomputed, which lets the mutations reach the checks of counts,
// lengths, ids, tables and settings behind it. The parser itself is the production code, unchanged.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "vidkv/cache_file.hpp"

namespace {

// Walks the sections (tag, u64 length, payload, u32 CRC) as far as their lengths fit and writes
// the right CRC into each.
std::vector<uint8_t> with_checksums_repaired(const uint8_t* data, size_t size) {
  std::vector<uint8_t> out(data, data + size);
  size_t at = 12;  // magic and format version
  while (at + 12 <= out.size()) {
    uint64_t length = 0;
    for (int i = 11; i >= 4; --i) length = length << 8 | out[at + i];
    if (length > out.size() - at - 12 || out.size() - at - 12 - length < 4) break;
    const uint32_t crc = vidkv::crc32c(out.data() + at, 12 + length);
    for (int i = 0; i < 4; ++i) out[at + 12 + length + i] = uint8_t(crc >> (8 * i));
    at += 12 + length + 4;
  }
  return out;
}

void check(const uint8_t* data, size_t size) {
  vidkv::CacheFileContents contents;
  try {
    contents = vidkv::parse_cache_file(data, size, "fuzz input");
  } catch (const vidkv::Error& e) {
    if (e.code() != vidkv::ErrorCode::corrupt_data) {
      std::fprintf(stderr, "refused with %s instead of corrupt_data: %s\n", vidkv::error_code_name(e.code()), e.what());
      std::abort();
    }
    return;
  }
  const std::vector<uint8_t> again = vidkv::serialize_cache_file(contents);
  if (again.size() != size || !std::equal(again.begin(), again.end(), data)) {
    std::fprintf(stderr, "an accepted file of %zu bytes does not serialize back to itself (%zu bytes)\n", size,
                 again.size());
    std::abort();
  }
  (void)vidkv::cache_file_stats(contents);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  check(data, size);
  const std::vector<uint8_t> repaired = with_checksums_repaired(data, size);
  check(repaired.data(), repaired.size());
  return 0;
}
