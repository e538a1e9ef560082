#pragma once
#include <pybind11/pybind11.h>

namespace vidkv::python {

// Each adds its part of the module.
void bind_errors(pybind11::module_& m);
void bind_settings(pybind11::module_& m);
void bind_cache(pybind11::module_& m);

}  // namespace vidkv::python
