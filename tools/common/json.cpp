#include "common/json.hpp"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

#include "vidkv/error.hpp"

namespace vidkv::json {
namespace {

// The two-character escapes: letter after the backslash and the character it stands for.
constexpr std::string_view kEscapeLetters = "\"\\/bfnrt";
constexpr std::string_view kEscapedChars = "\"\\/\b\f\n\r\t";

[[noreturn]] void type_error(const char* wanted, Type got) {
  throw Error(ErrorCode::corrupt_data,
              std::string("JSON value is ") + type_name(got) + ", expected " + wanted);
}

// Recursive-descent parser over the raw bytes; pos_ is the byte offset reported on errors.
class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  Value document() {
    skip_ws();
    Value v = value(0);
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected text after the JSON value");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 256;  // deep enough for any manifest, bounds the recursion

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(ErrorCode::corrupt_data,
                "malformed JSON at byte offset " + std::to_string(pos_) + ": " + what);
  }
  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return at_end() ? '\0' : s_[pos_]; }
  void skip_ws() {
    static constexpr std::string_view ws = " \t\n\r";
    while (!at_end() && ws.find(s_[pos_]) != ws.npos) ++pos_;
  }
  void expect(char c) {
    if (peek() != c || at_end()) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  void literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) fail("invalid literal");
    pos_ += word.size();
  }

  Value value(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than 256 levels");
    if (at_end()) fail("unexpected end of input, expected a value");
    switch (peek()) {
      case '{': return object(depth);
      case '[': return array(depth);
      case '"': return Value(string());
      case 't': literal("true"); return Value(true);
      case 'f': literal("false"); return Value(false);
      case 'n': literal("null"); return Value();
      default:
        if (peek() == '-' || (peek() >= '0' && peek() <= '9')) return Value(number());
        fail(std::string("unexpected character '") + peek() + "'");
    }
  }

  Value object(int depth) {
    expect('{');
    Value::Object members;
    skip_ws();
    if (peek() == '}') return ++pos_, Value(std::move(members));
    for (;;) {
      skip_ws();
      if (peek() != '"') fail("expected a string key");
      const size_t key_pos = pos_;
      std::string key = string();
      for (const auto& m : members) {
        if (m.first == key) pos_ = key_pos, fail("duplicate key \"" + key + "\"");
      }
      skip_ws();
      expect(':');
      skip_ws();
      members.emplace_back(std::move(key), value(depth + 1));
      skip_ws();
      if (peek() == ',' && !at_end()) { ++pos_; continue; }
      if (peek() == '}' && !at_end()) return ++pos_, Value(std::move(members));
      fail("expected ',' or '}' in object");
    }
  }

  Value array(int depth) {
    expect('[');
    Value::Array items;
    skip_ws();
    if (peek() == ']') return ++pos_, Value(std::move(items));
    for (;;) {
      skip_ws();
      items.push_back(value(depth + 1));
      skip_ws();
      if (peek() == ',' && !at_end()) { ++pos_; continue; }
      if (peek() == ']' && !at_end()) return ++pos_, Value(std::move(items));
      fail("expected ',' or ']' in array");
    }
  }

  uint32_t hex4() {
    if (pos_ + 4 > s_.size()) fail("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[pos_];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= uint32_t(c - '0');
      else if (c >= 'a' && c <= 'f') v |= uint32_t(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= uint32_t(c - 'A' + 10);
      else fail("invalid hex digit in \\u escape");
      ++pos_;
    }
    return v;
  }

  static void put_utf8(std::string& out, uint32_t cp) {
    const int n = cp < 0x80 ? 0 : cp < 0x800 ? 1 : cp < 0x10000 ? 2 : 3;  // continuation bytes
    static constexpr uint8_t lead[] = {0x00, 0xc0, 0xe0, 0xf0};
    out += char(lead[n] | (cp >> (6 * n)));
    for (int i = n - 1; i >= 0; --i) out += char(0x80 | ((cp >> (6 * i)) & 0x3f));
  }

  // Copies one UTF-8 sequence, rejecting bad lead/continuation bytes, overlongs and surrogates.
  void utf8_sequence(std::string& out) {
    const auto b0 = uint8_t(s_[pos_]);
    const int n = b0 >= 0xf0 && b0 <= 0xf4 ? 3 : b0 >= 0xe0 ? 2 : b0 >= 0xc2 && b0 < 0xe0 ? 1 : -1;
    if (n < 0 || b0 > 0xf4) fail("invalid UTF-8 byte in string");
    if (pos_ + n >= s_.size()) fail("truncated UTF-8 sequence in string");
    uint32_t cp = b0 & (0x3f >> n);
    for (int i = 1; i <= n; ++i) {
      const auto b = uint8_t(s_[pos_ + i]);
      if ((b & 0xc0) != 0x80) fail("invalid UTF-8 continuation byte in string");
      cp = (cp << 6) | (b & 0x3f);
    }
    if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000))) ||
        (n == 3 && (cp < 0x10000 || cp > 0x10ffff))) {
      fail("invalid UTF-8 sequence in string");
    }
    out.append(s_.substr(pos_, n + 1));
    pos_ += n + 1;
  }

  std::string string() {
    expect('"');
    std::string out;
    for (;;) {
      if (at_end()) fail("unterminated string");
      const char c = s_[pos_];
      if (c == '"') { ++pos_; return out; }
      if (uint8_t(c) < 0x20) fail("unescaped control character in string");
      if (uint8_t(c) >= 0x80) { utf8_sequence(out); continue; }
      if (c != '\\') { out += c; ++pos_; continue; }
      ++pos_;
      if (at_end()) fail("unterminated escape");
      const char e = s_[pos_++];
      if (e != 'u') {
        const size_t k = kEscapeLetters.find(e);
        if (k == std::string_view::npos) --pos_, fail(std::string("invalid escape '\\") + e + "'");
        out += kEscapedChars[k];
        continue;
      }
      uint32_t cp = hex4();
      if (cp >= 0xdc00 && cp < 0xe000) fail("unpaired low surrogate in \\u escape");
      if (cp >= 0xd800 && cp < 0xdc00) {
        if (s_.substr(pos_, 2) != "\\u") fail("unpaired high surrogate in \\u escape");
        pos_ += 2;
        const uint32_t lo = hex4();
        if (lo < 0xdc00 || lo >= 0xe000) fail("invalid low surrogate in \\u escape");
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
      }
      put_utf8(out, cp);
    }
  }

  double number() {
    const size_t start = pos_;
    auto digit = [&] { return !at_end() && s_[pos_] >= '0' && s_[pos_] <= '9'; };
    if (peek() == '-') ++pos_;
    if (!digit()) fail("expected a digit");
    if (s_[pos_] == '0') {
      ++pos_;
      if (digit()) fail("leading zero in number");
    } else {
      while (digit()) ++pos_;
    }
    if (peek() == '.' && !at_end()) {
      ++pos_;
      if (!digit()) fail("expected a digit after the decimal point");
      while (digit()) ++pos_;
    }
    if ((peek() == 'e' || peek() == 'E') && !at_end()) {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!digit()) fail("expected a digit in the exponent");
      while (digit()) ++pos_;
    }
    double v = 0;
    const auto r = std::from_chars(s_.data() + start, s_.data() + pos_, v);
    if (r.ec == std::errc::result_out_of_range) {
      // from_chars leaves v alone then; strtod tells overflow (inf) from underflow (0 or tiny),
      // and underflow to the nearest double is fine.
      v = std::strtod(std::string(s_.substr(start, pos_ - start)).c_str(), nullptr);
      if (std::isinf(v)) pos_ = start, fail("number out of the range of a double");
    }
    return v;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

void write_string(std::string& out, const std::string& s) {
  static const char* hex = "0123456789abcdef";
  out += '"';
  for (const char c : s) {
    const size_t k = c == '/' ? std::string_view::npos : kEscapedChars.find(c);
    if (k != std::string_view::npos) {
      out += '\\', out += kEscapeLetters[k];
    } else if (uint8_t(c) < 0x20) {  // other control characters have no short escape
      out += "\\u00", out += hex[uint8_t(c) >> 4], out += hex[uint8_t(c) & 15];
    } else {
      out += c;  // UTF-8 passes through unchanged
    }
  }
  out += '"';
}

void write_number(std::string& out, double d) {
  if (!std::isfinite(d)) { out += "null"; return; }
  char buf[32];
  // Shortest representation that parses back to the same double.
  const auto r = std::to_chars(buf, buf + sizeof buf, d);
  out.append(buf, r.ptr);
}

void write_value(std::string& out, const Value& v, bool pretty, int indent) {
  switch (v.type()) {
    case Type::null: out += "null"; return;
    case Type::boolean: out += v.as_bool() ? "true" : "false"; return;
    case Type::number: write_number(out, v.as_number()); return;
    case Type::string: write_string(out, v.as_string()); return;
    case Type::array:
    case Type::object: break;
  }
  const bool obj = v.is_object();
  if (v.size() == 0) { out += obj ? "{}" : "[]"; return; }
  const auto newline = [&](int level) {
    if (pretty) out += '\n', out.append(size_t(level) * 2, ' ');
  };
  out += obj ? '{' : '[';
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += ',';
    newline(indent + 1);
    if (obj) {
      write_string(out, v.as_object()[i].first);
      out += pretty ? ": " : ":";
    }
    write_value(out, obj ? v.as_object()[i].second : v.as_array()[i], pretty, indent + 1);
  }
  newline(indent);
  out += obj ? '}' : ']';
}

}  // namespace

const char* type_name(Type t) noexcept {
  switch (t) {
    case Type::null: return "null";
    case Type::boolean: return "boolean";
    case Type::number: return "number";
    case Type::string: return "string";
    case Type::array: return "array";
    case Type::object: return "object";
  }
  return "?";
}

// Typed access: one helper so every accessor reports a mismatch the same way.
template <class T, class V>
static auto& get_as(V& data, Type have, Type want) {
  if (have != want) type_error(type_name(want), have);
  return std::get<T>(data);
}

bool Value::as_bool() const { return get_as<bool>(data_, type(), Type::boolean); }
double Value::as_number() const { return get_as<double>(data_, type(), Type::number); }
const std::string& Value::as_string() const {
  return get_as<std::string>(data_, type(), Type::string);
}
const Value::Array& Value::as_array() const { return get_as<Array>(data_, type(), Type::array); }
Value::Array& Value::as_array() { return get_as<Array>(data_, type(), Type::array); }
const Value::Object& Value::as_object() const {
  return get_as<Object>(data_, type(), Type::object);
}
Value::Object& Value::as_object() { return get_as<Object>(data_, type(), Type::object); }

int64_t Value::as_int() const {
  const double d = as_number();
  // 2^63 is exactly representable; every integral double below it fits in int64_t.
  if (std::trunc(d) != d || d < -9223372036854775808.0 || d >= 9223372036854775808.0) {
    throw Error(ErrorCode::corrupt_data,
                "JSON number " + std::to_string(d) + " is not an integer within int64");
  }
  return int64_t(d);
}

uint64_t Value::as_uint() const {
  const int64_t n = as_int();
  if (n < 0) {
    throw Error(ErrorCode::corrupt_data, "JSON number " + std::to_string(n) + " is negative");
  }
  return uint64_t(n);
}

size_t Value::size() const noexcept {
  if (is_array()) return std::get<Array>(data_).size();
  if (is_object()) return std::get<Object>(data_).size();
  return 0;
}

const Value& Value::operator[](size_t i) const {
  const Array& a = as_array();
  if (i >= a.size()) {
    throw Error(ErrorCode::corrupt_data, "JSON array index " + std::to_string(i) +
                                             " is out of range (size " +
                                             std::to_string(a.size()) + ")");
  }
  return a[i];
}

void Value::push_back(Value v) {
  if (is_null()) data_ = Array{};
  as_array().push_back(std::move(v));
}

const Value* Value::find(const std::string& key) const {
  if (!is_object()) return nullptr;
  for (const auto& m : std::get<Object>(data_)) {
    if (m.first == key) return &m.second;
  }
  return nullptr;
}

bool Value::contains(const std::string& key) const { return find(key) != nullptr; }

const Value& Value::at(const std::string& key) const {
  if (!is_object()) type_error("object", type());
  const Value* v = find(key);
  if (v == nullptr) throw Error(ErrorCode::corrupt_data, "JSON object has no key \"" + key + "\"");
  return *v;
}

Value& Value::operator[](const std::string& key) {
  if (is_null()) data_ = Object{};
  Object& o = as_object();
  for (auto& m : o) {
    if (m.first == key) return m.second;
  }
  o.emplace_back(key, Value());
  return o.back().second;
}

Value parse(std::string_view text) { return Parser(text).document(); }

Value parse_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::io_error, "cannot open JSON file " + path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(ErrorCode::io_error, "cannot read JSON file " + path);
  try {
    return parse(text);
  } catch (const Error& e) {
    // what() starts with "<code name>: "; keep only the message after it.
    const size_t prefix = std::strlen(error_code_name(e.code())) + 2;
    throw Error(e.code(), path + ": " + std::string(e.what()).substr(prefix));
  }
}

std::string write(const Value& v, bool pretty) {
  std::string out;
  write_value(out, v, pretty, 0);
  return out;
}

}  // namespace vidkv::json
