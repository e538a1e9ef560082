#pragma once
// Vulkan contexts for Python caches: one per device selector, shared by every cache made on it and
// kept for the life of the process (creating a context costs far more than a cache), released at
// interpreter exit.
#include <pybind11/pybind11.h>

#include <memory>
#include <string>
#include <vector>

#include "vidkv/runtime/context.hpp"

namespace vidkv::python {

namespace py = pybind11;

// device: None (VIDKV_DEVICE, else vidkv's default choice), an int (device index) or a str (index
// or name substring). Validation follows VIDKV_VALIDATION, read when a context is first made.
std::shared_ptr<rt::Context> context_for(const py::object& device);
// Validation messages of every context made so far, "severity: text" each.
std::vector<std::string> all_validation_messages();
std::vector<std::string> validation_messages(const rt::Context& context);
// Drops the module's references (atexit); caches still alive keep their own.
void release_contexts();

}  // namespace vidkv::python
