#pragma once
// Arrays between Python and the cache: any NumPy array, object with __array__ or DLPack tensor in
// (fp16 or fp32, checked against the shape the C++ cache expects), NumPy arrays out.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

namespace vidkv::python {

namespace py = pybind11;

// One axis of an expected shape: its name and extent, or extent -1 for "any positive length".
struct Axis {
  const char* name;
  py::ssize_t extent;
};

// The values of `object` (argument `argument`) as fp16 bit patterns in C order. fp32 input is
// rounded with vidkv::fp16::from_float, the rounding the device uses. `shape` holds the expected
// axes; axes given as -1 receive the actual extent. Throws ValueError naming the argument and the
// shape expected for any other dtype or shape.
std::vector<uint16_t> to_fp16(const py::handle& object, const char* argument, std::vector<Axis>& shape);
// The same as fp32 (fp16 input widened exactly).
std::vector<float> to_fp32(const py::handle& object, const char* argument, std::vector<Axis>& shape);

// NumPy arrays that take ownership of `data` (no copy).
py::array fp16_array(std::vector<uint16_t>&& data, const std::vector<py::ssize_t>& shape);
py::array fp32_array(std::vector<float>&& data, const std::vector<py::ssize_t>& shape);

}  // namespace vidkv::python
