#pragma once
// --trace: the run's host phases and GPU kernels in the Chrome trace-event format (a JSON object
// with "traceEvents"; complete events, ph "X", ts and dur in microseconds), which Perfetto and
// chrome://tracing open. Thread 0 is the host, thread 1 the GPU.
#include <string>
#include <vector>

#include "bench/run_profile.hpp"

namespace vidkv::bench {

std::string trace_json(const std::vector<TraceEvent>& events, const std::string& device_name);

}  // namespace vidkv::bench
