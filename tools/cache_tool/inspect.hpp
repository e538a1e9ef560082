#pragma once
// `vidkv-cache inspect`: what a saved cache holds, from the host parser alone (no device).
#include <string>

namespace vidkv::cache_tool {

struct InspectOptions {
  std::string path;
  bool layers = false;  // one line per (sequence, layer) besides the totals
};

// Prints the report to stdout. Throws vidkv::Error (corrupt_data, io_error) for a bad file.
void inspect(const InspectOptions& options);

}  // namespace vidkv::cache_tool
