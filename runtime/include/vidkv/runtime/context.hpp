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

  // Validation messages (warnings and errors) seen since creation; empty unless validation is on.
  size_t validation_message_count() const;
  std::vector<ValidationMessage> validation_messages() const;
  // Called by the debug messenger; public for the callback only.
  void record_validation_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity, const char* text);

  // Submits on the context's queue under a lock (vkQueueSubmit needs external synchronisation).
  void submit(const VkSubmitInfo& submit, VkFence fence);

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
  VkDebugUtilsMessengerEXT messenger_ = VK_NULL_HANDLE;
  VkPipelineCache pipeline_cache_ = VK_NULL_HANDLE;
  mutable std::mutex messages_mutex_;
  std::vector<ValidationMessage> messages_;
  std::mutex queue_mutex_;
};

}  // namespace vidkv::rt
