#include "arrays.hpp"

#include <cstring>
#include <memory>

#include "vidkv/fp16.hpp"

namespace vidkv::python {
namespace {

std::string describe_shape(const std::vector<Axis>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) text += ", ";
    text += shape[i].name;
    if (shape[i].extent >= 0) text += "=" + std::to_string(shape[i].extent);
  }
  return text + "]";
}

std::string actual_shape(const py::array& array) {
  std::string text = "(";
  for (py::ssize_t i = 0; i < array.ndim(); ++i) {
    if (i) text += ", ";
    text += std::to_string(array.shape(i));
  }
  return text + (array.ndim() == 1 ? ",)" : ")");
}

// "TypeError: message", without the traceback error_already_set::what() carries.
std::string short_reason(const py::error_already_set& e) {
  return py::str(e.type().attr("__name__")).cast<std::string>() + ": " + py::str(e.value()).cast<std::string>();
}

// A NumPy view of `object` where one exists without copying: arrays as they are, DLPack tensors
// (PyTorch CPU tensors) through numpy.from_dlpack, else numpy.asarray (__array__, sequences).
py::array as_numpy(const py::handle& object, const char* argument) {
  if (py::isinstance<py::array>(object)) return py::reinterpret_borrow<py::array>(object);
  const py::module_ numpy = py::module_::import("numpy");
  std::string reason;
  if (py::hasattr(object, "__dlpack__")) {
    try {
      return numpy.attr("from_dlpack")(object);
    } catch (py::error_already_set& e) {
      reason = short_reason(e);  // e.g. a GPU tensor, bfloat16, or one that requires grad
    }
  }
  try {
    return numpy.attr("asarray")(object);
  } catch (py::error_already_set& e) {
    if (reason.empty()) reason = short_reason(e);
  }
  throw py::value_error(std::string(argument) + ": expected a NumPy array, an object with __array__ or a CPU " +
                        "DLPack tensor (fp16 or fp32), got " +
                        py::str(py::type::handle_of(object).attr("__name__")).cast<std::string>() + " (" +
                        reason + ")");
}

enum class Kind { f16, f32 };

// The checked, C-contiguous array; copies only when the input is not contiguous.
py::array checked(const py::handle& object, const char* argument, std::vector<Axis>& shape, Kind& kind) {
  py::array array = as_numpy(object, argument);
  const py::dtype dtype = array.dtype();
  if (dtype.kind() == 'f' && dtype.itemsize() == 2) {
    kind = Kind::f16;
  } else if (dtype.kind() == 'f' && dtype.itemsize() == 4) {
    kind = Kind::f32;
  } else {
    throw py::value_error(std::string(argument) + ": dtype must be float16 or float32, got " +
                          py::str(dtype.attr("name")).cast<std::string>() + " (shape " + describe_shape(shape) + ")");
  }
  bool ok = array.ndim() == py::ssize_t(shape.size());
  for (size_t i = 0; ok && i < shape.size(); ++i) {
    const py::ssize_t extent = array.shape(py::ssize_t(i));
    ok = shape[i].extent < 0 ? extent > 0 : extent == shape[i].extent;
  }
  if (!ok) {
    throw py::value_error(std::string(argument) + ": expected shape " + describe_shape(shape) + ", got " +
                          actual_shape(array));
  }
  for (size_t i = 0; i < shape.size(); ++i) shape[i].extent = array.shape(py::ssize_t(i));
  if (!(array.flags() & py::array::c_style)) {
    array = py::module_::import("numpy").attr("ascontiguousarray")(array);
  }
  return array;
}

}  // namespace

std::vector<uint16_t> to_fp16(const py::handle& object, const char* argument, std::vector<Axis>& shape) {
  Kind kind;
  const py::array array = checked(object, argument, shape, kind);
  const size_t count = size_t(array.size());
  std::vector<uint16_t> out(count);
  if (kind == Kind::f16) {
    std::memcpy(out.data(), array.data(), count * sizeof(uint16_t));
  } else {
    const float* in = static_cast<const float*>(array.data());
    for (size_t i = 0; i < count; ++i) out[i] = fp16::from_float(in[i]);
  }
  return out;
}

std::vector<float> to_fp32(const py::handle& object, const char* argument, std::vector<Axis>& shape) {
  Kind kind;
  const py::array array = checked(object, argument, shape, kind);
  const size_t count = size_t(array.size());
  std::vector<float> out(count);
  if (kind == Kind::f32) {
    std::memcpy(out.data(), array.data(), count * sizeof(float));
  } else {
    const uint16_t* in = static_cast<const uint16_t*>(array.data());
    for (size_t i = 0; i < count; ++i) out[i] = fp16::to_float(in[i]);
  }
  return out;
}

namespace {

template <class T>
py::array owning_array(std::vector<T>&& data, const std::vector<py::ssize_t>& shape, const py::dtype& dtype) {
  auto* owned = new std::vector<T>(std::move(data));
  py::capsule owner(owned, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array(dtype, shape, {}, owned->data(), owner);
}

}  // namespace

py::array fp16_array(std::vector<uint16_t>&& data, const std::vector<py::ssize_t>& shape) {
  return owning_array(std::move(data), shape, py::dtype::from_args(py::str("float16")));
}

py::array fp32_array(std::vector<float>&& data, const std::vector<py::ssize_t>& shape) {
  return owning_array(std::move(data), shape, py::dtype::of<float>());
}

}  // namespace vidkv::python
