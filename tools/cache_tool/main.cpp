// vidkv-cache: saved KV caches (docs/cache-format.md).
//   vidkv-cache inspect FILE [--layers]      what a file holds; verifies it (no device needed)
//   vidkv-cache compress --kv DIR --preset P -o FILE [--max-tokens N] [--q-heads N]
// Exit status: 0 done, 1 a bad file, dump or device failure (the message names it), 2 bad usage.
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "cache_tool/compress.hpp"
#include "cache_tool/inspect.hpp"
#include "vidkv/error.hpp"
#include "vidkv/version.hpp"

namespace {

const char* kUsage =
    "usage: vidkv-cache inspect FILE [--layers]\n"
    "       vidkv-cache compress --kv DIR --preset P -o FILE [--max-tokens N] [--q-heads N]\n"
    "       vidkv-cache --version | --help\n";

const char* kHelp =
    "\n"
    "inspect   checks a saved cache (magic, format version, the CRC-32C of every section, every\n"
    "          count and length against the geometry) and prints its settings, geometry, sequences,\n"
    "          the bytes of each part and the effective bits per value. --layers adds one line per\n"
    "          sequence and layer. Needs no GPU.\n"
    "compress  quantizes a K/V dump, DIR/k_<layer>.npy and DIR/v_<layer>.npy of shape\n"
    "          [tokens, kv_heads, head_dim] (fp16 or fp32), with the cache on the default device\n"
    "          (VIDKV_DEVICE picks another) and saves it as one sequence.\n"
    "          --preset    a preset (fp16, 2bit, kivi, k1.5-v2, k1.5-v1.58) or the original's\n"
    "                      configuration dictionary text\n"
    "          --max-tokens  the saved cache's max_tokens (default: the dump's tokens)\n"
    "          --q-heads     query heads (default: kv_heads x 7 at head_dim 128, else kv_heads)\n"
    "Exit status: 0 done, 1 a bad file or dump or a device failure, 2 bad usage.\n";

int usage(const std::string& problem) {
  std::fprintf(stderr, "vidkv-cache: %s\n%s", problem.c_str(), kUsage);
  return 2;
}

bool parse_count(const char* text, uint32_t& out) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || v == 0 || v > UINT32_MAX) return false;
  out = uint32_t(v);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace vidkv::cache_tool;
  if (argc < 2) return usage("no command");
  const std::string command = argv[1];
  if (command == "--version") {
    std::printf("vidkv-cache %s\n", VIDKV_VERSION_STRING);
    return 0;
  }
  if (command == "--help" || command == "-h") {
    std::printf("%s%s", kUsage, kHelp);
    return 0;
  }
  try {
    if (command == "inspect") {
      InspectOptions o;
      for (int i = 2; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--layers") {
          o.layers = true;
        } else if (!a.empty() && a[0] != '-' && o.path.empty()) {
          o.path = a;
        } else {
          return usage("inspect: unexpected argument '" + a + "'");
        }
      }
      if (o.path.empty()) return usage("inspect: no FILE");
      inspect(o);
      return 0;
    }
    if (command == "compress") {
      CompressOptions o;
      for (int i = 2; i < argc; ++i) {
        const std::string a = argv[i];
        if (i + 1 >= argc) return usage("compress: " + a + " needs a value");
        const char* value = argv[++i];
        if (a == "--kv") {
          o.kv_dir = value;
        } else if (a == "--preset") {
          o.settings = value;
        } else if (a == "-o" || a == "--output") {
          o.output = value;
        } else if (a == "--max-tokens") {
          if (!parse_count(value, o.max_tokens)) return usage("compress: --max-tokens " + std::string(value));
        } else if (a == "--q-heads") {
          if (!parse_count(value, o.q_heads)) return usage("compress: --q-heads " + std::string(value));
        } else {
          return usage("compress: unexpected argument '" + a + "'");
        }
      }
      if (o.kv_dir.empty() || o.settings.empty() || o.output.empty()) {
        return usage("compress: --kv, --preset and -o are required");
      }
      compress(o);
      return 0;
    }
    return usage("unknown command '" + command + "'");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vidkv-cache: error: %s\n", e.what());
    return 1;
  }
}
