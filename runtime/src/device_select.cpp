#include <algorithm>
#include <cctype>
#include <string>

#include "device_query.hpp"

namespace vidkv::rt {

static std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

static int type_rank(DeviceType type) {
  switch (type) {
    case DeviceType::discrete: return 0;
    case DeviceType::integrated: return 1;
    case DeviceType::virtual_gpu: return 2;
    case DeviceType::cpu: return 3;
    default: return 4;
  }
}

size_t select_device(const std::vector<DeviceInfo>& devices, const std::string& selector) {
  if (devices.empty()) {
    throw Error(ErrorCode::no_device,
                "no Vulkan device found; install a driver (mesa-vulkan-drivers provides lavapipe)");
  }
  auto seen = [&] {
    std::string list;
    for (const auto& d : devices) {
      list += (list.empty() ? "" : ", ") + std::to_string(d.index) + ": " + d.name;
    }
    return list;
  };
  if (selector.empty()) {
    size_t best = 0;
    for (size_t i = 1; i < devices.size(); ++i) {
      if (type_rank(devices[i].type) < type_rank(devices[best].type)) best = i;
    }
    return best;
  }
  const bool numeric = std::all_of(selector.begin(), selector.end(),
                                   [](unsigned char c) { return std::isdigit(c); });
  if (numeric) {
    size_t index = std::stoul(selector);
    if (index < devices.size()) return index;
    throw Error(ErrorCode::no_device, "VIDKV_DEVICE=" + selector + " is not a device index; devices: " + seen());
  }
  for (size_t i = 0; i < devices.size(); ++i) {
    if (lower(devices[i].name).find(lower(selector)) != std::string::npos) return i;
  }
  throw Error(ErrorCode::no_device, "no device name contains \"" + selector + "\"; devices: " + seen());
}

}  // namespace vidkv::rt
