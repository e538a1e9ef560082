// JSON head-score files (head_policy.hpp), read with nlohmann-json, in either shape
//   [{"layer": l, "head": h, "score": s}, ...]   (other keys in an object are ignored)
//   [[s, s, ...], [s, ...], ...]                  (a list per layer, one score per head)
// nlohmann's SAX events build a small tree that remembers the line of every value, so an error
// names the file, the line and the field. Python's json.dump writes NaN, Infinity and -Infinity
// for non-finite floats: JSON has no such words, and the error says that they are not finite
// numbers rather than only "invalid literal".
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "vidkv/error.hpp"
#include "vidkv/head_policy.hpp"

namespace vidkv {
namespace detail {
std::vector<HeadScore> parse_head_scores_json(const std::string& text, const std::string& name);
}  // namespace detail

namespace {

struct Node {
  enum class Kind { null, boolean, number, string, array, object };
  Kind kind = Kind::null;
  size_t line = 1;        // where the value ends (1-based)
  std::string text;       // a number as written (nlohmann keeps floats' text; integers re-printed)
  double d = 0.0;
  bool integer = false;   // written without fraction or exponent
  std::vector<Node> items;           // array elements, or object members in order
  std::vector<std::string> keys;     // object keys, parallel to items
};

const char* kind_name(Node::Kind k) {
  switch (k) {
    case Node::Kind::null: return "null";
    case Node::Kind::boolean: return "a boolean";
    case Node::Kind::number: return "a number";
    case Node::Kind::string: return "a string";
    case Node::Kind::array: return "a list";
    case Node::Kind::object: return "an object";
  }
  return "?";
}

// A char iterator that tells how far nlohmann's lexer has read: the line of each SAX event is
// the line of the last byte read (at most one byte of look-ahead past the value).
class CountingIterator {
 public:
  using iterator_category = std::forward_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  CountingIterator(const char* p, size_t* lines) : p_(p), lines_(lines) {}
  reference operator*() const { return *p_; }
  CountingIterator& operator++() {
    if (lines_ != nullptr && *p_ == '\n') ++*lines_;
    ++p_;
    return *this;
  }
  CountingIterator operator++(int) {
    CountingIterator old = *this;
    ++*this;
    return old;
  }
  bool operator==(const CountingIterator& o) const { return p_ == o.p_; }
  bool operator!=(const CountingIterator& o) const { return p_ != o.p_; }

 private:
  const char* p_;
  size_t* lines_;  // newlines read so far
};

class Fail {
 public:
  explicit Fail(const std::string& name) : name_(name) {}
  [[noreturn]] void operator()(size_t line, const std::string& what) const {
    throw Error(ErrorCode::invalid_argument, "head scores '" + name_ + "' line " + std::to_string(line) + ": " + what);
  }

 private:
  const std::string& name_;
};

// SAX events into a Node tree. Nesting is bounded (no score file nests past two levels) and a
// key repeated in one object is refused: nlohmann would keep the last one silently.
class Builder {
 public:
  static constexpr size_t kMaxDepth = 64;

  explicit Builder(const size_t& newlines) : newlines_(newlines) {}

  Node root;
  std::string refusal;     // why the builder stopped the parse
  size_t error_position = 0;
  std::string error_text;

  bool null() { return add(node(Node::Kind::null)); }
  bool boolean(bool) { return add(node(Node::Kind::boolean)); }
  bool number_integer(int64_t n) { return add(number(double(n), std::to_string(n), true)); }
  bool number_unsigned(uint64_t n) { return add(number(double(n), std::to_string(n), true)); }
  bool number_float(double d, const std::string& text) { return add(number(d, text, false)); }
  bool string(std::string&) { return add(node(Node::Kind::string)); }
  bool binary(std::vector<uint8_t>&) { return refuse("binary values are not JSON"); }
  bool start_object(size_t) { return open(Node::Kind::object); }
  bool start_array(size_t) { return open(Node::Kind::array); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool key(std::string& k) {
    for (const std::string& have : open_.back()->keys) {
      if (have == k) return refuse("repeated key \"" + k + "\"");
    }
    key_ = std::move(k);
    return true;
  }
  bool parse_error(size_t position, const std::string&, const nlohmann::detail::exception& e) {
    error_position = position;
    error_text = e.what();
    return false;
  }
  size_t line() const { return newlines_ + 1; }

 private:
  Node node(Node::Kind kind) const {
    Node n;
    n.kind = kind;
    n.line = line();
    return n;
  }
  Node number(double d, std::string text, bool integer) const {
    Node n = node(Node::Kind::number);
    n.d = d;
    n.text = std::move(text);
    n.integer = integer;
    return n;
  }
  bool refuse(const std::string& why) {
    refusal = why;
    return false;
  }
  Node* place(Node n) {
    if (open_.empty()) {
      root = std::move(n);
      return &root;
    }
    Node& parent = *open_.back();
    if (parent.kind == Node::Kind::object) parent.keys.push_back(std::move(key_));
    parent.items.push_back(std::move(n));
    return &parent.items.back();
  }
  bool add(Node n) {
    place(std::move(n));
    return true;
  }
  // Children are appended only to the innermost open container, so the pointers to it and its
  // ancestors stay valid.
  bool open(Node::Kind kind) {
    if (open_.size() >= kMaxDepth) return refuse("nesting deeper than " + std::to_string(kMaxDepth));
    open_.push_back(place(node(kind)));
    return true;
  }
  bool close() {
    open_.back()->line = line();
    open_.pop_back();
    return true;
  }

  const size_t& newlines_;
  std::vector<Node*> open_;
  std::string key_;
};

// What went wrong in nlohmann's words, without its "[json.exception...] parse error at line L,
// column C: " prefix (our message names the line itself).
std::string syntax_message(const std::string& what) {
  const size_t colon = what.find(": ");
  return what.rfind("[json.exception", 0) == 0 && colon != std::string::npos ? what.substr(colon + 2) : what;
}

Node parse_tree(const std::string& text, const Fail& fail) {
  size_t newlines = 0;
  Builder builder(newlines);
  const CountingIterator first(text.data(), &newlines), last(text.data() + text.size(), nullptr);
  if (nlohmann::json::sax_parse(first, last, &builder, nlohmann::detail::input_format_t::json, true)) {
    return std::move(builder.root);
  }
  if (!builder.refusal.empty()) fail(builder.line(), builder.refusal);
  // nlohmann stops at the first letter of Python's words for non-finite floats (error_position
  // counts the bytes read, that letter included): they get a message of their own.
  const size_t at = builder.error_position > 0 ? builder.error_position - 1 : 0;
  for (const std::string word : {"NaN", "Infinity"}) {
    if (text.compare(at, word.size(), word) == 0) {
      const std::string sign = at > 0 && text[at - 1] == '-' ? "-" : "";
      fail(builder.line(), sign + word + " is not a finite number (JSON has no NaN or Infinity)");
    }
  }
  fail(builder.line(), syntax_message(builder.error_text));
}

double finite_score(const Node& v, const std::string& what, const Fail& fail) {
  if (v.kind != Node::Kind::number) fail(v.line, what + " is " + kind_name(v.kind) + ", not a number");
  return v.d;  // nlohmann refuses numbers that overflow a double
}

uint32_t index(const Node& v, const std::string& what, const Fail& fail) {
  if (v.kind != Node::Kind::number) fail(v.line, what + " is " + kind_name(v.kind) + ", not an integer");
  if (!v.integer) fail(v.line, what + " " + v.text + " is not an integer");
  if (v.text[0] == '-') fail(v.line, what + " " + v.text + " is negative");
  if (v.d > 4294967295.0) fail(v.line, what + " " + v.text + " is out of range");
  return uint32_t(v.d);
}

HeadScore from_object(const Node& o, size_t at, const Fail& fail) {
  const Node *layer = nullptr, *head = nullptr, *score = nullptr;
  for (size_t i = 0; i < o.keys.size(); ++i) {
    if (o.keys[i] == "layer") layer = &o.items[i];
    else if (o.keys[i] == "head") head = &o.items[i];
    else if (o.keys[i] == "score") score = &o.items[i];
  }
  const std::string element = "element " + std::to_string(at);
  for (const auto& need : {std::make_pair("layer", layer), std::make_pair("head", head), std::make_pair("score", score)}) {
    if (!need.second) fail(o.line, element + ": the object has no \"" + need.first + "\"");
  }
  HeadScore s;
  s.layer = index(*layer, element + " \"layer\"", fail);
  s.head = index(*head, element + " \"head\"", fail);
  s.score = finite_score(*score, "\"score\" of layer " + std::to_string(s.layer) + " head " + std::to_string(s.head),
                         fail);
  return s;
}

}  // namespace

std::vector<HeadScore> detail::parse_head_scores_json(const std::string& text, const std::string& name) {
  const Fail fail(name);
  const Node root = parse_tree(text, fail);
  if (root.kind != Node::Kind::array) {
    fail(root.line, std::string("expected a list of {\"layer\", \"head\", \"score\"} objects or a list per "
                                "layer of scores, found ") + kind_name(root.kind));
  }
  std::vector<HeadScore> out;
  if (root.items.empty()) return out;
  // The first element decides the shape; every other must have it too.
  const bool objects = root.items[0].kind == Node::Kind::object;
  if (!objects && root.items[0].kind != Node::Kind::array) {
    fail(root.items[0].line, std::string("element 0: expected an object or a list of scores, found ") +
                                 kind_name(root.items[0].kind));
  }
  for (size_t l = 0; l < root.items.size(); ++l) {
    const Node& item = root.items[l];
    if (objects) {
      if (item.kind != Node::Kind::object) {
        fail(item.line, "element " + std::to_string(l) + ": expected an object like the first element, found " +
                            kind_name(item.kind));
      }
      out.push_back(from_object(item, l, fail));
      continue;
    }
    if (item.kind != Node::Kind::array) {
      fail(item.line, std::string("expected the list of layer ") + std::to_string(l) + "'s scores, found " +
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
