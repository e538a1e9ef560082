#include <mutex>

#include "vk.hpp"

namespace vidkv::rt {

namespace {
std::mutex loader_mutex;
bool loader_ready = false;
}  // namespace

void load_loader(PFN_vkGetInstanceProcAddr caller_entry) {
  std::lock_guard lock(loader_mutex);
  if (caller_entry != nullptr) {
    // An engine's entry point wins: vidkv then calls Vulkan through the engine's loader.
    volkInitializeCustom(caller_entry);
    loader_ready = true;
    return;
  }
  if (loader_ready) return;
  VkResult result = volkInitialize();
  if (result != VK_SUCCESS) {
    throw Error(ErrorCode::no_device,
                "the Vulkan loader (libvulkan.so.1) could not be loaded; install libvulkan1 and a "
                "driver (mesa-vulkan-drivers provides lavapipe)");
  }
  loader_ready = true;
}

void load_instance(VkInstance instance) {
  std::lock_guard lock(loader_mutex);
  // Loading through the instance gives device entry points that dispatch for every device of it,
  // so contexts on different devices can share one set of globals.
  volkLoadInstance(instance);
}

}  // namespace vidkv::rt
