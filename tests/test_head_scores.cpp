// Head-score files (head_policy.hpp): CSV, JSON (read with nlohmann-json) and RLKV's /
// DuoAttention's matrix files, by name or by content, and the errors that name the file, line and
// field. CPU only.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "head_policy_test_helpers.hpp"
#include "vidkv/error.hpp"
#include "vidkv/head_policy.hpp"

using namespace vidkv;
using namespace vidkv::head_policy_test;

namespace {

TEST(HeadPolicyScores, CsvWithAndWithoutHeader) {
  const std::vector<HeadScore> want = {{0, 0, 0.5}, {0, 1, -0.001}, {1, 0, 2.0}, {1, 1, 1e-7}};
  expect_scores(parse_head_scores("layer,head,score\n0,0,0.5\n0,1,-1e-3\n1,0,2\n1,1,1E-7\n", "s.csv"), want);
  expect_scores(parse_head_scores("0,0,0.5\n0,1,-1e-3\n1,0,2\n1,1,1E-7", "s.csv"), want);
  // Comments, blank lines, spaces, CRLF, a header in other case and another score column name,
  // a byte-order mark.
  expect_scores(parse_head_scores("\xEF\xBB\xBF# RLKV gates\r\n\r\n Layer , HEAD , gate \r\n0, 0, 0.5 # first\r\n"
                                  "   \r\n0,1,-.001\r\n# mid\r\n1,0,+2.0\r\n1 ,1, 1e-7\r\n",
                                  "s.csv"),
                want);
  // A header after data is malformed data, not a header.
  expect_scores_error("0,0,1\nlayer,head,score\n", "s.csv", {"line 2", "layer 'layer'"});
}

TEST(HeadPolicyScores, JsonBothShapes) {
  const std::vector<HeadScore> want = {{0, 0, 0.5}, {0, 1, -0.001}, {1, 0, 2.0}, {1, 1, 1e-7}};
  expect_scores(parse_head_scores("[{\"layer\": 0, \"head\": 0, \"score\": 0.5},\n"
                                  " {\"head\": 1, \"layer\": 0, \"score\": -1e-3, \"note\": [1, {\"x\": null}]},\n"
                                  " {\"layer\": 1, \"head\": 0, \"score\": 2},"
                                  "{\"layer\":1,\"head\":1,\"score\":1E-7}]",
                                  "s.json"),
                want);
  expect_scores(parse_head_scores(" [[0.5, -0.001], [2.0, 1e-7]] ", "s.json"), want);
  // Ragged lists are read as given (resolve_head_policies() names the missing heads).
  expect_scores(parse_head_scores("[[1], [2, 3]]", "s.json"), {{0, 0, 1}, {1, 0, 2}, {1, 1, 3}});
  // Escapes in keys.
  expect_scores(parse_head_scores("[{\"l\\u0061yer\": 3, \"head\": 2, \"sc\\u006fre\": -4.5, \"\\\"\\\\\\/\\n\": true}]",
                                  "s.json"),
                {{3, 2, -4.5}});
}

TEST(HeadPolicyScores, FormatByNameThenByContent) {
  const std::string csv = "0,0,1\n0,1,2\n", json = "[[1, 2]]";
  const std::vector<HeadScore> want = {{0, 0, 1}, {0, 1, 2}};
  expect_scores(parse_head_scores(csv, "scores.txt"), want);
  expect_scores(parse_head_scores(json, "scores"), want);
  expect_scores(parse_head_scores("\n  " + json, "scores.dat"), want);
  expect_scores(parse_head_scores(json, "scores.JSON"), want);
  expect_scores(parse_head_scores(csv, "scores.CSV"), want);
  // The name wins over the content.
  expect_scores_error(json, "scores.csv", {"line 1"});
  expect_scores_error(csv, "scores.json", {"line 1", "syntax error"});
  // '{' is JSON too: the error says which shape was expected.
  expect_scores_error("{\"layer\": 0}", "scores", {"line 1", "expected a list", "an object"});
}

TEST(HeadPolicyScores, ReadsFiles) {
  const std::string csv = temp_file("s.csv", "layer,head,score\n0,0,0.25\n0,1,0.75\n");
  expect_scores(read_head_scores(csv), {{0, 0, 0.25}, {0, 1, 0.75}});
  const std::string json = temp_file("s.json", "[[0.25, 0.75]]");
  expect_scores(read_head_scores(json), {{0, 0, 0.25}, {0, 1, 0.75}});
  const std::string bad = temp_file("bad.csv", "0,0,0.25\n0,1\n");
  expect_error([&] { read_head_scores(bad); }, ErrorCode::invalid_argument, {bad, "line 2"});
  const std::string missing = ::testing::TempDir() + "vidkv_no_such_scores.csv";
  std::remove(missing.c_str());
  expect_error([&] { read_head_scores(missing); }, ErrorCode::io_error, {missing, "cannot open"});
  expect_error([&] { read_head_scores(::testing::TempDir()); }, ErrorCode::io_error, {"head score file"});
  const std::string empty = temp_file("empty.csv", "");
  expect_error([&] { read_head_scores(empty); }, ErrorCode::invalid_argument, {empty, "no score"});
}

// RLKV's adapter_weights.tsv and DuoAttention's full_attention_heads.tsv: one line per layer, one
// tab-separated score per KV head, no header.
TEST(HeadPolicyScores, MatrixFilesOfRlkvAndDuoAttention) {
  const std::vector<HeadScore> want = {{0, 0, 0.5}, {0, 1, -0.001}, {1, 0, 2.0}, {1, 1, 1e-7}};
  expect_scores(parse_head_scores("0.5\t-1e-3\n2\t1E-7\n", "adapter_weights.tsv"), want);
  // By content (no comma on the first data line), with spaces, CRLF, comments, blank lines, a BOM.
  expect_scores(parse_head_scores("\xEF\xBB\xBF# gates\r\n\r\n0.5  -.001\r\n 2.0\t 1e-7 # last\r\n", "gates.txt"), want);
  expect_scores(parse_head_scores("0.5\t-1e-3\n2\t1E-7\n", "full_attention_heads"), want);
  // A ragged line names itself and the first line's count; a bad number names its line.
  expect_scores_error("1\t2\t3\n4\t5\n", "w.tsv", {"w.tsv", "line 2", "has 2 scores; line 1 has 3"});
  expect_scores_error("1\t2\n3\tnan\n", "w.tsv", {"line 2", "'nan' is not a finite number"});
  expect_scores_error("# nothing\n\n", "w.tsv", {"no score"});

  // Qwen2.5-7B's shape (28 layers x 4 KV heads) resolves; 27 lines or 5 columns are refused
  // naming both shapes.
  auto matrix = [](uint32_t lines, uint32_t columns) {
    std::string text;
    for (uint32_t l = 0; l < lines; ++l) {
      for (uint32_t h = 0; h < columns; ++h) {
        if (h > 0) text += '\t';
        text += std::to_string(0.01 * (l * columns + h + 1));
      }
      text += "\n";
    }
    return text;
  };
  HeadPolicySpec spec;
  spec.sparsity = 0.5;
  spec.score_source = "adapter_weights.tsv";
  spec.scores = parse_head_scores(matrix(28, 4), "adapter_weights.tsv");
  const std::vector<HeadPolicy> got = resolve_head_policies(spec, 28, 4);
  ASSERT_EQ(got.size(), 112u);
  // Scores rise with (layer, head): the first 56 heads take the low policy (window), the rest full.
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], i < 56 ? HeadPolicy::window : HeadPolicy::full) << i;
  spec.scores = parse_head_scores(matrix(27, 4), "adapter_weights.tsv");
  expect_error([&] { resolve_head_policies(spec, 28, 4); }, ErrorCode::invalid_argument,
               {"adapter_weights.tsv", "27 layers (lines) x 4 KV heads (columns)", "the cache 28 layers x 4 KV heads"});
  spec.scores = parse_head_scores(matrix(28, 5), "adapter_weights.tsv");
  expect_error([&] { resolve_head_policies(spec, 28, 4); }, ErrorCode::invalid_argument,
               {"28 layers (lines) x 5 KV heads (columns)", "the cache 28 layers x 4 KV heads"});
}

TEST(HeadPolicyScores, MalformedCsvNamesLine) {
  const struct { std::string text; std::vector<std::string> parts; } cases[] = {
      {"0,0\n", {"line 1", "2 fields"}},
      {"# c\n\n0,0,1,2\n", {"line 3", "4 fields"}},
      {"lyr,head,score\n0,0,1\n", {"line 1", "header"}},
      {"layer,head\n0,0,1\n", {"line 1", "header"}},
      {"0,0,1\n0,-1,0.5\n", {"line 2", "head '-1' is negative"}},
      {"-2,0,0.5\n", {"line 1", "layer '-2' is negative"}},
      {"0,1.5,0.5\n", {"line 1", "head '1.5' is not a non-negative integer"}},
      {"0,,0.5\n", {"line 1", "head is empty"}},
      {"4294967296,0,0.5\n", {"line 1", "layer '4294967296' is out of range"}},
      {"0,0,abc\n", {"line 1", "score 'abc' is not a number"}},
      {"0,0,\n", {"line 1", "score is empty"}},
      {"0,0,0x1p3\n", {"line 1", "score '0x1p3' is not a number"}},
      {"0,0,1.5.2\n", {"line 1", "score '1.5.2' is not a number"}},
      {"0,0,1e\n", {"line 1", "score '1e' is not a number"}},
      {"0,0,1\n0,1,nan\n", {"line 2", "score 'nan' is not a finite number"}},
      {"0,0,-inf\n", {"line 1", "score '-inf' is not a finite number"}},
      {"0,0,Infinity\n", {"line 1", "not a finite number"}},
      {"0,0,1e999\n", {"line 1", "score '1e999' is not a finite number"}},
      {"layer,head,score\n", {"no score"}},
      {"# only a comment\n\n", {"no score"}},
  };
  for (const auto& c : cases) expect_scores_error(c.text, "s.csv", c.parts);
}

// JSON is read with nlohmann-json: errors name the file, the line and the field (or nlohmann's
// account of a syntax error).
TEST(HeadPolicyScores, MalformedJsonNamesLineAndField) {
  const struct { std::string text; std::vector<std::string> parts; } cases[] = {
      {"[{\"layer\": 0, \"head\": 0, \"score\": 0.5}", {"line 1", "syntax error", "unexpected end of input"}},
      {"[{\"layer\": 0, \"head\": 0}]", {"line 1", "element 0", "no \"score\""}},
      {"[{\"layer\": 0, \"head\": 0, \"score\": 1},\n {\"head\": 0, \"score\": 1}]", {"line 2", "element 1", "no \"layer\""}},
      {"[{\"layer\": 0, \"score\": 1}]", {"no \"head\""}},
      {"[{\"layer\": 0, \"head\": 0, \"score\": NaN}]", {"line 1", "NaN is not a finite number"}},
      {"[[0.5,\n  Infinity]]", {"line 2", "Infinity is not a finite number"}},
      {"[[0.5], [-Infinity]]", {"-Infinity is not a finite number"}},
      {"[[-NaN]]", {"-NaN is not a finite number"}},
      {"[[1e999]]", {"line 1", "1e999"}},
      {"[[0.5, \"x\"]]", {"the score of layer 0 head 1 is a string, not a number"}},
      {"[[0.5],\n [0.1, null]]", {"line 2", "the score of layer 1 head 1 is null, not a number"}},
      {"[{\"layer\": -1, \"head\": 0, \"score\": 1}]", {"element 0 \"layer\" -1 is negative"}},
      {"[{\"layer\": 1.0, \"head\": 0, \"score\": 1}]", {"\"layer\" 1.0 is not an integer"}},
      {"[{\"layer\": 0, \"head\": 2e0, \"score\": 1}]", {"\"head\" 2e0 is not an integer"}},
      {"[{\"layer\": 0, \"head\": \"1\", \"score\": 1}]", {"\"head\" is a string, not an integer"}},
      {"[{\"layer\": 4294967296, \"head\": 0, \"score\": 1}]", {"\"layer\" 4294967296 is out of range"}},
      {"[{\"layer\": 0,\n \"layer\": 1}]", {"line 2", "repeated key \"layer\""}},
      {"[1, 2]", {"element 0: expected an object or a list of scores, found a number"}},
      {"[{\"layer\": 0, \"head\": 0, \"score\": 1}, [1]]", {"element 1: expected an object like the first"}},
      {"[[1], {\"layer\": 0}]", {"expected the list of layer 1's scores, found an object"}},
      {"[[1]] x", {"syntax error", "expected end of input"}},
      {"[[01]]", {"syntax error"}},
      {"[[1.]]", {"syntax error"}},
      {"[[-]]", {"syntax error"}},
      {"[[1 2]]", {"syntax error"}},
      {"[{\"layer\" 0}]", {"syntax error"}},
      {"[{\"layer\": 0,}]", {"syntax error"}},
      {"[{\"la\nyer\": 0}]", {"syntax error", "control character"}},
      {"[{\"a\\q\": 0}]", {"syntax error", "after backslash"}},
      {"[{\"a\\u00g0\": 0}]", {"syntax error", "\\u"}},
      {"[{\"a\": 0", {"syntax error"}},
      {"[\"abc", {"syntax error"}},
      {"[tru]", {"syntax error", "literal"}},
      {"\"scores\"", {"expected a list", "found a string"}},
      {"", {"line 1", "unexpected end of input"}},
      {" \n", {"line 2", "unexpected end of input"}},
      {"[]", {"no score"}},
      {"[[], []]", {"no score"}},
  };
  for (const auto& c : cases) expect_scores_error(c.text, "s.json", c.parts);
  // Nesting is bounded.
  expect_scores_error(std::string(200, '[') + std::string(200, ']'), "s.json", {"nesting deeper than 64"});
}

}  // namespace
