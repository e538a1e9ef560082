#pragma once
// A small JSON value (RFC 8259) for manifests, reports and tool output. Objects keep their keys in
// insertion order so written files read like the ones we load. Malformed text and type mismatches
// throw vidkv::Error(corrupt_data) with the byte offset or the key involved.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace vidkv::json {

enum class Type { null, boolean, number, string, array, object };
const char* type_name(Type t) noexcept;

class Value {
 public:
  using Array = std::vector<Value>;
  using Object = std::vector<std::pair<std::string, Value>>;  // insertion order, unique keys

  Value() = default;
  Value(std::nullptr_t) {}
  Value(bool b) : data_(b) {}
  Value(double d) : data_(d) {}
  template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  Value(T n) : data_(double(n)) {}
  Value(const char* s) : data_(std::string(s)) {}
  Value(std::string s) : data_(std::move(s)) {}
  Value(std::string_view s) : data_(std::string(s)) {}
  Value(Array a) : data_(std::move(a)) {}
  Value(Object o) : data_(std::move(o)) {}
  static Value array() { return Value(Array{}); }
  static Value object() { return Value(Object{}); }

  Type type() const noexcept { return Type(data_.index()); }
  bool is_null() const noexcept { return type() == Type::null; }
  bool is_bool() const noexcept { return type() == Type::boolean; }
  bool is_number() const noexcept { return type() == Type::number; }
  bool is_string() const noexcept { return type() == Type::string; }
  bool is_array() const noexcept { return type() == Type::array; }
  bool is_object() const noexcept { return type() == Type::object; }

  bool as_bool() const;
  double as_number() const;
  // The number as an integer; throws unless it is integral and within int64_t.
  int64_t as_int() const;
  uint64_t as_uint() const;  // as_int, also rejecting negatives
  const std::string& as_string() const;
  const Array& as_array() const;
  Array& as_array();
  const Object& as_object() const;
  Object& as_object();

  // Arrays and objects: number of elements / members (0 for scalars).
  size_t size() const noexcept;
  const Value& operator[](size_t i) const;  // array element, throws when out of range
  void push_back(Value v);                  // on an array (a null becomes an empty array)

  bool contains(const std::string& key) const;
  const Value* find(const std::string& key) const;  // nullptr when absent or not an object
  const Value& at(const std::string& key) const;    // throws naming the missing key
  const Value& operator[](const std::string& key) const { return at(key); }
  // Inserts a null member when absent (a null becomes an empty object).
  Value& operator[](const std::string& key);
  void set(const std::string& key, Value v) { (*this)[key] = std::move(v); }

  bool operator==(const Value& other) const = default;

 private:
  std::variant<std::nullptr_t, bool, double, std::string, Array, Object> data_{nullptr};
};

// Parses a whole document; anything but whitespace after the value is an error.
Value parse(std::string_view text);
// Reads and parses a file; Error(io_error) when it cannot be read, corrupt_data when malformed
// (the message names the file).
Value parse_file(const std::string& path);
// pretty: two-space indentation, one member per line; otherwise no whitespace at all. Numbers
// round-trip exactly (shortest form); NaN and infinities are written as null.
std::string write(const Value& v, bool pretty = true);

}  // namespace vidkv::json
