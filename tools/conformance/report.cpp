#include "conformance/report.hpp"

#include <cstdio>
#include <fstream>

#include "vidkv/error.hpp"

namespace vidkv::tools {

void ConformanceReport::add(const CheckResult& r) {
  results_.push_back(r);
  (r.passed ? passed_ : failed_)++;
  std::printf("%-4s %-64s %-12s max_err %-10.3g %s\n", r.passed ? "PASS" : "FAIL", r.name.c_str(), r.shape.c_str(),
              r.max_error, r.detail.c_str());
  std::fflush(stdout);
}

void ConformanceReport::skip(const std::string& name, const std::string& why) {
  skipped_.emplace_back(name, why);
  std::printf("SKIP %-64s %s\n", name.c_str(), why.c_str());
}

void ConformanceReport::write_json(const std::string& path, const json::Value& device, uint64_t seed) const {
  json::Value doc = json::Value::object();
  doc.set("device", device);
  doc.set("seed", std::to_string(seed));
  json::Value checks = json::Value::array();
  for (const auto& r : results_) {
    json::Value c = json::Value::object();
    c.set("name", r.name);
    c.set("shape", r.shape);
    c.set("max_error", r.max_error);
    c.set("passed", r.passed);
    c.set("detail", r.detail);
    checks.push_back(c);
  }
  doc.set("checks", checks);
  json::Value skipped = json::Value::array();
  for (const auto& [name, why] : skipped_) {
    json::Value s = json::Value::object();
    s.set("name", name);
    s.set("reason", why);
    skipped.push_back(s);
  }
  doc.set("skipped", skipped);
  doc.set("passed", double(passed_));
  doc.set("failed", double(failed_));
  std::ofstream out(path);
  out << json::write(doc, true) << "\n";
  if (!out) throw Error(ErrorCode::io_error, "cannot write " + path);
}

}  // namespace vidkv::tools
