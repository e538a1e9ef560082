#pragma once
// Per-kernel GPU timestamps for the profiling tools. While a Profiler is attached to a Context,
// every ComputePipeline::dispatch and every VkFFT transform recorded on that context is bracketed
// by two timestamps labelled with the pipeline's (or transform's) name; collect() reads them back
// once the work has completed. With no profiler attached, recording costs one pointer test.
//
//   rt::Profiler profiler(ctx);          // attaches itself
//   cache.prefill(...);                  // synchronous: the work has completed on return
//   for (auto& e : profiler.collect()) ... e.label, e.start_ms, e.duration_ms
//
// The timestamps are written at BOTTOM_OF_PIPE, i.e. when all earlier work has finished, so an
// event spans its dispatch plus any wait on earlier work; vidkv puts a barrier between dependent
// dispatches anyway, so on a device that would overlap independent dispatches the profile shows
// them serialized, a little slower than without the profiler. Not thread-safe against attaching
// and detaching while another thread records; begin/end/collect themselves are locked.
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <vulkan/vulkan_core.h>

#include "vidkv/export.hpp"

namespace vidkv::rt {

class Context;

struct ProfileEvent {
  std::string label;         // the pipeline's shader name, or "vkfft R2C n=64" and the like
  double start_ms = 0.0;     // device time since the first event of the same collect()
  double duration_ms = 0.0;  // end timestamp minus start timestamp
};

class VIDKV_API Profiler {
 public:
  // Attaches itself to `context` (replacing any profiler attached before, which is detached).
  // `capacity`: events held between two collect() calls; more are counted in dropped().
  // Throws Error(missing_feature) when the compute queue has no timestamps.
  explicit Profiler(std::shared_ptr<Context> context, uint32_t capacity = 4096);
  // Detaches itself if still attached.
  ~Profiler();
  Profiler(const Profiler&) = delete;
  Profiler& operator=(const Profiler&) = delete;

  // Used by the recorders: resets and writes the start timestamp of a new event into `cmd` and
  // returns its slot (kNoSlot when the capacity is used up); end() writes the matching end.
  static constexpr uint32_t kNoSlot = UINT32_MAX;
  uint32_t begin(VkCommandBuffer cmd, const std::string& label);
  void end(VkCommandBuffer cmd, uint32_t slot);

  // The events recorded since the last collect(), in recording order, and frees their slots. Call
  // it only once the command buffers holding them have completed (or will never run): it does not
  // wait, and events whose timestamps are not available (never submitted, or still running) are
  // left out and counted in dropped(). (A reused slot whose new command buffer never ran still
  // shows its previous timestamps; those are recognised as unchanged and dropped too.)
  std::vector<ProfileEvent> collect();
  uint64_t dropped() const;

 private:
  std::shared_ptr<Context> context_;
  VkQueryPool pool_ = VK_NULL_HANDLE;
  uint32_t capacity_ = 0;
  mutable std::mutex mutex_;
  std::vector<std::string> labels_;  // one per event slot in use
  std::vector<bool> ended_;
  std::vector<uint64_t> last_reported_;  // start and end ticks per slot, as last handed out
  std::vector<bool> reported_;
  uint64_t dropped_ = 0;
};

}  // namespace vidkv::rt
