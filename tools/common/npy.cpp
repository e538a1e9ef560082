#include "common/npy.hpp"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

#include "vidkv/error.hpp"
#include "vidkv/fp16.hpp"

namespace vidkv::tools {
namespace {

constexpr uint8_t kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
// A real header is under 200 bytes; NumPy itself refuses more than 10000 unless told otherwise.
// Anything beyond this is a corrupt or hostile length field, refused before it is read.
constexpr uint64_t kMaxHeaderBytes = 1u << 20;
// Files are read in one piece; the header is looked at first, from at most this many bytes.
constexpr size_t kPreambleProbe = 12 + kMaxHeaderBytes;

Error bad(const std::string& name, const std::string& problem) {
  return Error(ErrorCode::invalid_argument, name + ": " + problem);
}

size_t element_bytes(NpyType t) { return t == NpyType::f16 ? 2 : 4; }

std::string shape_text(const std::vector<uint64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

// What the header says, and where the data starts.
struct Header {
  NpyType type = NpyType::f32;
  std::vector<uint64_t> shape;
  uint64_t data_offset = 0;
  uint64_t data_bytes = 0;
};

// A strict scanner for the one Python dict literal the format allows.
class DictScanner {
 public:
  DictScanner(const std::string& text, const std::string& name) : s_(text), name_(name) {}

  Header parse() {
    std::optional<std::string> descr;
    std::optional<bool> fortran;
    std::optional<std::vector<uint64_t>> shape;
    skip_space();
    expect('{');
    skip_space();
    while (peek() != '}') {
      const std::string key = string_literal("a dict key");
      skip_space();
      expect(':');
      skip_space();
      if (key == "descr") {
        if (descr) fail("key 'descr' appears twice");
        descr = string_literal("the 'descr' value");
      } else if (key == "fortran_order") {
        if (fortran) fail("key 'fortran_order' appears twice");
        fortran = boolean();
      } else if (key == "shape") {
        if (shape) fail("key 'shape' appears twice");
        shape = tuple();
      } else {
        fail("unexpected key '" + key + "' (a .npy header has exactly descr, fortran_order and shape)");
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
        skip_space();
      } else if (peek() != '}') {
        fail("expected ',' or '}' at header byte " + std::to_string(pos_));
      }
    }
    ++pos_;
    // The format pads with spaces and ends the header with one '\n'.
    while (pos_ < s_.size() && s_[pos_] == ' ') ++pos_;
    if (pos_ + 1 != s_.size() || s_[pos_] != '\n')
      fail("header does not end with spaces and a newline after the dict (byte " + std::to_string(pos_) + ")");
    if (!descr) fail("header has no 'descr'");
    if (!fortran) fail("header has no 'fortran_order'");
    if (!shape) fail("header has no 'shape'");

    Header h;
    h.type = dtype(*descr);
    if (*fortran) fail("fortran_order is True; only C-order arrays are read (write with np.ascontiguousarray)");
    if (shape->size() != 3)
      fail("shape " + shape_text(*shape) + " is " + std::to_string(shape->size()) +
           "-D; a K/V dump is 3-D [tokens, kv_heads, head_dim]");
    for (uint64_t d : *shape)
      if (d == 0) fail("shape " + shape_text(*shape) + " has a zero dimension");
    h.shape = *shape;
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& problem) const { throw bad(name_, problem); }
  char peek() const {
    if (pos_ >= s_.size()) fail("header ends inside the dict");
    return s_[pos_];
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "' at header byte " + std::to_string(pos_));
    ++pos_;
  }
  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t')) ++pos_;
  }
  std::string string_literal(const char* what) {
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail(std::string("expected a quoted string for ") + what);
    const size_t start = ++pos_;
    while (peek() != quote) {
      if (s_[pos_] == '\\' || s_[pos_] == '\n') fail(std::string("unexpected character in ") + what);
      ++pos_;
    }
    return s_.substr(start, pos_++ - start);
  }
  bool boolean() {
    for (const char* word : {"True", "False"}) {
      const size_t n = std::strlen(word);
      if (s_.compare(pos_, n, word) == 0) {
        pos_ += n;
        return word[0] == 'T';
      }
    }
    fail("fortran_order is not True or False");
  }
  uint64_t integer() {
    const size_t start = pos_;
    uint64_t v = 0;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
      const uint64_t digit = uint64_t(s_[pos_] - '0');
      if (v > (UINT64_MAX - digit) / 10) fail("a shape dimension overflows 64 bits");
      v = v * 10 + digit;
      ++pos_;
    }
    if (pos_ == start) fail("expected a non-negative integer in 'shape' at header byte " + std::to_string(pos_));
    if (pos_ - start > 1 && s_[start] == '0') fail("a shape dimension has a leading zero");
    return v;
  }
  std::vector<uint64_t> tuple() {
    std::vector<uint64_t> dims;
    expect('(');
    skip_space();
    bool comma_after_last = false;
    while (peek() != ')') {
      dims.push_back(integer());
      skip_space();
      comma_after_last = false;
      if (peek() == ',') {
        ++pos_;
        comma_after_last = true;
        skip_space();
      } else if (peek() != ')') {
        fail("expected ',' or ')' in 'shape' at header byte " + std::to_string(pos_));
      }
    }
    ++pos_;
    // Python: (5) is the number 5, not a tuple; a one-element tuple needs its comma.
    if (dims.size() == 1 && !comma_after_last) fail("'shape' (N) without a comma is not a tuple");
    return dims;
  }
  NpyType dtype(const std::string& d) const {
    if (d.size() == 3 && d[1] == 'f' && (d[2] == '2' || d[2] == '4')) {
      const NpyType t = d[2] == '2' ? NpyType::f16 : NpyType::f32;
      if (d[0] == '<') return t;
      if (d[0] == '=') {
        if constexpr (std::endian::native == std::endian::little) return t;
        fail("descr '" + d + "' is native order on a big-endian host; write '<" + d.substr(1) + "'");
      }
      if (d[0] == '>') fail("descr '" + d + "' is big-endian; only little-endian '<f2' / '<f4' are read");
      if (d[0] == '|') fail("descr '" + d + "' has no byte order, which is meant for one-byte types");
    }
    fail("descr '" + d + "' is not fp16 or fp32 ('<f2' or '<f4')");
  }

  const std::string& s_;
  const std::string& name_;
  size_t pos_ = 0;
};

// Checks the preamble and header in `bytes[0, available)` against a file of `file_size` bytes.
Header parse_header(const uint8_t* bytes, size_t available, uint64_t file_size, const std::string& name) {
  if (available < 6 || std::memcmp(bytes, kMagic, 6) != 0)
    throw bad(name, "not a .npy file (it does not start with \\x93NUMPY)");
  if (available < 10)
    throw bad(name, "file of " + std::to_string(file_size) + " bytes ends inside the .npy preamble");
  const uint8_t major = bytes[6], minor = bytes[7];
  if ((major != 1 && major != 2 && major != 3) || minor != 0)
    throw bad(name, ".npy format version " + std::to_string(major) + "." + std::to_string(minor) +
                        " is not 1.0, 2.0 or 3.0");
  uint64_t header_len = 0, preamble = 0;
  if (major == 1) {
    header_len = uint64_t(bytes[8]) | uint64_t(bytes[9]) << 8;
    preamble = 10;
  } else {
    if (available < 12) throw bad(name, "file ends inside the .npy preamble");
    header_len = uint64_t(bytes[8]) | uint64_t(bytes[9]) << 8 | uint64_t(bytes[10]) << 16 | uint64_t(bytes[11]) << 24;
    preamble = 12;
  }
  if (header_len > kMaxHeaderBytes)
    throw bad(name, "header length " + std::to_string(header_len) + " is over the " +
                        std::to_string(kMaxHeaderBytes) + "-byte limit");
  if (preamble + header_len > file_size || preamble + header_len > available)
    throw bad(name, "header length " + std::to_string(header_len) + " runs past the end of the file (" +
                        std::to_string(file_size) + " bytes)");
  std::string text(reinterpret_cast<const char*>(bytes + preamble), size_t(header_len));
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80 || (c < 0x20 && c != '\n' && c != '\t'))
      throw bad(name, "header byte " + std::to_string(i) + " (0x" + [&] {
        char hex[3];
        std::snprintf(hex, sizeof hex, "%02x", c);
        return std::string(hex);
      }() + ") is not printable ASCII");
  }
  Header h = DictScanner(text, name).parse();
  h.data_offset = preamble + header_len;
  // Overflow-checked element count: the product may not wrap to a small number that happens to
  // match the file.
  uint64_t count = 1;
  for (uint64_t d : h.shape) {
    if (d > UINT64_MAX / 8 / count) throw bad(name, "shape " + shape_text(h.shape) + " overflows 64 bits");
    count *= d;
  }
  h.data_bytes = count * element_bytes(h.type);
  if (file_size - h.data_offset != h.data_bytes)
    throw bad(name, "shape " + shape_text(h.shape) + " of " + (h.type == NpyType::f16 ? "fp16" : "fp32") +
                        " needs " + std::to_string(h.data_bytes) + " data bytes, the file has " +
                        std::to_string(file_size - h.data_offset));
  return h;
}

std::string header_dict(const NpyArray& a) {
  return std::string("{'descr': '") + (a.type == NpyType::f16 ? "<f2" : "<f4") +
         "', 'fortran_order': False, 'shape': " + shape_text(a.shape) + ", }";
}

uint64_t file_size_of(const std::string& path) {
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) throw Error(ErrorCode::io_error, path + ": cannot read (" + ec.message() + ")");
  return size;
}

// The first `max_bytes` bytes of a file (fewer when it is shorter).
std::vector<uint8_t> read_prefix(const std::string& path, uint64_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::io_error, path + ": cannot open for reading");
  std::vector<uint8_t> bytes(static_cast<size_t>(max_bytes));
  in.read(reinterpret_cast<char*>(bytes.data()), std::streamsize(bytes.size()));
  bytes.resize(size_t(in.gcount()));
  if (in.bad()) throw Error(ErrorCode::io_error, path + ": read failed");
  return bytes;
}

}  // namespace

NpyArray parse_npy(const uint8_t* bytes, size_t size, const std::string& name) {
  const Header h = parse_header(bytes, size, size, name);
  NpyArray a;
  a.type = h.type;
  a.shape = h.shape;
  a.data.assign(bytes + h.data_offset, bytes + size);
  return a;
}

NpyArray read_npy(const std::string& path) {
  // The allocation is bounded by the file's real size, never by what its header claims.
  const uint64_t size = file_size_of(path);
  std::vector<uint8_t> bytes = read_prefix(path, size);
  if (bytes.size() != size) throw Error(ErrorCode::io_error, path + ": file changed size while being read");
  return parse_npy(bytes.data(), bytes.size(), path);
}

void write_npy(const std::string& path, const NpyArray& array) {
  if (array.shape.size() != 3) throw bad(path, "write_npy takes a 3-D [tokens, kv_heads, head_dim] array");
  uint64_t count = 1;
  for (uint64_t d : array.shape) {
    if (d == 0) throw bad(path, "shape " + shape_text(array.shape) + " has a zero dimension");
    if (d > UINT64_MAX / 8 / count) throw bad(path, "shape " + shape_text(array.shape) + " overflows 64 bits");
    count *= d;
  }
  if (array.data.size() != count * element_bytes(array.type))
    throw bad(path, "data has " + std::to_string(array.data.size()) + " bytes, shape " + shape_text(array.shape) +
                        " needs " + std::to_string(count * element_bytes(array.type)));
  std::string dict = header_dict(array);
  // Version 1.0 unless the header needs a 4-byte length; padded with spaces so that preamble +
  // header is a multiple of 64 (NumPy's alignment), ended by '\n'.
  const bool v2 = dict.size() + 1 + 10 > 65535;
  const size_t preamble = v2 ? 12 : 10;
  size_t total = preamble + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict.push_back('\n');
  const uint64_t header_len = dict.size();
  std::vector<uint8_t> head(kMagic, kMagic + 6);
  head.push_back(v2 ? 2 : 1);
  head.push_back(0);
  for (size_t i = 0; i < (v2 ? 4u : 2u); ++i) head.push_back(uint8_t(header_len >> (8 * i)));
  head.insert(head.end(), dict.begin(), dict.end());

  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(ErrorCode::io_error, path + ": cannot open for writing");
  out.write(reinterpret_cast<const char*>(head.data()), std::streamsize(head.size()));
  out.write(reinterpret_cast<const char*>(array.data.data()), std::streamsize(array.data.size()));
  out.close();
  if (!out) throw Error(ErrorCode::io_error, path + ": write failed");
}

std::vector<uint16_t> npy_to_fp16(const NpyArray& array) {
  const size_t width = element_bytes(array.type);
  if (array.data.size() % width != 0)
    throw Error(ErrorCode::invalid_argument, "npy_to_fp16: " + std::to_string(array.data.size()) +
                                                 " data bytes are not whole elements");
  std::vector<uint16_t> out(array.data.size() / width);
  const uint8_t* p = array.data.data();
  for (size_t i = 0; i < out.size(); ++i, p += width) {
    if (array.type == NpyType::f16) {
      out[i] = uint16_t(p[0] | p[1] << 8);
    } else {
      const uint32_t bits = uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
      out[i] = fp16::from_float(std::bit_cast<float>(bits));
    }
  }
  return out;
}

KvDump scan_kv_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(ErrorCode::io_error, dir + ": not a directory");
  // layer -> file name, per kind; a name that starts like a layer file but is not one is an error
  // rather than silently skipped (a k_01.npy beside k_1.npy is surely a mistake).
  std::map<uint64_t, std::string> files[2];
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string file = entry.path().filename().string();
    if (file.size() < 7 || (file[0] != 'k' && file[0] != 'v') || file[1] != '_' ||
        file.compare(file.size() - 4, 4, ".npy") != 0)
      continue;
    const std::string digits = file.substr(2, file.size() - 6);
    const bool number = !digits.empty() && digits.size() <= 6 &&
                        std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
                        (digits.size() == 1 || digits[0] != '0');
    if (!number)
      throw bad(dir + "/" + file, "odd file name: layer files are named k_<layer>.npy / v_<layer>.npy, "
                                  "layer 0, 1, 2, ... without leading zeros");
    files[file[0] == 'v'][std::stoull(digits)] = file;
  }
  if (ec) throw Error(ErrorCode::io_error, dir + ": cannot list (" + ec.message() + ")");
  const uint64_t layers = std::max(files[0].empty() ? 0 : files[0].rbegin()->first + 1,
                                   files[1].empty() ? 0 : files[1].rbegin()->first + 1);
  if (layers == 0) throw Error(ErrorCode::io_error, dir + ": no k_0.npy / v_0.npy (a K/V dump has one per layer)");
  KvDump dump{uint32_t(layers), 0, 0, 0};
  std::string first;
  for (uint64_t layer = 0; layer < layers; ++layer) {
    for (int kind = 0; kind < 2; ++kind) {
      const std::string file = std::string(kind ? "v_" : "k_") + std::to_string(layer) + ".npy";
      const std::string path = dir + "/" + file;
      if (!files[kind].count(layer))
        throw Error(ErrorCode::io_error, path + ": missing (the dump has layers up to " +
                                             std::to_string(layers - 1) + ")");
      const uint64_t size = file_size_of(path);
      const std::vector<uint8_t> prefix = read_prefix(path, std::min<uint64_t>(size, kPreambleProbe));
      const Header h = parse_header(prefix.data(), prefix.size(), size, path);
      if (h.shape[0] > UINT32_MAX || h.shape[1] > UINT32_MAX || h.shape[2] > UINT32_MAX)
        throw bad(path, "shape " + shape_text(h.shape) + " has a dimension over 2^32 - 1");
      if (first.empty()) {
        first = path;
        dump.tokens = uint32_t(h.shape[0]);
        dump.kv_heads = uint32_t(h.shape[1]);
        dump.head_dim = uint32_t(h.shape[2]);
      } else if (h.shape != std::vector<uint64_t>{dump.tokens, dump.kv_heads, dump.head_dim}) {
        throw bad(path, "shape " + shape_text(h.shape) + " differs from " + first + "'s " +
                            shape_text({dump.tokens, dump.kv_heads, dump.head_dim}));
      }
    }
  }
  return dump;
}

}  // namespace vidkv::tools
