#pragma once
// Helpers of the per-head policy tests (test_head_policy.cpp, test_head_scores.cpp).
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "vidkv/error.hpp"
#include "vidkv/head_policy.hpp"

namespace vidkv::head_policy_test {

// Runs f, expects a vidkv::Error with `code` whose message contains every one of `parts`.
template <class F>
void expect_error(F f, ErrorCode code, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one containing '" << parts.front() << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const std::string& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

inline void expect_scores(const std::vector<HeadScore>& got, const std::vector<HeadScore>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(got[i].layer, want[i].layer);
    EXPECT_EQ(got[i].head, want[i].head);
    EXPECT_EQ(got[i].score, want[i].score);
  }
}

inline void expect_scores_error(const std::string& text, const std::string& name, const std::vector<std::string>& parts) {
  SCOPED_TRACE(name + ": " + text);
  std::vector<std::string> all = parts;
  all.insert(all.begin(), "'" + name + "'");
  expect_error([&] { parse_head_scores(text, name); }, ErrorCode::invalid_argument, all);
}

// A file under the test temp directory, named after the running test so tests do not collide.
inline std::string temp_file(const std::string& suffix, const std::string& contents) {
  const ::testing::TestInfo* t = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string path =
      ::testing::TempDir() + "vidkv_" + t->test_suite_name() + "_" + t->name() + "_" + suffix;
  std::ofstream out(path, std::ios::binary);
  out << contents;
  EXPECT_TRUE(out.good()) << path;
  return path;
}

}  // namespace vidkv::head_policy_test
