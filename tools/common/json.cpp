#include "common/json.hpp"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "vidkv/error.hpp"

namespace vidkv::json {
namespace {

[[noreturn]] void type_error(const char* wanted, Type got) {
  throw Error(ErrorCode::corrupt_data,
              std::string("JSON value is ") + type_name(got) + ", expected " + wanted);
}

using Ordered = nlohmann::ordered_json;

// "line L, column C" of byte `offset` (both from 1), for messages a person can follow to the spot.
std::string line_and_column(std::string_view text, size_t offset) {
  size_t line = 1, column = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') ++line, column = 1; else ++column;
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

[[noreturn]] void malformed(std::string_view text, size_t offset, const std::string& what) {
  throw Error(ErrorCode::corrupt_data, "malformed JSON at byte offset " + std::to_string(offset) + " (" +
                                           line_and_column(text, offset) + "): " + what);
}

// nlohmann's SAX events built straight into a Value: objects keep their order, and what nlohmann
// allows but vidkv's files must not hold (a key twice in one object, nesting past kMaxDepth, which
// would make the recursive ~Value deep) stops the parse with its own message.
class Builder {
 public:
  static constexpr size_t kMaxDepth = 256;

  Value root;
  std::string refusal;            // set when the builder stopped the parse
  size_t error_offset = 0;        // nlohmann's error: the byte at which it stopped
  std::string error_text;

  bool null() { return add(Value()); }
  bool boolean(bool b) { return add(Value(b)); }
  bool number_integer(int64_t n) { return add(Value(double(n))); }
  bool number_unsigned(uint64_t n) { return add(Value(double(n))); }
  bool number_float(double d, const std::string&) { return add(Value(d)); }
  bool string(std::string& s) { return add(Value(std::move(s))); }
  bool binary(std::vector<uint8_t>&) { return refuse("binary values are not JSON"); }
  bool start_object(size_t) { return open(Value::object()); }
  bool start_array(size_t) { return open(Value::array()); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool key(std::string& k) {
    for (const auto& m : open_.back()->as_object()) {
      if (m.first == k) return refuse("duplicate key \"" + k + "\" in one object");
    }
    key_ = std::move(k);
    return true;
  }
  bool parse_error(size_t position, const std::string&, const nlohmann::detail::exception& e) {
    // position counts the bytes read, the offending one included.
    error_offset = position > 0 ? position - 1 : 0;
    error_text = e.what();
    const size_t cut = error_text.find(": ");  // drop "[json.exception.parse_error.101] parse error at ...: "
    if (error_text.rfind("[json.exception", 0) == 0 && cut != std::string::npos) error_text = error_text.substr(cut + 2);
    return false;
  }

 private:
  bool refuse(const std::string& why) {
    refusal = why;
    return false;
  }
  // Places v where the parse is: the root, the next array element or the pending key's member.
  Value* place(Value v) {
    if (open_.empty()) {
      root = std::move(v);
      return &root;
    }
    Value& parent = *open_.back();
    if (parent.is_array()) {
      parent.as_array().push_back(std::move(v));
      return &parent.as_array().back();
    }
    parent.as_object().emplace_back(std::move(key_), std::move(v));
    return &parent.as_object().back().second;
  }
  bool add(Value v) {
    place(std::move(v));
    return true;
  }
  // A container's children are appended only while it is the innermost open one, so the
  // pointers kept to it and its ancestors stay valid.
  bool open(Value v) {
    if (open_.size() >= kMaxDepth) return refuse("nesting deeper than 256 levels");
    open_.push_back(place(std::move(v)));
    return true;
  }
  bool close() {
    open_.pop_back();
    return true;
  }

  std::vector<Value*> open_;
  std::string key_;
};

// Integral numbers print without a fraction ("256", as people write them; nlohmann would print
// "256.0" for a double); -0 stays a double so that its sign survives.
Ordered to_ordered(const Value& v) {
  switch (v.type()) {
    case Type::null: return nullptr;
    case Type::boolean: return v.as_bool();
    case Type::number: {
      const double d = v.as_number();
      if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 9007199254740992.0 && !(d == 0 && std::signbit(d))) {
        return int64_t(d);
      }
      return d;  // NaN and infinities: nlohmann writes null
    }
    case Type::string: return v.as_string();
    case Type::array: {
      Ordered a = Ordered::array();
      for (const Value& e : v.as_array()) a.push_back(to_ordered(e));
      return a;
    }
    case Type::object: {
      Ordered o = Ordered::object();
      for (const auto& m : v.as_object()) o[m.first] = to_ordered(m.second);
      return o;
    }
  }
  return nullptr;
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

Value parse(std::string_view text) {
  Builder builder;
  if (Ordered::sax_parse(text.begin(), text.end(), &builder, nlohmann::detail::input_format_t::json, true)) {
    return std::move(builder.root);
  }
  if (!builder.refusal.empty()) throw Error(ErrorCode::corrupt_data, "malformed JSON: " + builder.refusal);
  malformed(text, builder.error_offset, builder.error_text);
}

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
  // Bytes that are not UTF-8 (a driver string, say) are replaced rather than failing the report.
  return to_ordered(v).dump(pretty ? 2 : -1, ' ', false, Ordered::error_handler_t::replace);
}

}  // namespace vidkv::json
