#pragma once
// A small, strict reader and writer of NumPy's .npy format for K/V dumps: version 1.0, 2.0 and 3.0
// headers, little-endian fp16 or fp32, C order, 3-D arrays [tokens, kv_heads, head_dim] with no
// zero dimension. The reader trusts nothing in a file: magic, version, header length, every dict
// key and the data size are checked against the file before anything large is allocated, and every
// failure is a vidkv::Error naming the file and the problem.
//
// Accepted header dict (any key order, single or double quotes, spaces between tokens, an optional
// trailing comma, padded with spaces and ended by '\n' as the format says):
//   {'descr': '<f2' | '<f4' | '=f2' | '=f4', 'fortran_order': False, 'shape': (T, H, D), }
// '=' (native order) is accepted on little-endian hosts only; '|' (no byte order) is meant for
// one-byte types and is refused for f2/f4, as is '>' (big-endian).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vidkv::tools {

enum class NpyType { f16, f32 };

struct NpyArray {
  NpyType type = NpyType::f32;
  std::vector<uint64_t> shape;
  std::vector<uint8_t> data;  // little-endian raw elements, C order
};

// Reads and checks a whole .npy file. Throws vidkv::Error: io_error when the file cannot be
// opened or read, invalid_argument when its content is not an accepted .npy array.
NpyArray read_npy(const std::string& path);

// The same checks on bytes already in memory; `name` is used in the error messages.
NpyArray parse_npy(const uint8_t* bytes, size_t size, const std::string& name);

// Writes a version 1.0 file (2.0 when the header does not fit 65535 bytes), header padded so the
// data starts at a multiple of 64 bytes, as NumPy does. Throws invalid_argument (naming the path)
// when the shape is not 3-D with nonzero dimensions or data.size() does not match it, io_error
// when writing fails.
void write_npy(const std::string& path, const NpyArray& array);

// The elements as fp16 bits: f16 copied, f32 rounded to nearest even (vidkv/fp16.hpp).
std::vector<uint16_t> npy_to_fp16(const NpyArray& array);

// The geometry of a dump directory holding k_0.npy .. k_{L-1}.npy and v_0.npy .. v_{L-1}.npy,
// each [tokens, kv_heads, head_dim] (fp16 and fp32 may be mixed). Reads only the headers and the
// file sizes. Throws naming the missing, malformed or odd file (a different shape, or a name such
// as k_01.npy that looks like a layer file but is not one).
struct KvDump {
  uint32_t layers, tokens, kv_heads, head_dim;
};
KvDump scan_kv_dir(const std::string& dir);

}  // namespace vidkv::tools
