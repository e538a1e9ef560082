#pragma once
// Prints one line per check as it completes and writes the whole run as JSON. A run is made of
// passes (one per subgroup size, one with fp16/int8 features off); every check line and JSON
// entry carries its pass's label.
#include <string>
#include <vector>

#include "common/check_result.hpp"
#include "common/json.hpp"

namespace vidkv::tools {

class ConformanceReport {
 public:
  // Starts a pass: later checks are named "<label>/<check>"; `info` is its JSON description
  // (features, pipelines), which end_pass may complete.
  void begin_pass(const std::string& label, json::Value info);
  void end_pass(json::Value info);
  void add(const CheckResult& result);
  void skip(const std::string& name, const std::string& why);
  size_t passed() const { return passed_; }
  size_t failed() const { return failed_; }
  // Writes {"device":..., "seed":..., "passes":[...], "checks":[{"pass", "name", ...}], "skipped":[...],
  // "passed":N, "failed":N}.
  void write_json(const std::string& path, const json::Value& device, uint64_t seed) const;

 private:
  struct Entry {
    std::string pass;
    CheckResult result;
  };
  std::string pass_;
  std::vector<json::Value> passes_;
  std::vector<Entry> results_;
  std::vector<std::pair<std::string, std::string>> skipped_;
  size_t passed_ = 0;
  size_t failed_ = 0;
};

}  // namespace vidkv::tools
