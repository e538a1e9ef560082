#pragma once
// A Vulkan device that vidkv works on: either created by vidkv itself (instance, device and queue
// owned here) or handed over by an engine (nothing owned; the engine keeps every handle alive
// longer than the Context).
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <vulkan/vulkan_core.h>

#include "vidkv/error.hpp"
#include "vidkv/export.hpp"
#include "vidkv/runtime/device_info.hpp"

namespace vidkv::rt {

struct VIDKV_API ContextOptions {
  // VK_LAYER_KHRONOS_validation with a debug messenger. Default: the VIDKV_VALIDATION variable.
  bool validation = false;
  // With validation: also the layer's synchronization validation (missing barriers, hazards between
  // dispatches and copies). Default: on whenever validation is on, unless VIDKV_SYNC_VALIDATION=0.
  bool synchronization_validation = true;
  // Index or name substring of the device to use. Default: the VIDKV_DEVICE variable; when empty,
  // the first discrete GPU, else integrated, virtual, then CPU (lavapipe).
  std::string device_selector;
  // Treat the device as a discrete GPU even when its memory is unified: buffers are not mapped and
  // every upload and download goes through a staging copy (tests exercise that path on lavapipe).
  bool force_staging = false;
  // Subgroup size every compute pipeline made through ComputePipeline is created with
  // (VkPipelineShaderStageRequiredSubgroupSizeCreateInfo, with full subgroups where the workgroup
  // width allows and the device has computeFullSubgroups); 0 = the driver's choice. Needs
  // VK_EXT_subgroup_size_control with compute in requiredSubgroupSizeStages (else
  // Error(missing_feature)) and a power of two in the device's [min, max] subgroup size (else
  // Error(invalid_argument)). Conformance runs every shader under each allowed size this way.
  uint32_t required_subgroup_size = 0;
  // Leave shaderFloat16, shaderInt8 and the 16- and 8-bit storage-buffer access features off even
  // where the device has them, to run as on a device without them (vidkv's shaders do their fp16
  // arithmetic on 32-bit words and declare none of the capabilities these features allow).
  bool disable_float16_int8 = false;
  // Capture what the driver reports of every pipeline's compiled code (VK_KHR_pipeline_executable_
  // properties: registers, spills, instruction counts, and its internal representations such as
  // ACO's disassembly on RADV) into pipeline_records(). Error(missing_feature) when the device
  // lacks the extension or its pipelineExecutableInfo feature. For tools (vidkv-info --pipelines):
  // capturing makes pipeline creation slower.
  bool capture_pipeline_statistics = false;
  // Fills validation and device_selector from the environment.
  static ContextOptions from_environment();
};

// An engine's own device. The queue family must support compute; the device must have been
// created with VK_KHR_push_descriptor enabled (wrap checks both) (vidkv binds buffers with push descriptors so that
// nothing it records outlives the call that recorded it).
struct ExternalDevice {
  PFN_vkGetInstanceProcAddr get_instance_proc_addr = nullptr;  // the engine's loader entry point
  VkInstance instance = VK_NULL_HANDLE;
  VkPhysicalDevice physical_device = VK_NULL_HANDLE;
  VkDevice device = VK_NULL_HANDLE;
  uint32_t queue_family = 0;
  VkQueue queue = VK_NULL_HANDLE;
};

// What Context::create enabled on its device (Context::wrap cannot know what an engine enabled:
// known = false and everything else false/0 there).
struct EnabledFeatures {
  bool known = false;
  bool shader_float16 = false;
  bool shader_int8 = false;
  bool storage_buffer_16bit = false;
  bool storage_buffer_8bit = false;
  bool subgroup_size_control = false;    // VK_EXT_subgroup_size_control enabled
  bool compute_full_subgroups = false;
  uint32_t required_subgroup_size = 0;   // ContextOptions::required_subgroup_size
  uint32_t max_compute_workgroup_subgroups = 0;  // with subgroup_size_control
  bool pipeline_statistics = false;      // ContextOptions::capture_pipeline_statistics
};

// One statistic of a pipeline executable as the driver reports it (VkPipelineExecutableStatisticKHR).
struct PipelineStatistic {
  std::string name;         // e.g. "SGPRs", "VGPRs", "Spilled VGPRs", "Instructions" (driver's words)
  std::string description;
  bool is_bool = false;     // VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_BOOL32_KHR
  bool is_float = false;    // ..._FLOAT64_KHR; otherwise an integer (INT64 or UINT64)
  double value = 0;         // the value (bools 0/1; 64-bit integers beyond 2^53 lose precision)
};

// A driver's internal representation of an executable (e.g. "NIR Shader(s)", "ACO IR",
// "Assembly" on RADV), as text.
struct PipelineRepresentation {
  std::string name;
  std::string description;
  std::string text;
};

// One executable of a pipeline (a compute pipeline has one: the compute shader).
struct PipelineExecutable {
  std::string name;
  std::string description;
  uint32_t subgroup_size = 0;
  std::vector<PipelineStatistic> statistics;
  std::vector<PipelineRepresentation> representations;
};

// One pipeline made through ComputePipeline on this context, as created (coverage reports).
struct PipelineRecord {
  std::string name;                     // the shader's name
  std::vector<uint32_t> specialization;
  uint32_t local_size[3] = {0, 0, 0};   // workgroup size after specialization (0s: not found)
  uint32_t required_subgroup_size = 0;  // 0: created without one
  bool full_subgroups = false;
  std::vector<uint32_t> capabilities;   // SPIR-V OpCapability operands the module declares
  // With ContextOptions::capture_pipeline_statistics: what the driver reports of the compiled
  // code (empty otherwise).
  std::vector<PipelineExecutable> executables;
};

class Profiler;

struct ValidationMessage {
  VkDebugUtilsMessageSeverityFlagBitsEXT severity;
  std::string text;
};

class VIDKV_API Context {
 public:
  // Creates instance, device and queue. Throws Error(no_device) when there is no Vulkan device or
  // none matches the selector, Error(missing_feature) when validation is asked for but the layer
  // is not installed.
  static std::shared_ptr<Context> create(const ContextOptions& options = ContextOptions::from_environment());
  // Wraps an engine's device; owns none of its handles. Throws Error(missing_feature) when the
  // queue family lacks compute.
  static std::shared_ptr<Context> wrap(const ExternalDevice& external);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  VkInstance instance() const { return instance_; }
  VkPhysicalDevice physical_device() const { return physical_device_; }
  VkDevice device() const { return device_; }
  VkQueue queue() const { return queue_; }
  uint32_t queue_family() const { return queue_family_; }
  bool owns_device() const { return owns_device_; }
  const DeviceInfo& info() const { return info_; }
  VkPipelineCache pipeline_cache() const { return pipeline_cache_; }
  // True when device-local memory is also host-visible (CPU drivers, UMA): buffers are then
  // written directly instead of through a staging copy.
  bool unified_memory() const { return unified_memory_; }
  uint32_t timestamp_valid_bits() const { return timestamp_valid_bits_; }
  const EnabledFeatures& enabled_features() const { return enabled_; }
  // The subgroup size every ComputePipeline of this context runs with when that is certain: the
  // required size, else the device's only size (min == max), else 0 (the driver may vary it).
  uint32_t effective_subgroup_size() const;

  // Every pipeline configuration (shader, specialization) created through ComputePipeline on this
  // context, once each, in order of first creation.
  std::vector<PipelineRecord> pipeline_records() const;
  // Called by ComputePipeline.
  void record_pipeline(PipelineRecord record);

  // Validation messages (warnings and errors) seen since creation; empty unless validation is on.
  size_t validation_message_count() const;
  std::vector<ValidationMessage> validation_messages() const;
  // Called by the debug messenger; public for the callback only.
  void record_validation_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity, const char* text);

  // Submits on the context's queue under a lock (vkQueueSubmit needs external synchronisation).
  void submit(const VkSubmitInfo& submit, VkFence fence);
  // The lock submit() takes, for work that reaches the queue by another way (VkFFT's plan setup
  // submits on it itself) or an engine submitting to a wrapped device's queue from its own threads.
  std::unique_lock<std::mutex> lock_queue() {
    std::unique_lock<std::mutex> lock(queue_mutex_);
    queue_used_ = true;
    return lock;
  }

  // The profiler that timestamps every dispatch recorded on this context (profiler.hpp), or null.
  // A Profiler attaches and detaches itself; attach only while nothing is being recorded.
  Profiler* profiler() const { return profiler_; }
  void set_profiler(Profiler* profiler) { profiler_ = profiler; }

 private:
  Context() = default;
  void finish_setup();

  VkInstance instance_ = VK_NULL_HANDLE;
  VkPhysicalDevice physical_device_ = VK_NULL_HANDLE;
  VkDevice device_ = VK_NULL_HANDLE;
  VkQueue queue_ = VK_NULL_HANDLE;
  uint32_t queue_family_ = 0;
  bool owns_device_ = false;
  bool unified_memory_ = false;
  uint32_t timestamp_valid_bits_ = 0;
  DeviceInfo info_;
  EnabledFeatures enabled_;
  mutable std::mutex pipelines_mutex_;
  std::vector<PipelineRecord> pipeline_records_;
  VkDebugUtilsMessengerEXT messenger_ = VK_NULL_HANDLE;
  VkPipelineCache pipeline_cache_ = VK_NULL_HANDLE;
  mutable std::mutex messages_mutex_;
  std::vector<ValidationMessage> messages_;
  std::mutex queue_mutex_;
  // Whether anything may have reached the queue (submit or lock_queue): only then does the
  // destructor wait for the device. A context that only made pipelines never waits, which RADV's
  // null devices (no GPU behind them) need: their vkDeviceWaitIdle crashes.
  bool queue_used_ = false;
  Profiler* profiler_ = nullptr;
};

}  // namespace vidkv::rt
