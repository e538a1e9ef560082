// QuantSpec names, validation errors and packed sizes.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "vidkv/error.hpp"
#include "vidkv/quant_spec.hpp"

using namespace vidkv;

namespace {

// Runs f, expects a vidkv::Error with this code whose message contains text.
void expect_error(const std::function<void()>& f, ErrorCode code, const std::string& text) {
  try {
    f();
    ADD_FAILURE() << "no error thrown, expected " << error_code_name(code);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos)
        << "message '" << e.what() << "' lacks '" << text << "'";
  }
}

QuantSpec spec(QuantBits b, QuantAxis a = QuantAxis::channel, uint32_t g = 32) {
  QuantSpec s;
  s.bits = b, s.axis = a, s.group_size = g;
  return s;
}

}  // namespace

TEST(QuantSpec, NamesAndParsing) {
  EXPECT_STREQ(bits_name(QuantBits::b1), "1");
  EXPECT_STREQ(bits_name(QuantBits::b1_58), "1.58");
  EXPECT_STREQ(bits_name(QuantBits::b8), "8");
  EXPECT_STREQ(axis_name(QuantAxis::channel), "channel");
  EXPECT_STREQ(axis_name(QuantAxis::token), "token");
  EXPECT_STREQ(ternary_scale_name(TernaryScale::mean_abs), "mean_abs");
  EXPECT_STREQ(ternary_scale_name(TernaryScale::lsq), "lsq");
  for (QuantBits b : {QuantBits::b1, QuantBits::b1_58, QuantBits::b2, QuantBits::b4,
                      QuantBits::b8}) {
    EXPECT_EQ(parse_bits(bits_name(b)), b);
  }
  expect_error([] { parse_bits("3"); }, ErrorCode::unsupported_bits, "'3'");
  expect_error([] { parse_bits("1.5"); }, ErrorCode::unsupported_bits, "'1.5'");
  expect_error([] { parse_bits(""); }, ErrorCode::unsupported_bits, "''");
}

TEST(QuantSpec, FieldBitsAndMaxCode) {
  EXPECT_EQ(field_bits(QuantBits::b1), 1u);
  EXPECT_EQ(field_bits(QuantBits::b1_58), 2u);
  EXPECT_EQ(field_bits(QuantBits::b2), 2u);
  EXPECT_EQ(field_bits(QuantBits::b4), 4u);
  EXPECT_EQ(field_bits(QuantBits::b8), 8u);
  EXPECT_EQ(max_code(QuantBits::b2), 3u);
  EXPECT_EQ(max_code(QuantBits::b4), 15u);
  EXPECT_EQ(max_code(QuantBits::b8), 255u);
  EXPECT_EQ(max_code(QuantBits::b1), 0u);
  EXPECT_EQ(max_code(QuantBits::b1_58), 0u);
}

TEST(QuantSpec, LayoutsAndSpan) {
  const TensorShape s{4, 256, 128};
  const TensorLayout thd = TensorLayout::thd(s), htd = TensorLayout::htd(s);
  EXPECT_EQ(thd.head_stride, 128u);
  EXPECT_EQ(thd.token_stride, 512u);
  EXPECT_EQ(htd.head_stride, 256u * 128u);
  EXPECT_EQ(htd.token_stride, 128u);
  EXPECT_EQ(thd.span(s), s.elements());
  EXPECT_EQ(htd.span(s), s.elements());
  // A padded layout: last element (3, 255, 127) at 3*40000 + 255*150 + 127.
  const TensorLayout padded{40000, 150};
  EXPECT_EQ(padded.span(s), 3u * 40000u + 255u * 150u + 128u);
  EXPECT_EQ(thd.span(TensorShape{0, 4, 4}), 0u);
}

TEST(QuantSpec, ValidateAcceptsGoodSpecs) {
  EXPECT_NO_THROW(validate(spec(QuantBits::b2), TensorShape{4, 256, 128}));
  EXPECT_NO_THROW(validate(spec(QuantBits::b1_58, QuantAxis::channel, 64), {1, 128, 2}));
  EXPECT_NO_THROW(validate(spec(QuantBits::b8, QuantAxis::token, 1024), {1, 3, 1024}));
}

TEST(QuantSpec, ValidateErrors) {
  expect_error([] { validate(spec(QuantBits::b2), {0, 32, 8}); }, ErrorCode::invalid_argument,
               "heads=0");
  expect_error([] { validate(spec(QuantBits::b2), {1, 0, 8}); }, ErrorCode::invalid_argument,
               "tokens=0");
  expect_error([] { validate(spec(QuantBits::b2), {1, 32, 0}); }, ErrorCode::invalid_argument,
               "dim=0");
  expect_error([] { validate(spec(QuantBits::b2, QuantAxis::channel, 48), {1, 96, 8}); },
               ErrorCode::bad_group_size, "group_size 48 is not a multiple of 32");
  expect_error([] { validate(spec(QuantBits::b2, QuantAxis::channel, 0), {1, 96, 8}); },
               ErrorCode::bad_group_size, "group_size 0");
  expect_error([] { validate(spec(QuantBits::b2, QuantAxis::channel, 2048), {1, 2048, 8}); },
               ErrorCode::bad_group_size, "group_size 2048 is above 1024");
  expect_error([] { validate(spec(QuantBits::b2), {1, 48, 8}); }, ErrorCode::bad_group_size,
               "tokens 48 is not a multiple of group_size 32");
  expect_error([] { validate(spec(QuantBits::b4, QuantAxis::token), {1, 48, 40}); },
               ErrorCode::bad_group_size, "dim 40 is not a multiple of group_size 32");
  expect_error([] { validate(spec(QuantBits::b1, QuantAxis::token), {1, 4, 64}); },
               ErrorCode::unsupported_bits, "1-bit");
  expect_error([] { validate(spec(QuantBits::b1_58, QuantAxis::token), {1, 4, 64}); },
               ErrorCode::unsupported_bits, "1.58-bit");
  EXPECT_NO_THROW(validate(spec(QuantBits::b2), {1, 32, 7}));  // odd dims: coefficient streams
  QuantSpec bad = spec(QuantBits::b2);
  bad.bits = static_cast<QuantBits>(17);
  expect_error([&] { validate(bad, {1, 32, 8}); }, ErrorCode::unsupported_bits, "17");
  // packed_sizes validates too.
  expect_error([] { packed_sizes(spec(QuantBits::b2), {1, 33, 8}); }, ErrorCode::bad_group_size,
               "tokens 33");
}

TEST(QuantSpec, PackedSizesPerChannel) {
  // The golden layout: [1,4,256,128] keys at 2 bit -> code [4][128][16], scale [4][128][8].
  PackedSizes p = packed_sizes(spec(QuantBits::b2), {4, 256, 128});
  EXPECT_EQ(p.field_bits, 2u);
  EXPECT_EQ(p.fields_per_word, 16u);
  EXPECT_EQ(p.words_per_row, 16u);
  EXPECT_EQ(p.groups_per_row, 8u);
  EXPECT_EQ(p.rows, 512u);
  EXPECT_EQ(p.code_words(), 8192u);
  EXPECT_EQ(p.scale_count(), 4096u);
  struct Want { QuantBits b; uint32_t words_per_row; };
  for (Want w : {Want{QuantBits::b1, 8}, Want{QuantBits::b1_58, 16}, Want{QuantBits::b4, 32},
                 Want{QuantBits::b8, 64}}) {
    p = packed_sizes(spec(w.b), {4, 256, 128});
    EXPECT_EQ(p.words_per_row, w.words_per_row) << bits_name(w.b);
    EXPECT_EQ(p.fields_per_word, 32u / field_bits(w.b));
    EXPECT_EQ(p.code_words(), 512u * w.words_per_row);
    EXPECT_EQ(p.scale_count(), 4096u);
  }
  p = packed_sizes(spec(QuantBits::b1, QuantAxis::channel, 64), {2, 64, 16});
  EXPECT_EQ(p.words_per_row, 2u);
  EXPECT_EQ(p.groups_per_row, 1u);
  EXPECT_EQ(p.rows, 32u);
}

TEST(QuantSpec, PackedSizesPerToken) {
  const PackedSizes p = packed_sizes(spec(QuantBits::b4, QuantAxis::token, 32), {2, 5, 128});
  EXPECT_EQ(p.field_bits, 4u);
  EXPECT_EQ(p.fields_per_word, 8u);
  EXPECT_EQ(p.words_per_row, 16u);  // 128 channels / 8 per word
  EXPECT_EQ(p.groups_per_row, 4u);  // 128 channels / 32
  EXPECT_EQ(p.rows, 10u);           // heads * tokens
  EXPECT_EQ(p.code_words(), 160u);
  EXPECT_EQ(p.scale_count(), 40u);
}
