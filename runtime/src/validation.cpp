// Instance creation with the optional validation layer, and the debug messenger that feeds every
// warning and error into the Context, where tests count them.
#include <cstdio>
#include <cstring>
#include <vector>

#include "device_query.hpp"
#include "validation.hpp"
#include "vidkv/runtime/context.hpp"

namespace vidkv::rt {

static const char* kValidationLayer = "VK_LAYER_KHRONOS_validation";

static bool has_layer(const char* name) {
  uint32_t count = 0;
  check(vkEnumerateInstanceLayerProperties(&count, nullptr), "vkEnumerateInstanceLayerProperties");
  std::vector<VkLayerProperties> layers(count);
  check(vkEnumerateInstanceLayerProperties(&count, layers.data()), "vkEnumerateInstanceLayerProperties");
  for (const auto& layer : layers) {
    if (std::strcmp(layer.layerName, name) == 0) return true;
  }
  return false;
}

VkInstance create_instance(bool validation, bool synchronization_validation) {
  if (volkGetInstanceVersion() < VK_API_VERSION_1_2) {
    throw Error(ErrorCode::missing_feature, "the Vulkan loader supports only API " +
                                                version_string(volkGetInstanceVersion()) +
                                                "; vidkv needs 1.2");
  }
  std::vector<const char*> layers;
  std::vector<const char*> extensions;
  if (validation) {
    if (!has_layer(kValidationLayer)) {
      throw Error(ErrorCode::missing_feature,
                  "VIDKV_VALIDATION is on but VK_LAYER_KHRONOS_validation is not installed "
                  "(apt-get install vulkan-validationlayers)");
    }
    layers.push_back(kValidationLayer);
    extensions.push_back(VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
  }
  VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
  app.pApplicationName = "vidkv";
  app.pEngineName = "vidkv";
  app.apiVersion = VK_API_VERSION_1_2;
  const VkValidationFeatureEnableEXT sync = VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT;
  VkValidationFeaturesEXT features{VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT};
  features.enabledValidationFeatureCount = 1;
  features.pEnabledValidationFeatures = &sync;
  VkInstanceCreateInfo info{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
  info.pApplicationInfo = &app;
  if (validation && synchronization_validation) info.pNext = &features;
  info.enabledLayerCount = static_cast<uint32_t>(layers.size());
  info.ppEnabledLayerNames = layers.data();
  info.enabledExtensionCount = static_cast<uint32_t>(extensions.size());
  info.ppEnabledExtensionNames = extensions.data();
  VkInstance instance = VK_NULL_HANDLE;
  VkResult result = vkCreateInstance(&info, nullptr, &instance);
  if (result == VK_ERROR_INCOMPATIBLE_DRIVER) {
    throw Error(ErrorCode::no_device, "vkCreateInstance found no Vulkan 1.2 driver "
                                      "(mesa-vulkan-drivers provides lavapipe)");
  }
  check(result, "vkCreateInstance");
  load_instance(instance);
  return instance;
}

static VKAPI_ATTR VkBool32 VKAPI_CALL on_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                 VkDebugUtilsMessageTypeFlagsEXT,
                                                 const VkDebugUtilsMessengerCallbackDataEXT* data,
                                                 void* user) {
  auto* context = static_cast<Context*>(user);
  const char* text = data && data->pMessage ? data->pMessage : "(no message)";
  std::fprintf(stderr, "[vidkv validation] %s\n", text);
  context->record_validation_message(severity, text);
  return VK_FALSE;
}

DebugMessenger create_messenger(VkInstance instance, Context* context) {
  DebugMessenger m;
  // The pointers are kept per instance: volk's globals may later be loaded from another instance
  // that lacks VK_EXT_debug_utils.
  m.destroy = reinterpret_cast<PFN_vkDestroyDebugUtilsMessengerEXT>(
      vkGetInstanceProcAddr(instance, "vkDestroyDebugUtilsMessengerEXT"));
  auto create = reinterpret_cast<PFN_vkCreateDebugUtilsMessengerEXT>(
      vkGetInstanceProcAddr(instance, "vkCreateDebugUtilsMessengerEXT"));
  if (create == nullptr || m.destroy == nullptr) {
    throw Error(ErrorCode::missing_feature, "VK_EXT_debug_utils is not available");
  }
  VkDebugUtilsMessengerCreateInfoEXT info{VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT};
  info.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                         VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
  info.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                     VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                     VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT;
  info.pfnUserCallback = on_message;
  info.pUserData = context;
  check(create(instance, &info, nullptr, &m.messenger), "vkCreateDebugUtilsMessengerEXT");
  return m;
}

}  // namespace vidkv::rt
