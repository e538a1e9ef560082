#pragma once
#include "vk.hpp"

namespace vidkv::rt {

class Context;

struct DebugMessenger {
  VkDebugUtilsMessengerEXT messenger = VK_NULL_HANDLE;
  PFN_vkDestroyDebugUtilsMessengerEXT destroy = nullptr;
};

// Routes validation warnings and errors of `instance` to context->record_validation_message.
DebugMessenger create_messenger(VkInstance instance, Context* context);

}  // namespace vidkv::rt
