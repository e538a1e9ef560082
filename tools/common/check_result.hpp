#pragma once
// One line of a conformance or golden-vector report.
#include <string>

namespace vidkv::tools {

struct CheckResult {
  std::string name;    // "<impl>/<case>/<what>"
  std::string shape;   // e.g. "1x4x256x128"
  double max_error = 0;
  bool passed = false;
  std::string detail;  // first mismatch (index, expected, got) or a summary
};

}  // namespace vidkv::tools
