// The vidkv._vidkv extension module: errors, settings helpers, devices, the cache.
#include <pybind11/stl.h>

#include "bindings.hpp"
#include "devices.hpp"
#include "vidkv/error.hpp"
#include "vidkv/presets.hpp"
#include "vidkv/version.hpp"

namespace py = pybind11;

namespace vidkv::python {

void bind_errors(py::module_& m) {
  // vidkv.Error(Exception): str(e) is the C++ what() ("kind: message"); e.kind the ErrorCode's
  // name, e.message the message alone.
  static py::exception<vidkv::Error> error_type(m, "Error");
  py::register_exception_translator([](std::exception_ptr thrown) {
    try {
      if (thrown) std::rethrow_exception(thrown);
    } catch (const vidkv::Error& e) {
      const std::string kind = error_code_name(e.code());
      std::string message = e.what();
      if (message.rfind(kind + ": ", 0) == 0) message = message.substr(kind.size() + 2);
      py::object instance = py::handle(error_type.ptr())(py::str(e.what()));
      instance.attr("kind") = kind;
      instance.attr("message") = message;
      PyErr_SetObject(error_type.ptr(), instance.ptr());
    }
  });
}

void bind_settings(py::module_& m) {
  m.def("presets", &preset_names, "The preset names, e.g. 'k1.5-v1.58'.");
  m.def(
      "describe", [](const std::string& settings) { return describe(parse_settings(settings)); },
      py::arg("settings"), "One line describing a preset or configuration string.");
}

}  // namespace vidkv::python

PYBIND11_MODULE(_vidkv, m) {
  m.doc() = "vidkv: sub-2-bit KV-cache quantization (VidKV) on Vulkan compute.";
  m.attr("__version__") = VIDKV_VERSION_STRING;
  vidkv::python::bind_errors(m);
  vidkv::python::bind_settings(m);
  vidkv::python::bind_cache(m);
  m.def("validation_messages", &vidkv::python::all_validation_messages,
        "Validation-layer messages of every device context made so far (VIDKV_VALIDATION=1).");
  py::module_::import("atexit").attr("register")(py::cpp_function(&vidkv::python::release_contexts));
}
