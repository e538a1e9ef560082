#include "devices.hpp"

#include <map>
#include <mutex>

namespace vidkv::python {
namespace {

std::mutex contexts_mutex;
std::map<std::string, std::shared_ptr<rt::Context>>& contexts() {
  static auto* map = new std::map<std::string, std::shared_ptr<rt::Context>>();  // emptied at exit
  return *map;
}

}  // namespace

std::shared_ptr<rt::Context> context_for(const py::object& device) {
  rt::ContextOptions options = rt::ContextOptions::from_environment();
  if (!device.is_none()) {
    if (!py::isinstance<py::int_>(device) && !py::isinstance<py::str>(device)) {
      throw py::value_error("device: expected None, a device index (int) or a name substring (str)");
    }
    options.device_selector = py::str(device).cast<std::string>();
  }
  // The lock is taken without the GIL, so a thread creating a context never waits for the GIL
  // while holding it.
  py::gil_scoped_release release;
  std::lock_guard lock(contexts_mutex);
  auto& context = contexts()[options.device_selector];
  if (!context) context = rt::Context::create(options);
  return context;
}

std::vector<std::string> validation_messages(const rt::Context& context) {
  std::vector<std::string> out;
  for (const auto& message : context.validation_messages()) {
    const char* severity = message.severity >= VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT ? "error" : "warning";
    out.push_back(std::string(severity) + ": " + message.text);
  }
  return out;
}

std::vector<std::string> all_validation_messages() {
  std::lock_guard lock(contexts_mutex);
  std::vector<std::string> out;
  for (const auto& [selector, context] : contexts()) {
    if (!context) continue;  // its creation failed
    for (auto& text : validation_messages(*context)) out.push_back(std::move(text));
  }
  return out;
}

void release_contexts() {
  std::lock_guard lock(contexts_mutex);
  contexts().clear();
}

}  // namespace vidkv::python
