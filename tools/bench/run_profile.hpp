#pragma once
// The bench's timeline: host phases (wall clock) and the GPU kernels each phase recorded (the
// runtime profiler's timestamps), summed per kernel for the terminal table and kept as events for
// the Chrome trace.
//
// GPU timestamps are on the device's clock, which has no defined relation to the host's. Every
// cache call the bench makes is synchronous, so a phase's kernels ran between the phase's start
// and end: they are placed on the host clock so that the phase's last kernel ends where the phase
// ends (or the first starts where it starts, if the kernels span more than the phase claims).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "vidkv/runtime/profiler.hpp"

namespace vidkv::bench {

struct TraceEvent {
  std::string name, category;
  int thread = 0;  // 0: host, 1: GPU
  double start_us = 0, duration_us = 0;
};

struct KernelTotal {
  std::string label;
  uint64_t calls = 0;
  double total_ms = 0;
};

struct PhaseTimes {
  double host_ms = 0;      // wall time of the phase
  double gpu_sum_ms = 0;   // sum of its kernels' durations
  double gpu_span_ms = 0;  // first kernel start to last kernel end (0 without kernels)
  uint32_t kernels = 0;
};

class RunProfile {
 public:
  // profiler: null when the device has no timestamps (then phases have host times only).
  explicit RunProfile(rt::Profiler* profiler);

  // Runs `work` as one phase; rethrows what it throws (its kernels are still collected).
  PhaseTimes phase(const std::string& name, const std::string& category, const std::function<void()>& work);
  // A GPU interval measured apart (the copy bandwidth's own timestamps), placed at the end of the
  // last phase (run the work that it times as a phase of its own).
  void add_gpu_interval(const std::string& name, const std::string& category, double ms);

  std::vector<KernelTotal> kernel_totals() const;  // the largest total first
  const std::vector<TraceEvent>& events() const { return events_; }
  double now_us() const;
  bool has_gpu_timestamps() const { return profiler_ != nullptr; }
  uint64_t dropped_kernels() const { return profiler_ ? profiler_->dropped() : 0; }

 private:
  void add_kernel(const std::string& label, double ms);

  rt::Profiler* profiler_;
  int64_t origin_ns_;
  double last_phase_end_us_ = 0;
  std::vector<TraceEvent> events_;
  std::vector<KernelTotal> totals_;
};

}  // namespace vidkv::bench
