// Per-head cache policies (head_policy.hpp): names, comparison, the assignment of a policy to
// every (layer, KV head), and the CSV head-score files. JSON score files are read by
// head_scores_json.cpp.
#include "vidkv/head_policy.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "vidkv/error.hpp"

namespace vidkv {
namespace detail {
// head_scores_json.cpp: the JSON shapes of a head-score file; errors name `name` and a byte offset.
std::vector<HeadScore> parse_head_scores_json(const std::string& text, const std::string& name);
}  // namespace detail

namespace {

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

bool known(HeadPolicy p) { return p == HeadPolicy::vidkv || p == HeadPolicy::full || p == HeadPolicy::window; }

std::string head_name(uint32_t layer, uint32_t head) {
  return "layer " + std::to_string(layer) + " head " + std::to_string(head);
}

[[noreturn]] void bad_spec(const HeadPolicySpec& spec, const std::string& what) {
  const std::string from = spec.score_source.empty() ? "" : " (scores from '" + spec.score_source + "')";
  throw Error(ErrorCode::invalid_argument, "head policies" + from + ": " + what);
}

void check_policy(const HeadPolicySpec& spec, HeadPolicy p, const std::string& what) {
  if (!known(p)) bad_spec(spec, what + " enum value " + std::to_string(int(p)) + " is not known");
}

// Scores compared as a set: the order of a file's lines is not part of the configuration.
std::vector<HeadScore> sorted(std::vector<HeadScore> s) {
  std::sort(s.begin(), s.end(), [](const HeadScore& a, const HeadScore& b) {
    return std::tie(a.layer, a.head, a.score) < std::tie(b.layer, b.head, b.score);
  });
  return s;
}

// ---- CSV ----

std::string trim(const std::string& t) {
  const size_t b = t.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  return t.substr(b, t.find_last_not_of(" \t\r") - b + 1);
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> out;
  size_t b = 0;
  for (;;) {
    const size_t e = line.find(',', b);
    out.push_back(trim(line.substr(b, e == std::string::npos ? std::string::npos : e - b)));
    if (e == std::string::npos) return out;
    b = e + 1;
  }
}

class CsvLine {
 public:
  CsvLine(const std::string& name, size_t line) : name_(name), line_(line) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(ErrorCode::invalid_argument,
                "head scores '" + name_ + "' line " + std::to_string(line_) + ": " + what);
  }

  uint32_t index(const std::string& field, const char* what) const {
    if (field.empty()) fail(std::string(what) + " is empty");
    if (field[0] == '-') fail(std::string(what) + " '" + field + "' is negative");
    for (char c : field) {
      if (c < '0' || c > '9') fail(std::string(what) + " '" + field + "' is not a non-negative integer");
    }
    errno = 0;
    const unsigned long long v = std::strtoull(field.c_str(), nullptr, 10);
    if (errno == ERANGE || v > 0xffffffffULL) fail(std::string(what) + " '" + field + "' is out of range");
    return uint32_t(v);
  }

  double score(const std::string& field) const {
    if (field.empty()) fail("score is empty");
    const std::string bare = lower(field[0] == '+' || field[0] == '-' ? field.substr(1) : field);
    if (bare == "nan" || bare == "inf" || bare == "infinity") fail("score '" + field + "' is not a finite number");
    // Decimal only: strtod would also take hex floats and "nan(...)".
    size_t p = field[0] == '+' || field[0] == '-' ? 1 : 0, digits = 0;
    while (p < field.size() && std::isdigit(static_cast<unsigned char>(field[p]))) ++p, ++digits;
    if (p < field.size() && field[p] == '.') {
      ++p;
      while (p < field.size() && std::isdigit(static_cast<unsigned char>(field[p]))) ++p, ++digits;
    }
    bool ok = digits > 0;
    if (ok && p < field.size() && (field[p] == 'e' || field[p] == 'E')) {
      ++p;
      if (p < field.size() && (field[p] == '+' || field[p] == '-')) ++p;
      const size_t e = p;
      while (p < field.size() && std::isdigit(static_cast<unsigned char>(field[p]))) ++p;
      ok = p > e;
    }
    if (!ok || p != field.size()) fail("score '" + field + "' is not a number");
    const double v = std::strtod(field.c_str(), nullptr);
    if (!std::isfinite(v)) fail("score '" + field + "' is not a finite number");
    return v;
  }

 private:
  const std::string& name_;
  size_t line_;
};

std::vector<HeadScore> parse_csv(const std::string& text, const std::string& name) {
  std::vector<HeadScore> out;
  std::istringstream in(text);
  std::string raw;
  bool first = true;
  for (size_t line_no = 1; std::getline(in, raw); ++line_no) {
    const size_t hash = raw.find('#');
    const std::string line = trim(hash == std::string::npos ? raw : raw.substr(0, hash));
    if (line.empty()) continue;
    const CsvLine at(name, line_no);
    const std::vector<std::string> f = split(line);
    const bool was_first = first;
    first = false;
    // The first line may name the columns: it starts with a letter where data starts with a digit.
    if (was_first && std::isalpha(static_cast<unsigned char>(line[0]))) {
      if (f.size() != 3 || lower(f[0]) != "layer" || lower(f[1]) != "head" || f[2].empty()) {
        at.fail("header '" + line + "' does not name the columns layer,head,score");
      }
      continue;
    }
    if (f.size() != 3) at.fail("'" + line + "' has " + std::to_string(f.size()) + " fields, not layer,head,score");
    out.push_back(HeadScore{at.index(f[0], "layer"), at.index(f[1], "head"), at.score(f[2])});
  }
  return out;
}

// ---- Matrix (RLKV's adapter_weights.tsv, DuoAttention's full_attention_heads.tsv) ----
// One line per layer, one score per KV head separated by tabs (or spaces), no header.

std::vector<std::string> split_blank(const std::string& line) {
  std::vector<std::string> out;
  size_t b = line.find_first_not_of(" \t");
  while (b != std::string::npos) {
    const size_t e = line.find_first_of(" \t", b);
    out.push_back(line.substr(b, e == std::string::npos ? std::string::npos : e - b));
    b = e == std::string::npos ? e : line.find_first_not_of(" \t", e);
  }
  return out;
}

std::vector<HeadScore> parse_matrix(const std::string& text, const std::string& name) {
  std::vector<HeadScore> out;
  std::istringstream in(text);
  std::string raw;
  uint32_t layer = 0;
  size_t columns = 0, first_line = 0;
  for (size_t line_no = 1; std::getline(in, raw); ++line_no) {
    const size_t hash = raw.find('#');
    const std::string line = trim(hash == std::string::npos ? raw : raw.substr(0, hash));
    if (line.empty()) continue;
    const CsvLine at(name, line_no);
    const std::vector<std::string> f = split_blank(line);
    if (layer == 0) {
      columns = f.size();
      first_line = line_no;
    } else if (f.size() != columns) {
      at.fail("has " + std::to_string(f.size()) + " scores; line " + std::to_string(first_line) + " has " +
              std::to_string(columns) + " (one line per layer, one score per KV head)");
    }
    for (size_t head = 0; head < f.size(); ++head) out.push_back(HeadScore{layer, uint32_t(head), at.score(f[head])});
    ++layer;
  }
  return out;
}

// A file in neither JSON nor layer,head,score form is a matrix: its first data line has no comma.
bool looks_like_matrix(const std::string& text) {
  std::istringstream in(text);
  std::string raw;
  while (std::getline(in, raw)) {
    const size_t hash = raw.find('#');
    const std::string line = trim(hash == std::string::npos ? raw : raw.substr(0, hash));
    if (!line.empty()) return line.find(',') == std::string::npos;
  }
  return false;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && lower(s.substr(s.size() - suffix.size())) == suffix;
}

}  // namespace

const char* head_policy_name(HeadPolicy policy) noexcept {
  switch (policy) {
    case HeadPolicy::vidkv: return "vidkv";
    case HeadPolicy::full: return "full";
    case HeadPolicy::window: return "window";
  }
  return "?";
}

HeadPolicy parse_head_policy(const std::string& name) {
  for (HeadPolicy p : {HeadPolicy::vidkv, HeadPolicy::full, HeadPolicy::window}) {
    if (name == head_policy_name(p)) return p;
  }
  throw Error(ErrorCode::invalid_argument, "unknown head policy '" + name + "'; known policies: vidkv, full, window");
}

bool same_head_policies(const HeadPolicySpec& a, const HeadPolicySpec& b) {
  if (a.heads != b.heads || a.sparsity != b.sparsity || a.low != b.low || a.high != b.high || a.sink != b.sink ||
      a.recent != b.recent || a.scores.size() != b.scores.size()) {
    return false;
  }
  const std::vector<HeadScore> x = sorted(a.scores), y = sorted(b.scores);
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i].layer != y[i].layer || x[i].head != y[i].head || x[i].score != y[i].score) return false;
  }
  return true;
}

std::vector<HeadPolicy> resolve_head_policies(const HeadPolicySpec& spec, uint32_t layers, uint32_t kv_heads) {
  if (layers == 0 || kv_heads == 0) {
    bad_spec(spec, "the cache has " + std::to_string(layers) + " layers x " + std::to_string(kv_heads) +
                       " KV heads; there is no head to give a policy");
  }
  const size_t total = size_t(layers) * kv_heads;
  const std::string geometry =
      std::to_string(layers) + " layers x " + std::to_string(kv_heads) + " KV heads = " + std::to_string(total);
  if (uint64_t(spec.sink) + spec.recent == 0) bad_spec(spec, "window sink + recent must be > 0 (both are 0)");
  check_policy(spec, spec.low, "low policy");
  check_policy(spec, spec.high, "high policy");
  if (!spec.heads.empty() && !spec.scores.empty()) {
    bad_spec(spec, "both an explicit list (" + std::to_string(spec.heads.size()) + " heads) and " +
                       std::to_string(spec.scores.size()) + " head scores are given; give one");
  }
  if (spec.scores.empty() && spec.sparsity != 0.0) {
    bad_spec(spec, "sparsity " + num(spec.sparsity) + " is given without head scores");
  }

  if (spec.uniform()) return std::vector<HeadPolicy>(total, HeadPolicy::vidkv);

  if (!spec.heads.empty()) {
    if (spec.heads.size() != total) {
      bad_spec(spec, "the explicit list has " + std::to_string(spec.heads.size()) + " policies; the cache has " +
                         geometry + " heads");
    }
    for (size_t i = 0; i < total; ++i) {
      check_policy(spec, spec.heads[i], head_name(uint32_t(i / kv_heads), uint32_t(i % kv_heads)) + " policy");
    }
    return spec.heads;
  }

  if (!(spec.sparsity >= 0.0 && spec.sparsity < 1.0)) {
    bad_spec(spec, "sparsity " + num(spec.sparsity) + " is not in [0, 1)");
  }
  // Scores that form a whole rectangle of R layers x C heads (a matrix file: R lines of C scores)
  // but of another shape than the cache: the messages below name that shape beside the cache's.
  std::string shape;
  {
    uint32_t rows = 0, cols = 0;
    for (const HeadScore& s : spec.scores) rows = std::max(rows, s.layer + 1), cols = std::max(cols, s.head + 1);
    if (uint64_t(rows) * cols == spec.scores.size() && (rows != layers || cols != kv_heads)) {
      shape = "; the scores are " + std::to_string(rows) + " layers (lines) x " + std::to_string(cols) +
              " KV heads (columns), the cache " + std::to_string(layers) + " layers x " + std::to_string(kv_heads) +
              " KV heads";
    }
  }
  // score of each (layer, head), layer-major; seen[] finds the heads scored twice or not at all.
  std::vector<double> score(total, 0.0);
  std::vector<char> seen(total, 0);
  for (const HeadScore& s : spec.scores) {
    if (s.layer >= layers) {
      bad_spec(spec, "a score for " + head_name(s.layer, s.head) + ": layer " + std::to_string(s.layer) +
                         " is not below the cache's " + std::to_string(layers) + " layers" + shape);
    }
    if (s.head >= kv_heads) {
      bad_spec(spec, "a score for " + head_name(s.layer, s.head) + ": head " + std::to_string(s.head) +
                         " is not below the cache's " + std::to_string(kv_heads) + " KV heads" + shape);
    }
    if (!std::isfinite(s.score)) bad_spec(spec, "the score of " + head_name(s.layer, s.head) + " is " + num(s.score));
    const size_t i = size_t(s.layer) * kv_heads + s.head;
    if (seen[i]) {
      bad_spec(spec, head_name(s.layer, s.head) + " is scored twice (" + num(score[i]) + " and " + num(s.score) + ")");
    }
    seen[i] = 1;
    score[i] = s.score;
  }
  for (size_t i = 0; i < total; ++i) {
    if (!seen[i]) {
      bad_spec(spec, head_name(uint32_t(i / kv_heads), uint32_t(i % kv_heads)) + " has no score (" +
                         std::to_string(spec.scores.size()) + " scores for " + geometry + " heads" + shape + ")");
    }
  }
  // RLKV ranks all heads of all layers together; the floor(s x heads) lowest take `low`, ties
  // going to the lower (layer, head) - a stable sort of layer-major indices by score.
  const size_t n_low = size_t(std::floor(spec.sparsity * double(total)));
  std::vector<size_t> order(total);
  for (size_t i = 0; i < total; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return score[a] < score[b]; });
  std::vector<HeadPolicy> out(total, spec.high);
  for (size_t r = 0; r < n_low; ++r) out[order[r]] = spec.low;
  return out;
}

std::vector<HeadScore> parse_head_scores(const std::string& text, const std::string& name) {
  // A UTF-8 byte-order mark (spreadsheet exports) is not content; offsets stay those of `text`.
  const bool bom = text.compare(0, 3, "\xEF\xBB\xBF") == 0;
  const std::string body = bom ? text.substr(3) : text;
  enum class Format { json, csv, matrix } format;
  if (ends_with(name, ".json")) {
    format = Format::json;
  } else if (ends_with(name, ".csv")) {
    format = Format::csv;
  } else if (ends_with(name, ".tsv")) {
    format = Format::matrix;
  } else {
    const size_t b = body.find_first_not_of(" \t\r\n");
    const bool json = b != std::string::npos && (body[b] == '[' || body[b] == '{');
    format = json ? Format::json : looks_like_matrix(body) ? Format::matrix : Format::csv;
  }
  std::vector<HeadScore> out;
  if (format == Format::json) {
    out = detail::parse_head_scores_json(bom ? std::string(3, ' ') + text.substr(3) : text, name);
  } else if (format == Format::csv) {
    out = parse_csv(body, name);
  } else {
    out = parse_matrix(body, name);
  }
  // An empty score list would silently mean "no per-head policies": surely a wrong file.
  if (out.empty()) throw Error(ErrorCode::invalid_argument, "head scores '" + name + "' hold no score");
  return out;
}

std::vector<HeadScore> read_head_scores(const std::string& path) {
  // stdio rather than a stream: a directory or an unreadable device reports its errno here
  // instead of reading as an empty file.
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw Error(ErrorCode::io_error, "cannot open head score file '" + path + "': " + std::strerror(errno));
  std::string text;
  char buf[1 << 14];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  const int err = std::ferror(f) ? (errno != 0 ? errno : EIO) : 0;
  std::fclose(f);
  if (err != 0) {
    throw Error(ErrorCode::io_error, "cannot read head score file '" + path + "': " + std::strerror(err));
  }
  return parse_head_scores(text, path);
}

}  // namespace vidkv
