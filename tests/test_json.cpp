// The JSON value, parser and writer used for manifests and reports.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>

#include "common/json.hpp"
#include "vidkv/error.hpp"

using namespace vidkv;
using json::Value;

namespace {

// The byte offset a parse error reports, or -1 when the text parsed.
long error_offset(const std::string& text) {
  try {
    json::parse(text);
    return -1;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::corrupt_data) << text;
    const std::string msg = e.what();
    const auto at = msg.find("byte offset ");
    EXPECT_NE(at, std::string::npos) << msg;
    return at == std::string::npos ? -2 : std::stol(msg.substr(at + 12));
  }
}

}  // namespace

TEST(Json, ParsesAllTypes) {
  const Value v = json::parse(R"( {"n": null, "t": true, "f": false, "i": -12, "x": 1.5e3,
      "s": "a\"b\\c\n\u00e9\ud83d\ude00", "a": [1, [2, {}], []], "o": {"z": 1, "a": 2}} )");
  ASSERT_TRUE(v.is_object());
  EXPECT_TRUE(v["n"].is_null());
  EXPECT_TRUE(v["t"].as_bool());
  EXPECT_FALSE(v["f"].as_bool());
  EXPECT_EQ(v["i"].as_int(), -12);
  EXPECT_EQ(v["x"].as_number(), 1500.0);
  EXPECT_EQ(v["s"].as_string(), "a\"b\\c\n\xc3\xa9\xf0\x9f\x98\x80");  // é and U+1F600 in UTF-8
  EXPECT_EQ(v["a"].size(), 3u);
  EXPECT_EQ(v["a"][1][0].as_int(), 2);
  EXPECT_TRUE(v["a"][1][1].is_object());
  // Key order is kept as written, not sorted.
  EXPECT_EQ(v["o"].as_object()[0].first, "z");
  EXPECT_EQ(v["o"].as_object()[1].first, "a");
  EXPECT_EQ(v.as_object()[0].first, "n");
  EXPECT_FALSE(v.contains("missing"));
  EXPECT_EQ(v.find("missing"), nullptr);
}

TEST(Json, WriteThenParseIsIdentity) {
  Value v = Value::object();
  v["name"] = "tab\there \"quoted\" \x01 ctrl";
  v["pi"] = 3.141592653589793;
  v["tiny"] = 5e-324;
  v["big"] = 1.7976931348623157e308;
  v["neg_zero"] = -0.0;
  v["count"] = uint64_t(1) << 53;
  v["list"] = Value::array();
  v["list"].push_back(1);
  v["list"].push_back("x");
  v["list"].push_back(Value());
  v["empty_obj"] = Value::object();
  v["nested"]["deeper"]["flag"] = true;
  for (bool pretty : {true, false}) {
    const std::string text = json::write(v, pretty);
    EXPECT_EQ(json::parse(text), v) << text;
    EXPECT_EQ(json::write(json::parse(text), pretty), text);
  }
  EXPECT_EQ(json::write(v, false).find('\n'), std::string::npos);
  EXPECT_NE(json::write(v, false).find("tab\\there \\\"quoted\\\""), std::string::npos);
  EXPECT_NE(json::write(v, false).find("\\u0001"), std::string::npos);
  EXPECT_NE(json::write(v, true).find("\n  \"pi\": 3.141592653589793"), std::string::npos);
  EXPECT_TRUE(std::signbit(json::parse(json::write(v))["neg_zero"].as_number()));
}

TEST(Json, NumbersRoundTripExactly) {
  std::mt19937_64 rng(99);
  for (int i = 0; i < 20000; ++i) {
    const uint64_t bits = rng();
    double d;
    std::memcpy(&d, &bits, 8);
    if (!std::isfinite(d)) continue;
    const Value back = json::parse(json::write(Value(d), false));
    EXPECT_EQ(back.as_number(), d) << json::write(Value(d));
  }
  EXPECT_EQ(json::write(Value(256), false), "256");
  EXPECT_EQ(json::write(Value(0.1), false), "0.1");
}

TEST(Json, NonFiniteNumbersAreWrittenAsNull) {
  Value v = Value::array();
  v.push_back(NAN);
  v.push_back(INFINITY);
  v.push_back(-INFINITY);
  EXPECT_EQ(json::write(v, false), "[null,null,null]");
}

// The text is read by nlohmann-json; the offset is the byte at which it found the problem.
TEST(Json, MalformedInputReportsTheByteOffset) {
  EXPECT_EQ(error_offset(""), 0);
  EXPECT_EQ(error_offset("   "), 3);
  EXPECT_EQ(error_offset("[1,2,]"), 5);        // trailing comma
  EXPECT_EQ(error_offset("{\"a\":1,}"), 7);    // trailing comma in object
  EXPECT_EQ(error_offset("{\"a\" 1}"), 5);     // missing colon
  EXPECT_EQ(error_offset("[01]"), 2);          // leading zero
  EXPECT_EQ(error_offset("[1.]"), 3);          // no digit after the point
  EXPECT_EQ(error_offset("[1e]"), 3);          // no exponent digits
  EXPECT_EQ(error_offset("[-]"), 2);
  EXPECT_EQ(error_offset("[+1]"), 1);
  EXPECT_EQ(error_offset("[NaN]"), 1);
  EXPECT_EQ(error_offset("[tru]"), 4);
  EXPECT_EQ(error_offset("\"abc"), 4);         // unterminated string
  EXPECT_EQ(error_offset("\"a\tb\""), 2);      // raw control character
  EXPECT_EQ(error_offset("\"\\x\""), 2);       // unknown escape letter
  EXPECT_EQ(error_offset("\"\\u12g4\""), 5);   // bad hex digit
  EXPECT_EQ(error_offset("\"\\ud800\""), 7);   // lone high surrogate
  EXPECT_EQ(error_offset("\"\\udc00\""), 6);   // lone low surrogate
  EXPECT_EQ(error_offset("\"\xff\""), 1);      // not UTF-8
  EXPECT_EQ(error_offset("\"\xc3\""), 2);      // truncated UTF-8
  EXPECT_EQ(error_offset("{1:2}"), 1);
  EXPECT_EQ(error_offset("[1] x"), 4);         // trailing garbage
  EXPECT_EQ(error_offset("[1e999]"), 5);       // overflows a double
  EXPECT_EQ(error_offset(std::string("[1,\0]", 5)), 3);  // an embedded nul
  EXPECT_EQ(error_offset("[1e-999]"), -1);     // underflow to 0 is fine
  EXPECT_EQ(error_offset(std::string(200, '[') + std::string(200, ']')), -1);
}

// What nlohmann-json accepts but vidkv's files must not hold is refused by name: a key twice in one
// object, nesting deeper than 256 levels (the values are freed recursively).
TEST(Json, DuplicateKeysAndDeepNestingAreRefused) {
  auto message = [](const std::string& text) {
    try {
      json::parse(text);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::corrupt_data);
      return std::string(e.what());
    }
    return std::string("parsed");
  };
  EXPECT_NE(message("{\"a\":1,\"a\":2}").find("duplicate key \"a\""), std::string::npos);
  EXPECT_NE(message("[{\"b\":{\"x\":1},\"b\":2}]").find("duplicate key \"b\""), std::string::npos);
  EXPECT_EQ(message("{\"a\":{\"a\":1}}"), "parsed");  // the same key in another object is fine
  EXPECT_NE(message(std::string(300, '[') + std::string(300, ']')).find("nesting deeper than 256 levels"),
            std::string::npos);
  EXPECT_EQ(message(std::string(256, '[') + std::string(256, ']')), "parsed");
}

// Parse errors name the line and column too, and parse_file the file.
TEST(Json, ErrorsNameLineAndColumn) {
  try {
    json::parse("{\n  \"a\": 1,\n  \"b\": tru\n}");
    ADD_FAILURE() << "parsed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("line 3, column"), std::string::npos) << e.what();
  }
}

TEST(Json, TypeErrorsAndIntegers) {
  const Value v = json::parse(R"({"s": "x", "f": 1.5, "n": -3, "big": 1e19})");
  EXPECT_THROW(v["s"].as_number(), Error);
  EXPECT_THROW(v["f"].as_int(), Error);
  EXPECT_THROW(v["n"].as_uint(), Error);
  EXPECT_THROW(v["big"].as_int(), Error);
  EXPECT_THROW(v["missing"], Error);
  EXPECT_THROW(v["s"][0], Error);
  EXPECT_EQ(v["n"].as_int(), -3);
  try {
    v.at("absent");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::corrupt_data);
    EXPECT_NE(std::string(e.what()).find("absent"), std::string::npos);
  }
}

TEST(Json, ParsesAGoldenManifest) {
  const Value m =
      json::parse_file(std::string(VIDKV_GOLDEN_DIR) + "/perchan_2bit_keys_h2_t64/manifest.json");
  EXPECT_EQ(m["case"].as_string(), "perchan_2bit_keys_h2_t64");
  EXPECT_EQ(m["params"]["bits"].as_int(), 2);
  EXPECT_EQ(m["params"]["axis"].as_int(), -1);
  EXPECT_EQ(m["arrays"]["input"]["nbytes"].as_uint(), 2u * 64 * 128 * 2);
  EXPECT_EQ(json::parse(json::write(m)), m);
  try {
    json::parse_file("/nonexistent/vidkv/manifest.json");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::io_error);
  }
}
