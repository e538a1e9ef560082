// The original's configuration dictionaries as text (grammar and keys in presets.hpp): a small
// recursive-descent reader of Python literals, then the mapping of its keys onto CacheSettings.
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "vidkv/error.hpp"
#include "vidkv/presets.hpp"

namespace vidkv {
namespace {

using KeyMode = CacheSettings::KeyMode;
using ValueMode = CacheSettings::ValueMode;

struct PyValue {
  enum class Kind { none, boolean, integer, real, string, list, dict, name };
  Kind kind = Kind::none;
  size_t offset = 0;     // byte offset of the value's first character in the text
  std::string text;      // source text of numbers and names, contents of strings
  bool b = false;
  long long i = 0;
  double d = 0.0;        // numbers of both kinds
  std::vector<PyValue> items;                          // list, tuple
  std::vector<std::pair<std::string, PyValue>> entries;  // dict, in order
  std::vector<size_t> key_offsets;                      // of each dict key
};

[[noreturn]] void syntax(size_t offset, const std::string& what) {
  throw Error(ErrorCode::invalid_argument, "config text: " + what + " at byte " + std::to_string(offset));
}

bool ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool digit(char c) { return c >= '0' && c <= '9'; }
bool ident_char(char c) { return ident_start(c) || digit(c); }

class Reader {
 public:
  explicit Reader(const std::string& t) : t_(t) {}

  PyValue document() {
    skip();
    if (peek() != '{') syntax(pos_, "expected '{' to open the configuration dictionary");
    PyValue v = value(0);
    skip();
    if (pos_ != t_.size()) syntax(pos_, "trailing characters '" + t_.substr(pos_, 16) + "' after the dictionary");
    return v;
  }

 private:
  // Deep enough for any configuration, shallow enough that hostile text cannot exhaust the stack.
  static constexpr int kMaxDepth = 64;

  char peek() const { return pos_ < t_.size() ? t_[pos_] : '\0'; }
  bool at_end() const { return pos_ >= t_.size(); }

  void skip() {
    while (!at_end()) {
      const char c = t_[pos_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
        ++pos_;
      } else if (c == '#') {
        while (!at_end() && t_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
  }

  PyValue value(int depth) {
    if (depth > kMaxDepth) syntax(pos_, "nesting deeper than " + std::to_string(kMaxDepth));
    skip();
    if (at_end()) syntax(pos_, "unexpected end of text, expected a value");
    const char c = peek();
    if (c == '{') return dict(depth);
    if (c == '[') return sequence(depth, ']');
    if (c == '(') return sequence(depth, ')');
    if (c == '\'' || c == '"') return string();
    if (digit(c) || c == '.' || c == '+' || c == '-') return number();
    if (ident_start(c)) return name();
    syntax(pos_, std::string("unexpected character '") + c + "'");
  }

  PyValue dict(int depth) {
    PyValue v;
    v.kind = PyValue::Kind::dict;
    v.offset = pos_++;
    for (;;) {
      skip();
      if (at_end()) syntax(v.offset, "unterminated dictionary");
      if (peek() == '}') break;
      if (peek() != '\'' && peek() != '"') syntax(pos_, "expected a string key or '}'");
      const size_t key_at = pos_;
      std::string key = string().text;
      for (const auto& e : v.entries) {
        if (e.first == key) syntax(key_at, "repeated key '" + key + "'");
      }
      skip();
      if (peek() != ':') syntax(pos_, "expected ':' after key '" + key + "'");
      ++pos_;
      v.entries.emplace_back(std::move(key), value(depth + 1));
      v.key_offsets.push_back(key_at);
      skip();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() != '}') {
        if (at_end()) syntax(v.offset, "unterminated dictionary");
        syntax(pos_, "expected ',' or '}' in the dictionary");
      }
    }
    ++pos_;
    return v;
  }

  PyValue sequence(int depth, char close) {
    PyValue v;
    v.kind = PyValue::Kind::list;
    v.offset = pos_++;
    const std::string what = close == ']' ? "list" : "tuple";
    for (;;) {
      skip();
      if (at_end()) syntax(v.offset, "unterminated " + what);
      if (peek() == close) break;
      v.items.push_back(value(depth + 1));
      skip();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() != close) {
        if (at_end()) syntax(v.offset, "unterminated " + what);
        syntax(pos_, std::string("expected ',' or '") + close + "' in the " + what);
      }
    }
    ++pos_;
    return v;
  }

  PyValue string() {
    PyValue v;
    v.kind = PyValue::Kind::string;
    v.offset = pos_;
    const char quote = t_[pos_++];
    for (;;) {
      // Python's one-line strings end at the line: a newline means the quote was never closed.
      if (at_end() || t_[pos_] == '\n') syntax(v.offset, "unterminated string");
      const char c = t_[pos_++];
      if (c == quote) break;
      if (c != '\\') {
        v.text += c;
        continue;
      }
      if (at_end()) syntax(v.offset, "unterminated string");
      const char e = t_[pos_++];
      switch (e) {
        case '\\': case '\'': case '"': v.text += e; break;
        case 'n': v.text += '\n'; break;
        case 't': v.text += '\t'; break;
        case 'r': v.text += '\r'; break;
        default: v.text += '\\'; v.text += e; break;  // Python keeps unknown escapes as written
      }
    }
    return v;
  }

  PyValue number() {
    PyValue v;
    v.offset = pos_;
    size_t p = pos_;
    if (t_[p] == '+' || t_[p] == '-') ++p;
    const size_t int_begin = p;
    while (p < t_.size() && digit(t_[p])) ++p;
    const size_t int_digits = p - int_begin;
    size_t frac_digits = 0;
    bool real = false;
    if (p < t_.size() && t_[p] == '.') {
      real = true;
      ++p;
      const size_t f = p;
      while (p < t_.size() && digit(t_[p])) ++p;
      frac_digits = p - f;
    }
    bool ok = int_digits + frac_digits > 0;
    if (ok && p < t_.size() && (t_[p] == 'e' || t_[p] == 'E')) {
      real = true;
      ++p;
      if (p < t_.size() && (t_[p] == '+' || t_[p] == '-')) ++p;
      const size_t e = p;
      while (p < t_.size() && digit(t_[p])) ++p;
      ok = p > e;
    }
    // A number runs into no letter, digit or dot: "1.2.3", "12abc", "0x10" are malformed.
    while (p < t_.size() && (ident_char(t_[p]) || t_[p] == '.')) {
      ok = false;
      ++p;
    }
    v.text = t_.substr(pos_, p - pos_);
    // Python 3 rejects leading zeros on integers ("032").
    if (!real && int_digits > 1 && t_[int_begin] == '0') ok = false;
    if (!ok) syntax(v.offset, "bad number '" + v.text + "'");
    errno = 0;
    if (real) {
      v.kind = PyValue::Kind::real;
      v.d = std::strtod(v.text.c_str(), nullptr);
    } else {
      v.kind = PyValue::Kind::integer;
      v.i = std::strtoll(v.text.c_str(), nullptr, 10);
      v.d = double(v.i);
    }
    if (errno == ERANGE || !std::isfinite(v.d)) syntax(v.offset, "number '" + v.text + "' out of range");
    pos_ = p;
    return v;
  }

  PyValue name() {
    PyValue v;
    v.offset = pos_;
    size_t p = pos_;
    while (p < t_.size() && (ident_char(t_[p]) || (t_[p] == '.' && p + 1 < t_.size() && ident_start(t_[p + 1])))) ++p;
    v.text = t_.substr(pos_, p - pos_);
    pos_ = p;
    if (v.text == "True" || v.text == "False") {
      v.kind = PyValue::Kind::boolean;
      v.b = v.text == "True";
    } else if (v.text == "None") {
      v.kind = PyValue::Kind::none;
    } else {
      v.kind = PyValue::Kind::name;
    }
    return v;
  }

  const std::string& t_;
  size_t pos_ = 0;
};

// Errors about a value name the key, the value's text and its offset.
[[noreturn]] void bad(const std::string& key, const PyValue& v, const std::string& why,
                      ErrorCode code = ErrorCode::invalid_argument) {
  const std::string shown = v.kind == PyValue::Kind::string ? "'" + v.text + "'"
                            : v.kind == PyValue::Kind::none ? "None"
                            : v.kind == PyValue::Kind::list ? "a list"
                            : v.kind == PyValue::Kind::dict ? "a dict"
                                                            : v.text;
  throw Error(code, "config: '" + key + "' = " + shown + " at byte " + std::to_string(v.offset) + " " + why);
}

bool is_number(const PyValue& v) { return v.kind == PyValue::Kind::integer || v.kind == PyValue::Kind::real; }

long long integer(const std::string& key, const PyValue& v) {
  if (v.kind != PyValue::Kind::integer) bad(key, v, "is not an integer");
  return v.i;
}

uint32_t count(const std::string& key, const PyValue& v) {
  const long long n = integer(key, v);
  // 0 is passed on so that validate() names it alongside the group size.
  if (n < 0 || n > 0xffffffffLL) bad(key, v, "is not a count in [0, 2^32)");
  return uint32_t(n);
}

bool near(double a, double b) { return std::fabs(a - b) < 1e-9; }

void set_key_bits(CacheSettings& s, const std::string& key, const PyValue& v) {
  if (!is_number(v)) bad(key, v, "is not a number");
  if (near(v.d, 16)) {
    s.key_mode = KeyMode::fp16;
  } else if (near(v.d, 2)) {
    s.key_mode = KeyMode::per_channel_2bit;
  } else if (v.d >= 1.0 && v.d < 2.0) {
    s.key_mode = KeyMode::vidkv;
    s.keys.nbits = v.d;
  } else {
    bad(key, v, "is not a supported key bit width (16, 2, or VidKV's 1 <= nbits < 2)", ErrorCode::unsupported_bits);
  }
}

void set_value_bits(CacheSettings& s, const std::string& key, const PyValue& v) {
  if (!is_number(v)) bad(key, v, "is not a number");
  if (near(v.d, 16)) {
    s.value_mode = ValueMode::fp16;
  } else if (near(v.d, 2)) {
    s.value_mode = ValueMode::per_channel_2bit;  // per token when axis_value is 0
  } else if (near(v.d, 1.58)) {
    s.value_mode = ValueMode::per_channel_ternary;
  } else {
    bad(key, v, "is not a supported value bit width (16, 2 or 1.58)", ErrorCode::unsupported_bits);
  }
}

// Nested dictionaries' keys are recorded as "outer.inner" so the caller can warn precisely.
void stp_dict(CacheSettings& s, const PyValue& d) {
  for (const auto& e : d.entries) {
    if (e.first == "ratio" || e.first == "p") {
      if (!is_number(e.second)) bad("vidkv_stp." + e.first, e.second, "is not a number");
      s.stp_ratio = e.second.d;
    } else {
      s.ignored_keys.push_back("vidkv_stp." + e.first);
    }
  }
}

// The per-head policy keys (head_policy.hpp), collected first so that each can be checked
// against the others.
struct HeadKeys {
  const PyValue *list = nullptr, *scores = nullptr, *sparsity = nullptr, *low = nullptr, *high = nullptr,
                *sink = nullptr, *recent = nullptr;
};

HeadPolicy policy(const std::string& key, const PyValue& v) {
  if (v.kind != PyValue::Kind::string) bad(key, v, "is not a policy name (vidkv, full, window)");
  try {
    return parse_head_policy(v.text);
  } catch (const Error&) {
    bad(key, v, "is not a known policy (vidkv, full, window)");
  }
}

// A flat layer-major list of names, or a list per layer (all of one length), flattened.
std::vector<HeadPolicy> policy_list(const PyValue& v) {
  const std::string key = "head_policies";
  if (v.kind != PyValue::Kind::list) bad(key, v, "is not a list of policy names or a list per layer of them");
  if (v.items.empty()) bad(key, v, "is empty");
  std::vector<HeadPolicy> out;
  const bool nested = v.items[0].kind == PyValue::Kind::list;
  for (size_t l = 0; l < v.items.size(); ++l) {
    const PyValue& item = v.items[l];
    const std::string at = key + "[" + std::to_string(l) + "]";
    if (!nested) {
      out.push_back(policy(at, item));
      continue;
    }
    if (item.kind != PyValue::Kind::list) bad(at, item, "is not a list of policy names like " + key + "[0]");
    if (item.items.size() != v.items[0].items.size()) {
      bad(at, item, "has " + std::to_string(item.items.size()) + " policies; " + key + "[0] has " +
                        std::to_string(v.items[0].items.size()));
    }
    if (item.items.empty()) bad(at, item, "is empty");
    for (size_t h = 0; h < item.items.size(); ++h) {
      out.push_back(policy(at + "[" + std::to_string(h) + "]", item.items[h]));
    }
  }
  return out;
}

void set_head_policies(CacheSettings& s, const HeadKeys& k) {
  HeadPolicySpec& h = s.head_policies;
  if (k.list && k.scores) bad("head_scores", *k.scores, "is given together with 'head_policies'; give one");
  if (k.list) h.heads = policy_list(*k.list);
  if (k.scores) {
    const PyValue& v = *k.scores;
    if (v.kind != PyValue::Kind::string) bad("head_scores", v, "is not a file name");
    if (v.text.empty()) bad("head_scores", v, "is an empty file name");
    try {
      h.scores = read_head_scores(v.text);
    } catch (const Error& e) {
      bad("head_scores", v, std::string("is not a usable score file: ") + e.what(), e.code());
    }
    h.score_source = v.text;
  }
  // The assignment keys mean nothing without scores: surely a mistake, not a no-op.
  for (const auto& only : {std::make_pair("sparsity", k.sparsity), std::make_pair("low_policy", k.low),
                           std::make_pair("high_policy", k.high)}) {
    if (only.second && !k.scores) bad(only.first, *only.second, "is given without 'head_scores'");
  }
  if (k.sparsity) {
    if (!is_number(*k.sparsity)) bad("sparsity", *k.sparsity, "is not a number");
    if (!(k.sparsity->d >= 0.0 && k.sparsity->d < 1.0)) bad("sparsity", *k.sparsity, "is not in [0, 1)");
    h.sparsity = k.sparsity->d;
  }
  if (k.low) h.low = policy("low_policy", *k.low);
  if (k.high) h.high = policy("high_policy", *k.high);
  for (const auto& w : {std::make_pair("window_sink", k.sink), std::make_pair("window_recent", k.recent)}) {
    if (w.second && !k.list && !k.scores) bad(w.first, *w.second, "is given without 'head_policies' or 'head_scores'");
  }
  if (k.sink) h.sink = count("window_sink", *k.sink);
  if (k.recent) h.recent = count("window_recent", *k.recent);
  if (uint64_t(h.sink) + h.recent == 0) {
    const bool last_recent = k.recent && (!k.sink || k.recent->offset > k.sink->offset);
    bad(last_recent ? "window_recent" : "window_sink", last_recent ? *k.recent : *k.sink,
        "makes window sink + recent 0; it must be > 0");
  }
}

CacheSettings from_dict(const PyValue& root) {
  CacheSettings s;
  const PyValue *backend = nullptr, *nbits = nullptr, *axis_key = nullptr, *axis_value = nullptr, *stp = nullptr;
  HeadKeys heads;
  for (const auto& e : root.entries) {
    const std::string& k = e.first;
    const PyValue& v = e.second;
    if (k == "backend") backend = &v;
    else if (k == "nbits") nbits = &v;
    else if (k == "axis_key") axis_key = &v;
    else if (k == "axis_value") axis_value = &v;
    else if (k == "vidkv_stp") stp = &v;
    else if (k == "q_group_size") s.group_size = count(k, v);
    else if (k == "residual_length") s.residual_length = count(k, v);
    else if (k == "head_policies") heads.list = &v;
    else if (k == "head_scores") heads.scores = &v;
    else if (k == "sparsity") heads.sparsity = &v;
    else if (k == "low_policy") heads.low = &v;
    else if (k == "high_policy") heads.high = &v;
    else if (k == "window_sink") heads.sink = &v;
    else if (k == "window_recent") heads.recent = &v;
    else s.ignored_keys.push_back(k);
  }
  s.keys.group_size = s.group_size;

  if (!backend) syntax(root.offset, "dictionary has no 'backend' key");
  if (backend->kind != PyValue::Kind::string) bad("backend", *backend, "is not a string");
  // The authors' README configures its 2-bit and K1.5/V2 runs with QuantizedCacheLM (their LLM
  // cache class) and the others with the VLM classes; for the settings these keys express the two
  // mean the same, so both are accepted.
  if (backend->text == "QuantizedCacheVLMSTP") {
    s.stp = true;
  } else if (backend->text != "QuantizedCacheVLM" && backend->text != "QuantizedCacheLM") {
    bad("backend", *backend, "is not a known backend (QuantizedCacheLM, QuantizedCacheVLM, QuantizedCacheVLMSTP)");
  }

  if (!nbits) syntax(root.offset, "dictionary has no 'nbits' key");
  if (nbits->kind == PyValue::Kind::list) {
    if (nbits->items.size() != 2) bad("nbits", *nbits, "does not hold 2 numbers [key, value]");
    set_key_bits(s, "nbits[0]", nbits->items[0]);
    set_value_bits(s, "nbits[1]", nbits->items[1]);
  } else {
    set_key_bits(s, "nbits", *nbits);
    set_value_bits(s, "nbits", *nbits);
  }

  if (axis_key && s.key_mode != KeyMode::fp16 && integer("axis_key", *axis_key) != -1) {
    bad("axis_key", *axis_key, "is not -1: quantized keys are per channel");
  }
  if (axis_value && s.value_mode != ValueMode::fp16) {
    const long long a = integer("axis_value", *axis_value);
    if (a == 0 && s.value_mode == ValueMode::per_channel_2bit) {
      s.value_mode = ValueMode::per_token_2bit;
    } else if (a == 0) {
      bad("axis_value", *axis_value, "(per token) is offered for 2-bit values only");
    } else if (a != -1) {
      bad("axis_value", *axis_value, "is not -1 (per channel) or 0 (per token)");
    }
  }

  if (stp) {
    const PyValue& v = *stp;
    const bool off = v.kind == PyValue::Kind::none || (v.kind == PyValue::Kind::boolean && !v.b);
    if (!s.stp) {
      if (!off) bad("vidkv_stp", v, "is given without backend QuantizedCacheVLMSTP");
    } else if (v.kind == PyValue::Kind::boolean) {
      if (!v.b) bad("vidkv_stp", v, "turns STP off under backend QuantizedCacheVLMSTP");
    } else if (is_number(v)) {
      s.stp_ratio = v.d;
    } else if (v.kind == PyValue::Kind::dict) {
      stp_dict(s, v);
    } else if (v.kind != PyValue::Kind::none) {
      bad("vidkv_stp", v, "is not a ratio, True, None or a dict");
    }
  }
  set_head_policies(s, heads);
  // Opaque names are fine under ignored keys only (checked here, after the keys are known).
  for (const auto& e : root.entries) {
    const PyValue& v = e.second;
    if (v.kind == PyValue::Kind::name && e.first != "backend") {
      bool ignored = false;
      for (const std::string& k : s.ignored_keys) ignored = ignored || k == e.first;
      if (!ignored) bad(e.first, v, "is a bare name, not a literal");
    }
  }
  return s;
}

std::string trim(const std::string& t) {
  const size_t b = t.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return t.substr(b, t.find_last_not_of(" \t\r\n") - b + 1);
}

}  // namespace

CacheSettings parse_settings(const std::string& text) {
  const std::string name = trim(text);
  if (name.empty() || name[0] != '{') return preset(name);
  CacheSettings s = from_dict(Reader(text).document());
  s.name = settings_name(s);
  validate(s);
  return s;
}

}  // namespace vidkv
