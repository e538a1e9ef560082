#pragma once
// A minimal XML 1.0 well-formedness check for the bench's SVG (no Python or XML library on a bare
// Debian 12): one root element, properly nested and closed tags with names that are names,
// attributes quoted and unique per element, '<' never in text or attribute values, '&' only in
// entity or character references, nothing but comments, processing instructions and whitespace
// outside the root. Not a validating parser: DOCTYPE and CDATA are simply refused.
#include <cctype>
#include <set>
#include <string>
#include <vector>

namespace vidkv::test {

// Empty when `text` is well-formed, else the first problem and its byte offset.
inline std::string xml_problem(const std::string& text) {
  size_t i = 0;
  std::vector<std::string> open;
  bool root_seen = false;
  auto fail = [&](const std::string& what) { return what + " at byte " + std::to_string(i); };
  auto name_start = [](char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':'; };
  auto name_char = [&](char c) {
    return name_start(c) || std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.';
  };
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  auto read_name = [&]() {
    const size_t start = i;
    if (i >= text.size() || !name_start(text[i])) return std::string();
    while (i < text.size() && name_char(text[i])) ++i;
    return text.substr(start, i - start);
  };
  // An '&' at i: a predefined entity or a character reference.
  auto reference = [&]() {
    const size_t semi = text.find(';', i);
    if (semi == std::string::npos || semi - i > 10) return false;
    const std::string ref = text.substr(i + 1, semi - i - 1);
    bool ok = ref == "amp" || ref == "lt" || ref == "gt" || ref == "quot" || ref == "apos";
    if (!ok && ref.size() > 1 && ref[0] == '#') {
      const bool hex = ref[1] == 'x';
      const std::string digits = ref.substr(hex ? 2 : 1);
      ok = !digits.empty();
      for (char c : digits) ok = ok && (hex ? std::isxdigit(static_cast<unsigned char>(c)) : std::isdigit(static_cast<unsigned char>(c)));
    }
    if (ok) i = semi + 1;
    return ok;
  };
  while (i < text.size()) {
    const char c = text[i];
    if (c != '<') {
      if (open.empty() && !space(c)) return fail("text outside the root element");
      if (c == '&' && !reference()) return fail("'&' that is not a reference");
      if (c != '&') ++i;
      continue;
    }
    if (text.compare(i, 4, "<!--") == 0) {
      const size_t end = text.find("-->", i + 4);
      if (end == std::string::npos) return fail("unterminated comment");
      i = end + 3;
      continue;
    }
    if (text.compare(i, 2, "<?") == 0) {
      if (i != 0 && text.compare(i, 5, "<?xml") == 0) return fail("XML declaration not at the start");
      const size_t end = text.find("?>", i + 2);
      if (end == std::string::npos) return fail("unterminated processing instruction");
      i = end + 2;
      continue;
    }
    if (text.compare(i, 2, "<!") == 0) return fail("DOCTYPE or CDATA (not expected in the bench's output)");
    if (text.compare(i, 2, "</") == 0) {
      i += 2;
      const std::string name = read_name();
      while (i < text.size() && space(text[i])) ++i;
      if (i >= text.size() || text[i] != '>') return fail("malformed end tag");
      if (open.empty() || open.back() != name) return fail("end tag </" + name + "> does not close the open element");
      open.pop_back();
      ++i;
      continue;
    }
    ++i;
    const std::string name = read_name();
    if (name.empty()) return fail("'<' not starting a tag");
    if (open.empty() && root_seen) return fail("a second root element");
    std::set<std::string> attributes;
    while (true) {
      const size_t before = i;
      while (i < text.size() && space(text[i])) ++i;
      if (i >= text.size()) return fail("unterminated start tag");
      if (text[i] == '>' || text.compare(i, 2, "/>") == 0) break;
      if (i == before) return fail("attributes not separated by white space");
      const std::string attr = read_name();
      if (attr.empty()) return fail("malformed attribute");
      if (!attributes.insert(attr).second) return fail("attribute " + attr + " twice");
      while (i < text.size() && space(text[i])) ++i;
      if (i >= text.size() || text[i] != '=') return fail("attribute " + attr + " without '='");
      ++i;
      while (i < text.size() && space(text[i])) ++i;
      if (i >= text.size() || (text[i] != '"' && text[i] != '\'')) return fail("unquoted attribute value");
      const char quote = text[i++];
      while (i < text.size() && text[i] != quote) {
        if (text[i] == '<') return fail("'<' in an attribute value");
        if (text[i] == '&') {
          if (!reference()) return fail("'&' that is not a reference");
        } else {
          ++i;
        }
      }
      if (i >= text.size()) return fail("unterminated attribute value");
      ++i;
    }
    root_seen = true;
    if (text[i] == '/') {
      i += 2;  // empty element
    } else {
      open.push_back(name);
      ++i;
    }
  }
  if (!open.empty()) return fail("element <" + open.back() + "> not closed");
  if (!root_seen) return fail("no root element");
  return "";
}

}  // namespace vidkv::test
