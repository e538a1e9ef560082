// JSON head-score files (head_policy.hpp): a small reader of JSON values, then the two shapes
//   [{"layer": l, "head": h, "score": s}, ...]   (other keys in an object are ignored)
//   [[s, s, ...], [s, ...], ...]                  (a list per layer, one score per head)
// Self-contained on purpose: the library does not depend on tools/ (which has its own JSON code).
// Python's json.dump writes NaN, Infinity and -Infinity for non-finite floats; they are read as
// numbers so that the error says "not a finite number" rather than "unexpected character".
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "vidkv/error.hpp"
#include "vidkv/head_policy.hpp"

namespace vidkv {
namespace detail {
std::vector<HeadScore> parse_head_scores_json(const std::string& text, const std::string& name);
}  // namespace detail

namespace {

struct JValue {
  enum class Kind { null, boolean, number, string, array, object };
  Kind kind = Kind::null;
  size_t offset = 0;   // byte offset of the value's first character
  std::string text;    // number source text, string contents
  double d = 0.0;      // numbers
  bool integer = false;  // a number written without fraction or exponent
  std::vector<JValue> items;        // array
  // Object members in order, as two parallel lists: a vector of pairs holding the incomplete
  // JValue does not compile with clang's C++20 library checks.
  std::vector<std::string> keys;
  std::vector<JValue> members;
};

class JsonError {
 public:
  explicit JsonError(const std::string& name) : name_(name) {}
  [[noreturn]] void operator()(size_t offset, const std::string& what) const {
    throw Error(ErrorCode::invalid_argument,
                "head scores '" + name_ + "' at byte " + std::to_string(offset) + ": " + what);
  }

 private:
  const std::string& name_;
};

bool digit(char c) { return c >= '0' && c <= '9'; }

class Reader {
 public:
  Reader(const std::string& t, const JsonError& fail) : t_(t), fail_(fail) {}

  JValue document() {
    JValue v = value(0);
    skip();
    if (pos_ != t_.size()) fail_(pos_, "trailing characters after the JSON value");
    return v;
  }

 private:
  // The shapes need depth 2; the bound only keeps hostile files from exhausting the stack.
  static constexpr int kMaxDepth = 64;

  bool at_end() const { return pos_ >= t_.size(); }
  char peek() const { return at_end() ? '\0' : t_[pos_]; }

  void skip() {
    while (!at_end() && (t_[pos_] == ' ' || t_[pos_] == '\t' || t_[pos_] == '\n' || t_[pos_] == '\r')) ++pos_;
  }

  bool literal(const char* word) {
    const std::string w(word);
    if (t_.compare(pos_, w.size(), w) != 0) return false;
    pos_ += w.size();
    return true;
  }

  JValue value(int depth) {
    if (depth > kMaxDepth) fail_(pos_, "nesting deeper than " + std::to_string(kMaxDepth));
    skip();
    if (at_end()) fail_(pos_, "unexpected end of text, expected a value");
    const char c = peek();
    if (c == '{') return object(depth);
    if (c == '[') return array(depth);
    if (c == '"') return string();
    if (c == '-' || digit(c) || c == 'N' || c == 'I') return number();
    JValue v;
    v.offset = pos_;
    if (literal("true") || literal("false")) {
      v.kind = JValue::Kind::boolean;
      v.text = t_.substr(v.offset, pos_ - v.offset);
    } else if (literal("null")) {
      v.text = "null";
    } else {
      fail_(pos_, std::string("unexpected character '") + c + "'");
    }
    return v;
  }

  JValue object(int depth) {
    JValue v;
    v.kind = JValue::Kind::object;
    v.offset = pos_++;
    skip();
    if (peek() == '}') {
      ++pos_;
      return v;
    }
    for (;;) {
      skip();
      if (at_end()) fail_(v.offset, "unterminated object");
      if (peek() != '"') fail_(pos_, "expected a string key");
      const size_t key_at = pos_;
      std::string key = string().text;
      for (const std::string& k : v.keys) {
        if (k == key) fail_(key_at, "repeated key \"" + key + "\"");
      }
      skip();
      if (peek() != ':') fail_(pos_, "expected ':' after key \"" + key + "\"");
      ++pos_;
      v.members.push_back(value(depth + 1));
      v.keys.push_back(std::move(key));
      skip();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() == '}') {
        ++pos_;
        return v;
      } else {
        if (at_end()) fail_(v.offset, "unterminated object");
        fail_(pos_, "expected ',' or '}' in the object");
      }
    }
  }

  JValue array(int depth) {
    JValue v;
    v.kind = JValue::Kind::array;
    v.offset = pos_++;
    skip();
    if (peek() == ']') {
      ++pos_;
      return v;
    }
    for (;;) {
      v.items.push_back(value(depth + 1));
      skip();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() == ']') {
        ++pos_;
        return v;
      } else {
        if (at_end()) fail_(v.offset, "unterminated list");
        fail_(pos_, "expected ',' or ']' in the list");
      }
    }
  }

  static void utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += char(cp);
    } else if (cp < 0x800) {
      out += char(0xC0 | (cp >> 6));
      out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += char(0xE0 | (cp >> 12));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    } else {
      out += char(0xF0 | (cp >> 18));
      out += char(0x80 | ((cp >> 12) & 0x3F));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    }
  }

  uint32_t hex4(size_t at) {
    if (pos_ + 4 > t_.size()) fail_(at, "unterminated \\u escape");
    uint32_t cp = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = t_[pos_++];
      cp <<= 4;
      if (digit(h)) cp |= uint32_t(h - '0');
      else if (h >= 'a' && h <= 'f') cp |= uint32_t(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') cp |= uint32_t(h - 'A' + 10);
      else fail_(at, "bad \\u escape");
    }
    return cp;
  }

  JValue string() {
    JValue v;
    v.kind = JValue::Kind::string;
    v.offset = pos_++;
    for (;;) {
      if (at_end()) fail_(v.offset, "unterminated string");
      const char c = t_[pos_++];
      if (c == '"') return v;
      if (static_cast<unsigned char>(c) < 0x20) fail_(pos_ - 1, "control character in a string");
      if (c != '\\') {
        v.text += c;
        continue;
      }
      const size_t esc_at = pos_ - 1;
      if (at_end()) fail_(v.offset, "unterminated string");
      switch (t_[pos_++]) {
        case '"': v.text += '"'; break;
        case '\\': v.text += '\\'; break;
        case '/': v.text += '/'; break;
        case 'b': v.text += '\b'; break;
        case 'f': v.text += '\f'; break;
        case 'n': v.text += '\n'; break;
        case 'r': v.text += '\r'; break;
        case 't': v.text += '\t'; break;
        case 'u': {
          uint32_t cp = hex4(esc_at);
          // A surrogate pair spells one code point; a lone surrogate is kept as is (keys only
          // need to compare equal to themselves).
          if (cp >= 0xD800 && cp < 0xDC00 && t_.compare(pos_, 2, "\\u") == 0) {
            const size_t save = pos_;
            pos_ += 2;
            const uint32_t lo = hex4(esc_at);
            if (lo >= 0xDC00 && lo < 0xE000) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            else pos_ = save;
          }
          utf8(v.text, cp);
          break;
        }
        default: fail_(esc_at, "bad escape in a string");
      }
    }
  }

  JValue number() {
    JValue v;
    v.kind = JValue::Kind::number;
    v.offset = pos_;
    const bool neg = peek() == '-';
    if (neg) ++pos_;
    if (literal("Infinity")) {
      v.d = neg ? -HUGE_VAL : HUGE_VAL;
    } else if (!neg && literal("NaN")) {
      v.d = std::nan("");
    } else {
      // -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
      bool ok = digit(peek());
      if (peek() == '0') {
        ++pos_;
      } else {
        while (digit(peek())) ++pos_;
      }
      v.integer = true;
      if (ok && peek() == '.') {
        v.integer = false;
        ++pos_;
        ok = digit(peek());
        while (digit(peek())) ++pos_;
      }
      if (ok && (peek() == 'e' || peek() == 'E')) {
        v.integer = false;
        ++pos_;
        if (peek() == '+' || peek() == '-') ++pos_;
        ok = digit(peek());
        while (digit(peek())) ++pos_;
      }
      // A number runs into no letter, digit or dot ("01", "1.2.3", "1x").
      while (!at_end() && (digit(peek()) || peek() == '.' || std::isalpha(static_cast<unsigned char>(peek())))) {
        ok = false;
        ++pos_;
      }
      if (!ok) fail_(v.offset, "bad number '" + t_.substr(v.offset, pos_ - v.offset) + "'");
      // Out-of-range values become +-inf here and are named as not finite by the caller.
      v.d = std::strtod(t_.c_str() + v.offset, nullptr);
    }
    v.text = t_.substr(v.offset, pos_ - v.offset);
    return v;
  }

  const std::string& t_;
  const JsonError& fail_;
  size_t pos_ = 0;
};

const char* kind_name(JValue::Kind k) {
  switch (k) {
    case JValue::Kind::null: return "null";
    case JValue::Kind::boolean: return "a boolean";
    case JValue::Kind::number: return "a number";
    case JValue::Kind::string: return "a string";
    case JValue::Kind::array: return "a list";
    case JValue::Kind::object: return "an object";
  }
  return "?";
}

double finite_score(const JValue& v, const std::string& what, const JsonError& fail) {
  if (v.kind != JValue::Kind::number) fail(v.offset, what + " is " + kind_name(v.kind) + ", not a number");
  if (!std::isfinite(v.d)) fail(v.offset, what + " " + v.text + " is not a finite number");
  return v.d;
}

uint32_t index(const JValue& v, const std::string& what, const JsonError& fail) {
  if (v.kind != JValue::Kind::number) fail(v.offset, what + " is " + kind_name(v.kind) + ", not an integer");
  if (!v.integer) fail(v.offset, what + " " + v.text + " is not an integer");
  if (v.text[0] == '-') fail(v.offset, what + " " + v.text + " is negative");
  if (v.d > 4294967295.0) fail(v.offset, what + " " + v.text + " is out of range");
  return uint32_t(v.d);
}

HeadScore from_object(const JValue& o, const JsonError& fail) {
  const JValue *layer = nullptr, *head = nullptr, *score = nullptr;
  for (size_t i = 0; i < o.keys.size(); ++i) {
    if (o.keys[i] == "layer") layer = &o.members[i];
    else if (o.keys[i] == "head") head = &o.members[i];
    else if (o.keys[i] == "score") score = &o.members[i];
  }
  for (const auto& need : {std::make_pair("layer", layer), std::make_pair("head", head), std::make_pair("score", score)}) {
    if (!need.second) fail(o.offset, std::string("the object has no \"") + need.first + "\"");
  }
  HeadScore s;
  s.layer = index(*layer, "\"layer\"", fail);
  s.head = index(*head, "\"head\"", fail);
  s.score = finite_score(*score, "\"score\" of layer " + std::to_string(s.layer) + " head " + std::to_string(s.head),
                         fail);
  return s;
}

}  // namespace

std::vector<HeadScore> detail::parse_head_scores_json(const std::string& text, const std::string& name) {
  const JsonError fail(name);
  const JValue root = Reader(text, fail).document();
  if (root.kind != JValue::Kind::array) {
    fail(root.offset, std::string("expected a list of {\"layer\", \"head\", \"score\"} objects or a list per "
                                  "layer of scores, found ") + kind_name(root.kind));
  }
  std::vector<HeadScore> out;
  if (root.items.empty()) return out;
  // The first element decides the shape; every other must have it too.
  const bool objects = root.items[0].kind == JValue::Kind::object;
  if (!objects && root.items[0].kind != JValue::Kind::array) {
    fail(root.items[0].offset, std::string("expected an object or a list of scores, found ") +
                                   kind_name(root.items[0].kind));
  }
  for (size_t l = 0; l < root.items.size(); ++l) {
    const JValue& item = root.items[l];
    if (objects) {
      if (item.kind != JValue::Kind::object) {
        fail(item.offset, std::string("expected an object like the first element, found ") + kind_name(item.kind));
      }
      out.push_back(from_object(item, fail));
      continue;
    }
    if (item.kind != JValue::Kind::array) {
      fail(item.offset, std::string("expected the list of layer ") + std::to_string(l) + "'s scores, found " +
                            kind_name(item.kind));
    }
    for (size_t h = 0; h < item.items.size(); ++h) {
      const double s =
          finite_score(item.items[h], "the score of layer " + std::to_string(l) + " head " + std::to_string(h), fail);
      out.push_back(HeadScore{uint32_t(l), uint32_t(h), s});
    }
  }
  return out;
}

}  // namespace vidkv
