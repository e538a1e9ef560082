#include "conformance/report.hpp"

#include <cstdio>
#include <fstream>

#include "vidkv/error.hpp"

namespace vidkv::tools {

void ConformanceReport::begin_pass(const std::string& label, json::Value info) {
  pass_ = label;
  info.set("label", label);
  passes_.push_back(std::move(info));
}

void ConformanceReport::end_pass(json::Value info) {
  if (passes_.empty()) return;
  for (auto& [key, value] : info.as_object()) passes_.back().set(key, value);
}

void ConformanceReport::add(const CheckResult& r) {
  results_.push_back({pass_, r});
  (r.passed ? passed_ : failed_)++;
  const std::string name = pass_.empty() ? r.name : pass_ + "/" + r.name;
  std::printf("%-4s %-72s %-14s max_err %-10.3g %s\n", r.passed ? "PASS" : "FAIL", name.c_str(), r.shape.c_str(),
              r.max_error, r.detail.c_str());
  std::fflush(stdout);
}

void ConformanceReport::skip(const std::string& name, const std::string& why) {
  const std::string full = pass_.empty() ? name : pass_ + "/" + name;
  skipped_.emplace_back(full, why);
  std::printf("SKIP %-72s %s\n", full.c_str(), why.c_str());
}

void ConformanceReport::write_json(const std::string& path, const json::Value& device, uint64_t seed) const {
  json::Value doc = json::Value::object();
  doc.set("device", device);
  doc.set("seed", std::to_string(seed));
  json::Value passes = json::Value::array();
  for (const auto& p : passes_) passes.push_back(p);
  doc.set("passes", passes);
  json::Value checks = json::Value::array();
  for (const auto& [pass, r] : results_) {
    json::Value c = json::Value::object();
    c.set("pass", pass);
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
