// Cache settings, presets and the original's configuration strings (presets.hpp). CPU only.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "vidkv/error.hpp"
#include "vidkv/presets.hpp"

using namespace vidkv;
using KeyMode = CacheSettings::KeyMode;
using ValueMode = CacheSettings::ValueMode;

namespace {

// Field by field, so a failure names the field that differs.
void expect_same(const CacheSettings& a, const CacheSettings& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.key_mode, b.key_mode);
  EXPECT_EQ(a.keys.nbits, b.keys.nbits);
  EXPECT_EQ(a.keys.group_size, b.keys.group_size);
  EXPECT_EQ(a.keys.scope, b.keys.scope);
  EXPECT_EQ(a.keys.fft, b.keys.fft);
  EXPECT_EQ(a.value_mode, b.value_mode);
  EXPECT_EQ(a.ternary, b.ternary);
  EXPECT_EQ(a.trits_base3, b.trits_base3);
  EXPECT_EQ(a.stp, b.stp);
  EXPECT_EQ(a.stp_ratio, b.stp_ratio);
  EXPECT_EQ(a.group_size, b.group_size);
  EXPECT_EQ(a.residual_length, b.residual_length);
  EXPECT_TRUE(same_configuration(a, b));
}

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

void expect_parse_error(const std::string& text, ErrorCode code, const std::vector<std::string>& parts) {
  SCOPED_TRACE(text);
  expect_error([&] { parse_settings(text); }, code, parts);
}

const std::string kBase = "'q_group_size': 32, 'residual_length': 128, 'axis_key': -1, 'axis_value': -1}";
std::string vlm(const std::string& nbits) { return "{'backend': 'QuantizedCacheVLM', 'nbits': " + nbits + ", " + kBase; }
std::string vlm_stp(const std::string& stp) {
  return "{'backend': 'QuantizedCacheVLMSTP', 'nbits': [1.5, 1.58], " + stp + kBase;
}

// LLaVA-OneVision-like layer: 4 KV heads, 32 frames x 196 tokens = 6272 = 196 groups of 32, D = 128.
const TensorShape kShape{4, 6272, 128};
const double kValues = 4.0 * 6272 * 128;  // 3,211,264 quantized values

}  // namespace

TEST(Presets, NamesAndUnknownName) {
  EXPECT_EQ(preset_names(),
            (std::vector<std::string>{"fp16", "2bit", "kivi", "k1.5-v2", "k1.5-v1.58", "k1.5-v1.58-stp"}));
  for (const std::string& n : preset_names()) {
    SCOPED_TRACE(n);
    const CacheSettings s = preset(n);
    EXPECT_EQ(s.name, n);
    EXPECT_NO_THROW(validate(s));
    EXPECT_TRUE(s.ignored_keys.empty());
    EXPECT_EQ(settings_name(s), n);
    expect_same(parse_settings(n), s);
    expect_same(parse_settings("  " + n + "\n"), s);
  }
  expect_error([] { preset("k1-v1"); }, ErrorCode::invalid_argument,
               {"'k1-v1'", "fp16, 2bit, kivi, k1.5-v2, k1.5-v1.58, k1.5-v1.58-stp"});
  expect_parse_error("K1.5-V1.58", ErrorCode::invalid_argument, {"'K1.5-V1.58'", "known presets"});
  expect_parse_error("", ErrorCode::invalid_argument, {"''"});
}

TEST(Presets, Fields) {
  // Defaults shared by every preset.
  for (const std::string& n : preset_names()) {
    SCOPED_TRACE(n);
    const CacheSettings s = preset(n);
    EXPECT_EQ(s.group_size, 32u);
    EXPECT_EQ(s.keys.group_size, 32u);
    EXPECT_EQ(s.residual_length, 128u);
    EXPECT_EQ(s.keys.nbits, 1.5);
    EXPECT_EQ(s.keys.scope, ChannelScope::head);
    EXPECT_EQ(s.keys.fft, FftLayout::half);
    EXPECT_EQ(s.ternary, TernaryScale::lsq);
    EXPECT_TRUE(s.trits_base3);
    EXPECT_EQ(s.stp_ratio, 0.2);
  }
  struct Row { const char* name; KeyMode k; ValueMode v; bool stp; };
  const Row rows[] = {
      {"fp16", KeyMode::fp16, ValueMode::fp16, false},
      {"2bit", KeyMode::per_channel_2bit, ValueMode::per_channel_2bit, false},
      {"kivi", KeyMode::per_channel_2bit, ValueMode::per_token_2bit, false},
      {"k1.5-v2", KeyMode::vidkv, ValueMode::per_channel_2bit, false},
      {"k1.5-v1.58", KeyMode::vidkv, ValueMode::per_channel_ternary, false},
      {"k1.5-v1.58-stp", KeyMode::vidkv, ValueMode::per_channel_ternary, true},
  };
  for (const Row& r : rows) {
    SCOPED_TRACE(r.name);
    const CacheSettings s = preset(r.name);
    EXPECT_EQ(s.key_mode, r.k);
    EXPECT_EQ(s.value_mode, r.v);
    EXPECT_EQ(s.stp, r.stp);
  }
}

TEST(Presets, Describe) {
  EXPECT_EQ(describe(preset("k1.5-v1.58")),
            "k1.5-v1.58: keys VidKV nbits 1.5 (head, fft half), values 1.58-bit trits (lsq), group 32, residual 128");
  EXPECT_EQ(describe(preset("k1.5-v1.58-stp")),
            "k1.5-v1.58-stp: keys VidKV nbits 1.5 (head, fft half), values 1.58-bit trits (lsq) with STP p 0.2 "
            "at 2-bit, group 32, residual 128");
  EXPECT_EQ(describe(preset("2bit")), "2bit: keys 2-bit per channel, values 2-bit per channel, group 32, residual 128");
  EXPECT_EQ(describe(preset("kivi")), "kivi: keys 2-bit per channel, values 2-bit per token, group 32, residual 128");
  EXPECT_EQ(describe(preset("fp16")), "fp16: keys fp16, values fp16 (no quantization)");
}

TEST(ConfigParse, OriginalStringsGivePresets) {
  const struct { std::string text, preset; } cases[] = {
      {vlm("[1.5, 1.58]"), "k1.5-v1.58"},
      {vlm("[2, 2]"), "2bit"},
      {vlm("2"), "2bit"},  // one number for both
      {vlm("[1.5, 2]"), "k1.5-v2"},
      {vlm("[16, 16]"), "fp16"},
      {"{'backend': 'QuantizedCacheVLM', 'nbits': [2, 2], 'q_group_size': 32, 'residual_length': 128, "
       "'axis_key': -1, 'axis_value': 0}",
       "kivi"},
      {vlm_stp("'vidkv_stp': 0.2, "), "k1.5-v1.58-stp"},
      {vlm_stp("'vidkv_stp': True, "), "k1.5-v1.58-stp"},
      {vlm_stp("'vidkv_stp': None, "), "k1.5-v1.58-stp"},
      {vlm_stp("'vidkv_stp': {'ratio': 0.2}, "), "k1.5-v1.58-stp"},
      {vlm_stp("'vidkv_stp': {'p': 0.2}, "), "k1.5-v1.58-stp"},
      {vlm_stp(""), "k1.5-v1.58-stp"},
      // The plain backend accepts an STP key that turns it off.
      {"{'backend': 'QuantizedCacheVLM', 'nbits': [1.5, 1.58], 'vidkv_stp': False}", "k1.5-v1.58"},
      // Defaults: axes -1, group 32, residual 128.
      {"{'backend': 'QuantizedCacheVLM', 'nbits': [1.5, 1.58]}", "k1.5-v1.58"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    const CacheSettings s = parse_settings(c.text);
    expect_same(s, preset(c.preset));
    EXPECT_TRUE(s.ignored_keys.empty());
  }
}

// The four configuration strings of the authors' README, verbatim (their 2-bit and K1.5/V2 runs
// name the LLM backend, and the STP one mixes quote styles), and its demo's dict.
TEST(ConfigParse, AuthorsReadmeStringsVerbatim) {
  const struct { std::string text, preset; } cases[] = {
      {"{'backend': 'QuantizedCacheLM', 'nbits': 2, 'q_group_size': 32, 'residual_length': 128, 'axis_key': -1, "
       "'axis_value': -1}",
       "2bit"},
      {"{'backend': 'QuantizedCacheLM', 'nbits': [1.5, 2], 'q_group_size': 32, 'residual_length': 128, "
       "'axis_key': -1, 'axis_value': -1}",
       "k1.5-v2"},
      {"{'backend': 'QuantizedCacheVLM', 'nbits': [1.5, 1.58], 'q_group_size': 32, 'residual_length': 128, "
       "'axis_key': -1, 'axis_value': -1}",
       "k1.5-v1.58"},
      {"{'backend': 'QuantizedCacheVLMSTP', 'nbits': [1.5, 1.58], 'q_group_size': 32, 'residual_length': 128, "
       "'axis_key': -1, 'axis_value': -1, \"vidkv_stp\": 0.2}",
       "k1.5-v1.58-stp"},
      {"{\"backend\": \"QuantizedCacheVLM\", \"nbits\": [1.5, 1.58], \"q_group_size\": 32, \"residual_length\": 128,"
       "\"axis_key\":-1, \"axis_value\":-1}",
       "k1.5-v1.58"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    const CacheSettings s = parse_settings(c.text);
    expect_same(s, preset(c.preset));
    EXPECT_TRUE(s.ignored_keys.empty());
  }
  // The LLM backend with an STP key that turns STP on is still refused, naming the STP backend.
  expect_parse_error("{'backend': 'QuantizedCacheLM', 'nbits': [1.5, 1.58], 'vidkv_stp': 0.2}",
                     ErrorCode::invalid_argument, {"'vidkv_stp' = 0.2", "QuantizedCacheVLMSTP"});
}

TEST(ConfigParse, PythonLiteralEdgeCases) {
  // Double quotes, newlines, tabs, comments, trailing commas, ints as floats, exponents, tuples,
  // True/False/None, nested dicts and bare names under keys vidkv ignores.
  const std::string text =
      "\n\t{ \"backend\" : \"QuantizedCacheVLM\",  # the original's backend\n"
      "  'nbits': (1.5e0, 1.58,),\n"
      "  \"q_group_size\": 32,'residual_length':+128,\n"
      "  'axis_key': -1, 'axis_value': -1.0e0 ,\n"
      "  'compute_dtype': torch.float16, 'device': 'cuda:0',\n"
      "  'flags': {'a': True, 'b': False, 'c': None, 'd': [1, -2.5, .5, 3., 'x\\'y\"z'], 'e': {},},\n"
      "  'empty': [], 'esc': 'tab\\there\\\\',\n"
      "}\n  # done\n";
  // axis_value must be an integer: -1.0e0 is a float.
  expect_parse_error(text, ErrorCode::invalid_argument, {"'axis_value' = -1.0e0", "not an integer"});
  std::string fixed = text;
  fixed.replace(fixed.find("-1.0e0"), 6, "-1");
  const CacheSettings s = parse_settings(fixed);
  expect_same(s, preset("k1.5-v1.58"));
  EXPECT_EQ(s.ignored_keys, (std::vector<std::string>{"compute_dtype", "device", "flags", "empty", "esc"}));
  // Floats that are whole numbers count as their value: 2.0 is 2.
  expect_same(parse_settings(vlm("[2.0, 2.]")), preset("2bit"));
  expect_same(parse_settings(vlm("[1.50, 2]")), preset("k1.5-v2"));
  // Unknown keys inside the STP dict are recorded with their path.
  const CacheSettings t = parse_settings(vlm_stp("'vidkv_stp': {'ratio': 0.3, 'layers': [0, 1]}, "));
  EXPECT_EQ(t.stp_ratio, 0.3);
  EXPECT_EQ(t.name, "k1.5-v1.58-stp-p0.3");
  EXPECT_EQ(t.ignored_keys, (std::vector<std::string>{"vidkv_stp.layers"}));
  // A bare name is only accepted where it is ignored.
  expect_parse_error("{'backend': 'QuantizedCacheVLM', 'nbits': [1.5, 1.58], 'q_group_size': torch.x}",
                     ErrorCode::invalid_argument, {"'q_group_size' = torch.x", "not an integer"});
}

TEST(ConfigParse, MalformedTextNamesOffset) {
  const struct { std::string text, part; } cases[] = {
      {"{'backend': 'QuantizedCacheVLM", "unterminated string at byte 12"},
      {"{'backend': 'QuantizedCacheVLM',\n 'nbits': [1.5, 1.58]", "unterminated dictionary at byte 0"},
      {"{'nbits': [1.5, 1.58}", "expected ',' or ']' in the list at byte 20"},
      {"{'nbits' [1.5, 1.58]}", "expected ':' after key 'nbits' at byte 9"},
      {"{'nbits': [1.5.8, 2]}", "bad number '1.5.8' at byte 11"},
      {"{'nbits': 12abc}", "bad number '12abc' at byte 10"},
      {"{'nbits': 032}", "bad number '032' at byte 10"},
      {"{'nbits': -}", "bad number '-' at byte 10"},
      {"{'nbits': 1e}", "bad number '1e' at byte 10"},
      {"{'backend': 'QuantizedCacheVLM', 'nbits': 2} x", "trailing characters 'x' after the dictionary at byte 45"},
      {"{'backend': 'QuantizedCacheVLM', 'nbits': 2}}", "trailing characters '}' after the dictionary at byte 44"},
      {"{'a': 1 'b': 2}", "expected ',' or '}' in the dictionary at byte 8"},
      {"{1: 2}", "expected a string key or '}' at byte 1"},
      {"{'a': }", "unexpected character '}' at byte 6"},
      {"{'a': ", "unexpected end of text, expected a value at byte 6"},
      {"{'a': 1, 'a': 2}", "repeated key 'a' at byte 9"},
      {"{'a': 'x\ny'}", "unterminated string at byte 6"},
      {"{'a': 1e999}", "out of range at byte 6"},
      {"  {", "unterminated dictionary at byte 2"},
      {"{}", "no 'backend' key at byte 0"},
      {"{'backend': 'QuantizedCacheVLM'}", "no 'nbits' key at byte 0"},
  };
  for (const auto& c : cases) expect_parse_error(c.text, ErrorCode::invalid_argument, {"config", c.part});
  // Nesting is bounded.
  expect_parse_error("{'a': " + std::string(100, '[') + std::string(100, ']') + "}", ErrorCode::invalid_argument,
                     {"nesting deeper than 64"});
}

TEST(ConfigParse, UnknownBackendAndBadValues) {
  expect_parse_error("{'backend': 'QuantizedCacheKIVI', 'nbits': 2}", ErrorCode::invalid_argument,
                     {"'QuantizedCacheKIVI'", "not a known backend"});
  expect_parse_error("{'backend': 2, 'nbits': 2}", ErrorCode::invalid_argument, {"'backend' = 2", "not a string"});
  expect_parse_error(vlm("[3, 1.58]"), ErrorCode::unsupported_bits, {"'nbits[0]' = 3 ", "key bit width"});
  expect_parse_error(vlm("[1.5, 1]"), ErrorCode::unsupported_bits, {"'nbits[1]' = 1 ", "value bit width"});
  expect_parse_error(vlm("1.5"), ErrorCode::unsupported_bits, {"'nbits' = 1.5 ", "value bit width"});
  expect_parse_error(vlm("[1.5, 1.58, 2]"), ErrorCode::invalid_argument, {"'nbits' = a list", "2 numbers"});
  expect_parse_error(vlm("['1.5', 1.58]"), ErrorCode::invalid_argument, {"'nbits[0]' = '1.5'", "not a number"});
  expect_parse_error("{'backend': 'QuantizedCacheVLM', 'nbits': [1.5, 1.58], 'residual_length': 100}",
                     ErrorCode::bad_group_size, {"residual_length 100", "group_size 32"});
  expect_parse_error("{'backend': 'QuantizedCacheVLM', 'nbits': [1.5, 1.58], 'residual_length': 0}",
                     ErrorCode::bad_group_size, {"residual_length 0"});
  expect_parse_error("{'backend': 'QuantizedCacheVLM', 'nbits': [1.5, 1.58], 'q_group_size': 48, "
                     "'residual_length': 96}",
                     ErrorCode::bad_group_size, {"group_size 48"});
  expect_parse_error("{'backend': 'QuantizedCacheVLM', 'nbits': [1.5, 1.58], 'q_group_size': -32}",
                     ErrorCode::invalid_argument, {"'q_group_size' = -32"});
  expect_parse_error("{'backend': 'QuantizedCacheVLM', 'nbits': [1.5, 1.58], 'axis_key': 0}",
                     ErrorCode::invalid_argument, {"'axis_key' = 0", "per channel"});
  expect_parse_error("{'backend': 'QuantizedCacheVLM', 'nbits': [1.5, 1.58], 'axis_value': 0}",
                     ErrorCode::invalid_argument, {"'axis_value' = 0", "2-bit values only"});
  expect_parse_error("{'backend': 'QuantizedCacheVLM', 'nbits': [2, 2], 'axis_value': 1}",
                     ErrorCode::invalid_argument, {"'axis_value' = 1"});
  expect_parse_error("{'backend': 'QuantizedCacheVLMSTP', 'nbits': [1.5, 2]}", ErrorCode::invalid_argument,
                     {"STP protects 1.58-bit values"});
  expect_parse_error(vlm_stp("'vidkv_stp': 1.5, "), ErrorCode::invalid_argument, {"stp_ratio 1.5"});
  expect_parse_error(vlm_stp("'vidkv_stp': False, "), ErrorCode::invalid_argument, {"'vidkv_stp' = False"});
  expect_parse_error(vlm_stp("'vidkv_stp': 'yes', "), ErrorCode::invalid_argument, {"'vidkv_stp' = 'yes'"});
  expect_parse_error("{'backend': 'QuantizedCacheVLM', 'nbits': [1.5, 1.58], 'vidkv_stp': 0.2}",
                     ErrorCode::invalid_argument, {"'vidkv_stp' = 0.2", "QuantizedCacheVLMSTP"});
}

TEST(ConfigParse, CustomSettingsGetTheirOwnName) {
  const CacheSettings a = parse_settings(vlm("[1.25, 2]"));
  EXPECT_EQ(a.name, "k1.25-v2");
  EXPECT_EQ(a.keys.nbits, 1.25);
  const CacheSettings b = parse_settings(
      "{'backend': 'QuantizedCacheVLM', 'nbits': [1.5, 1.58], 'q_group_size': 64, 'residual_length': 256}");
  EXPECT_EQ(b.name, "k1.5-v1.58-g64-r256");
  EXPECT_EQ(b.keys.group_size, 64u);
  EXPECT_EQ(describe(b),
            "k1.5-v1.58-g64-r256: keys VidKV nbits 1.5 (head, fft half), values 1.58-bit trits (lsq), group 64, "
            "residual 256");
  // A field the name does not carry never lets settings claim a preset.
  CacheSettings c = preset("k1.5-v1.58");
  c.keys.scope = ChannelScope::layer;
  EXPECT_EQ(settings_name(c), "k1.5-v1.58-custom");
}

TEST(Settings, ValidateNamesBadValue) {
  auto with = [](auto change) {
    CacheSettings s = preset("k1.5-v1.58-stp");
    change(s);
    return s;
  };
  expect_error([&] { validate(with([](CacheSettings& s) { s.keys.nbits = 2.5; })); }, ErrorCode::unsupported_bits,
               {"nbits 2.5"});
  expect_error([&] { validate(with([](CacheSettings& s) { s.group_size = s.keys.group_size = 0; })); },
               ErrorCode::bad_group_size, {"group_size 0"});
  expect_error([&] { validate(with([](CacheSettings& s) { s.keys.group_size = 64; })); }, ErrorCode::bad_group_size,
               {"keys.group_size 64", "group_size 32"});
  expect_error([&] { validate(with([](CacheSettings& s) { s.residual_length = 48; })); }, ErrorCode::bad_group_size,
               {"residual_length 48"});
  expect_error([&] { validate(with([](CacheSettings& s) { s.stp_ratio = 0.0; })); }, ErrorCode::invalid_argument,
               {"stp_ratio 0 "});
  expect_error([&] { validate(with([](CacheSettings& s) { s.stp_ratio = 1.0; })); }, ErrorCode::invalid_argument,
               {"stp_ratio 1 "});
  expect_error([&] { validate(with([](CacheSettings& s) { s.value_mode = ValueMode::per_token_2bit; })); },
               ErrorCode::invalid_argument, {"STP", "2bit-token"});
  // The ratio and the key spec are not read where they do not apply.
  CacheSettings ok = preset("2bit");
  ok.stp_ratio = 5.0;
  ok.keys.nbits = 7.0;
  EXPECT_NO_THROW(validate(ok));
}

// Effective bits at 4 heads x 6272 tokens x 128 channels (compact storage, residual apart):
//  fp16: 16 bits, nothing else.
//  2-bit per channel (K or V): 2 code bits + (16-bit scale + 16-bit min) / 32 tokens = 3.0.
//  kivi values, 2-bit per token: 2 + (16 + 16) / 32 channels = 3.0.
//  VidKV keys nbits 1.5: k = 64 anomalous channels at 3 bits, 64 normal channels as 64 half-
//    spectrum streams at 1 + 16 / 32 = 1.5 bits -> (3 + 1.5) / 2 = 2.25, plus a 128-bit mask per
//    head: 4 x 16 bytes = 512 bits over 3,211,264 values -> 2.25 + 1.594e-4 = 2.2502.
//  1.58-bit trits: ceil(128 x 32 / 5) = 820 bytes per (head, group) of 4096 trits = 1.6015625
//    bits, + 16 / 32 for the scale = 2.1015625 (no min).
//  STP p = 0.2: round(0.2 x 6272 / 32) = round(39.2) = 39 groups = 1248 tokens at 3 bits, the other
//    5024 tokens at 2.1015625, + a 6272-bit token map (784 bytes):
//    (1248 x 3 + 5024 x 2.1015625) / 6272 + 6272 / 3,211,264 = 14302.25 / 6272 + 0.00195 = 2.2823.
TEST(Settings, EffectiveBitsPerPreset) {
  const double mask = 512.0 / kValues;
  const struct { const char* name; double k, v; } rows[] = {
      {"fp16", 16.0, 16.0},
      {"2bit", 3.0, 3.0},
      {"kivi", 3.0, 3.0},
      {"k1.5-v2", 2.25 + mask, 3.0},
      {"k1.5-v1.58", 2.25 + mask, 2.1015625},
      {"k1.5-v1.58-stp", 2.25 + mask, 14302.25 / 6272 + 6272.0 / kValues},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.name);
    const StorageBreakdown k = settings_key_storage(preset(r.name), kShape);
    const StorageBreakdown v = settings_value_storage(preset(r.name), kShape);
    EXPECT_EQ(k.values, 3211264u);
    EXPECT_EQ(v.values, 3211264u);
    EXPECT_NEAR(k.bits_per_value(), r.k, 1e-12);
    EXPECT_NEAR(v.bits_per_value(), r.v, 1e-12);
  }
  // Rounded figures as quoted: k1.5-v1.58 is about 2.25 for K and 2.10 for V.
  EXPECT_NEAR(settings_key_storage(preset("k1.5-v1.58"), kShape).bits_per_value(), 2.25, 0.001);
  EXPECT_NEAR(settings_value_storage(preset("k1.5-v1.58"), kShape).bits_per_value(), 2.10, 0.002);
  // STP parts: 1248 protected tokens, 5024 others.
  const StorageBreakdown s = settings_value_storage(preset("k1.5-v1.58-stp"), kShape);
  EXPECT_EQ(s.code_bytes, 4u * 128 * 1248 * 2 / 8 + 4u * 157 * 820);
  EXPECT_EQ(s.scale_bytes, 4u * 128 * 196 * 2);
  EXPECT_EQ(s.min_bytes, 4u * 128 * 39 * 2);
  EXPECT_EQ(s.map_bytes, 784u);
  // kivi per-token value parts: 4 x 6272 tokens x 4 groups of 32 channels, fp16 scale and min each.
  const StorageBreakdown kv = settings_value_storage(preset("kivi"), kShape);
  EXPECT_EQ(kv.scale_bytes, 4u * 6272 * 4 * 2);
  EXPECT_EQ(kv.min_bytes, kv.scale_bytes);
  // As the original stores k1.5-v1.58 (bit_accounting.hpp): full spectrum, min everywhere, int64
  // channel indices (128 x 64 bits) -> keys 3.5 + 8192 / 3,211,264; trits in 2-bit fields -> 3.0.
  EXPECT_NEAR(settings_key_storage(preset("k1.5-v1.58"), kShape, StorageFormat::original).bits_per_value(),
              3.5 + 8192.0 / kValues, 1e-12);
  EXPECT_NEAR(settings_value_storage(preset("k1.5-v1.58"), kShape, StorageFormat::original).bits_per_value(), 3.0,
              1e-12);
  // Shapes the settings cannot store are rejected by the accounting's own checks.
  EXPECT_THROW(settings_value_storage(preset("kivi"), TensorShape{4, 6272, 100}), Error);
  EXPECT_THROW(settings_key_storage(preset("2bit"), TensorShape{4, 100, 128}), Error);
  EXPECT_THROW(settings_key_storage(preset("fp16"), TensorShape{4, 0, 128}), Error);
}
