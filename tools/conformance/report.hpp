#pragma once
// Prints one line per check as it completes and writes the whole run as JSON.
#include <string>
#include <vector>

#include "common/check_result.hpp"
#include "common/json.hpp"

namespace vidkv::tools {

class ConformanceReport {
 public:
  void add(const CheckResult& result);
  void skip(const std::string& name, const std::string& why);
  size_t passed() const { return passed_; }
  size_t failed() const { return failed_; }
  // Writes {"device":..., "seed":..., "checks":[...], "passed":N, "failed":N, "skipped":[...]}.
  void write_json(const std::string& path, const json::Value& device, uint64_t seed) const;

 private:
  std::vector<CheckResult> results_;
  std::vector<std::pair<std::string, std::string>> skipped_;
  size_t passed_ = 0;
  size_t failed_ = 0;
};

}  // namespace vidkv::tools
