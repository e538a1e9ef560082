#include "bench/run_profile.hpp"

#include <algorithm>
#include <chrono>

namespace vidkv::bench {
namespace {

int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

RunProfile::RunProfile(rt::Profiler* profiler) : profiler_(profiler), origin_ns_(steady_ns()) {}

double RunProfile::now_us() const { return double(steady_ns() - origin_ns_) * 1e-3; }

void RunProfile::add_kernel(const std::string& label, double ms) {
  auto it = std::find_if(totals_.begin(), totals_.end(), [&](const KernelTotal& k) { return k.label == label; });
  if (it == totals_.end()) {
    totals_.push_back({label, 0, 0.0});
    it = totals_.end() - 1;
  }
  ++it->calls;
  it->total_ms += ms;
}

PhaseTimes RunProfile::phase(const std::string& name, const std::string& category, const std::function<void()>& work) {
  // Kernels recorded outside any phase are counted in the totals but have no place on the trace.
  if (profiler_)
    for (const auto& e : profiler_->collect()) add_kernel(e.label, e.duration_ms);
  const double start = now_us();
  PhaseTimes t;
  auto finish = [&] {
    const double end = now_us();
    t.host_ms = (end - start) * 1e-3;
    events_.push_back({name, category, 0, start, end - start});
    last_phase_end_us_ = end;
    if (!profiler_) return;
    const auto kernels = profiler_->collect();
    if (kernels.empty()) return;
    double span_end = 0;
    for (const auto& e : kernels) {
      span_end = std::max(span_end, e.start_ms + e.duration_ms);
      t.gpu_sum_ms += e.duration_ms;
      add_kernel(e.label, e.duration_ms);
    }
    t.gpu_span_ms = span_end - kernels.front().start_ms;
    t.kernels = uint32_t(kernels.size());
    const double offset_us = std::max(start, end - span_end * 1e3);
    for (const auto& e : kernels)
      events_.push_back({e.label, "gpu", 1, offset_us + e.start_ms * 1e3, e.duration_ms * 1e3});
  };
  try {
    work();
  } catch (...) {
    finish();
    throw;
  }
  finish();
  return t;
}

void RunProfile::add_gpu_interval(const std::string& name, const std::string& category, double ms) {
  const double end = last_phase_end_us_;
  events_.push_back({name, category, 1, std::max(0.0, end - ms * 1e3), ms * 1e3});
  add_kernel(name, ms);
}

std::vector<KernelTotal> RunProfile::kernel_totals() const {
  std::vector<KernelTotal> sorted = totals_;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const KernelTotal& a, const KernelTotal& b) { return a.total_ms > b.total_ms; });
  return sorted;
}

}  // namespace vidkv::bench
