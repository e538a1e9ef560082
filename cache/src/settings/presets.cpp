// Cache settings and presets (presets.hpp). The dictionary parser is in config_parse.cpp.
#include "vidkv/presets.hpp"

#include <cmath>
#include <cstdio>
#include <string>

#include "vidkv/error.hpp"
#include "vidkv/stp.hpp"

namespace vidkv {
namespace {

using KeyMode = CacheSettings::KeyMode;
using ValueMode = CacheSettings::ValueMode;

// Shortest readable form of a setting (1.5, 0.2, 1.58), enough digits to name a bad value.
std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

CacheSettings make(const char* name, KeyMode k, double nbits, ValueMode v, bool stp) {
  CacheSettings s;
  s.name = name;
  s.key_mode = k;
  s.keys.nbits = nbits;
  s.value_mode = v;
  s.stp = stp;
  return s;
}

// The one table of presets; every other default comes from CacheSettings' initializers.
std::vector<CacheSettings> presets() {
  return {
      make("fp16", KeyMode::fp16, 1.5, ValueMode::fp16, false),
      make("2bit", KeyMode::per_channel_2bit, 1.5, ValueMode::per_channel_2bit, false),
      make("kivi", KeyMode::per_channel_2bit, 1.5, ValueMode::per_token_2bit, false),
      make("k1.5-v2", KeyMode::vidkv, 1.5, ValueMode::per_channel_2bit, false),
      make("k1.5-v1.58", KeyMode::vidkv, 1.5, ValueMode::per_channel_ternary, false),
      make("k1.5-v1.58-stp", KeyMode::vidkv, 1.5, ValueMode::per_channel_ternary, true),
  };
}

std::string known_names() {
  std::string out;
  for (const std::string& n : preset_names()) out += (out.empty() ? "" : ", ") + n;
  return out;
}

bool valid(KeyMode m) { return m == KeyMode::fp16 || m == KeyMode::per_channel_2bit || m == KeyMode::vidkv; }
bool valid(ValueMode m) {
  return m == ValueMode::fp16 || m == ValueMode::per_channel_2bit || m == ValueMode::per_channel_ternary ||
         m == ValueMode::per_token_2bit;
}

// fp16 storage: two bytes per value, no scales; counted as code bytes so bits_per_value() = 16.
StorageBreakdown fp16_storage(const TensorShape& shape) {
  if (shape.elements() == 0) {
    throw Error(ErrorCode::invalid_argument, "tensor shape heads=" + std::to_string(shape.heads) + " tokens=" +
                                                 std::to_string(shape.tokens) + " dim=" + std::to_string(shape.dim) +
                                                 " has a zero dimension");
  }
  StorageBreakdown b;
  b.values = shape.elements();
  b.code_bytes = 2 * b.values;
  return b;
}

bool valid(HeadPolicy p) { return p == HeadPolicy::vidkv || p == HeadPolicy::full || p == HeadPolicy::window; }

// What validate() can check without the cache's geometry; resolve_head_policies() does the rest
// (list length, heads missing, scored twice or outside the cache).
void validate_heads(const HeadPolicySpec& h, const std::string& who) {
  const std::string at = who + "head policies: ";
  if (uint64_t(h.sink) + h.recent == 0) {
    throw Error(ErrorCode::invalid_argument, at + "window sink + recent must be > 0 (sink 0, recent 0)");
  }
  if (!valid(h.low)) {
    throw Error(ErrorCode::invalid_argument, at + "low policy enum value " + std::to_string(int(h.low)) + " is not known");
  }
  if (!valid(h.high)) {
    throw Error(ErrorCode::invalid_argument,
                at + "high policy enum value " + std::to_string(int(h.high)) + " is not known");
  }
  for (size_t i = 0; i < h.heads.size(); ++i) {
    if (!valid(h.heads[i])) {
      throw Error(ErrorCode::invalid_argument, at + "policy enum value " + std::to_string(int(h.heads[i])) +
                                                   " at index " + std::to_string(i) + " is not known");
    }
  }
  if (!h.heads.empty() && !h.scores.empty()) {
    throw Error(ErrorCode::invalid_argument, at + "both an explicit list (" + std::to_string(h.heads.size()) +
                                                 " heads) and " + std::to_string(h.scores.size()) +
                                                 " head scores are given; give one");
  }
  if (h.scores.empty()) {
    // Written as != so that NaN is caught too.
    if (h.sparsity != 0.0) {
      throw Error(ErrorCode::invalid_argument, at + "sparsity " + num(h.sparsity) + " is given without head scores");
    }
    return;
  }
  if (!(h.sparsity >= 0.0 && h.sparsity < 1.0)) {
    throw Error(ErrorCode::invalid_argument, at + "sparsity " + num(h.sparsity) + " is not in [0, 1)");
  }
  for (const HeadScore& sc : h.scores) {
    if (!std::isfinite(sc.score)) {
      throw Error(ErrorCode::invalid_argument, at + "the score of layer " + std::to_string(sc.layer) + " head " +
                                                   std::to_string(sc.head) + " is " + num(sc.score));
    }
  }
}

// ", heads: ..." for describe(); empty for uniform settings.
std::string describe_heads(const HeadPolicySpec& h) {
  if (h.uniform()) return "";
  auto policy = [&](HeadPolicy p) {
    std::string out = head_policy_name(p);
    if (p == HeadPolicy::window) {
      out += " (sink " + std::to_string(h.sink) + ", recent " + std::to_string(h.recent) + ")";
    }
    return out;
  };
  if (!h.heads.empty()) {
    std::string out = ", heads: explicit list (" + std::to_string(h.heads.size()) + ":";
    const char* sep = " ";
    for (HeadPolicy p : {HeadPolicy::vidkv, HeadPolicy::full, HeadPolicy::window}) {
      size_t n = 0;
      for (HeadPolicy q : h.heads) n += q == p;
      if (n == 0) continue;
      out += sep + std::to_string(n) + " " + policy(p);
      sep = ", ";
    }
    return out + ")";
  }
  const std::string from =
      h.score_source.empty() ? std::to_string(h.scores.size()) + " scores" : "scores from " + h.score_source;
  return ", heads: " + from + ", sparsity " + num(h.sparsity) + " -> " + policy(h.low) + " / " + policy(h.high);
}

}  // namespace

const char* key_mode_name(KeyMode mode) noexcept {
  switch (mode) {
    case KeyMode::fp16: return "fp16";
    case KeyMode::per_channel_2bit: return "2bit";
    case KeyMode::vidkv: return "vidkv";
  }
  return "?";
}

const char* value_mode_name(ValueMode mode) noexcept {
  switch (mode) {
    case ValueMode::fp16: return "fp16";
    case ValueMode::per_channel_2bit: return "2bit";
    case ValueMode::per_channel_ternary: return "1.58";
    case ValueMode::per_token_2bit: return "2bit-token";
  }
  return "?";
}

void validate(const CacheSettings& s) {
  const std::string who = "cache settings '" + s.name + "': ";
  if (!valid(s.key_mode)) {
    throw Error(ErrorCode::invalid_argument, who + "key mode enum value " + std::to_string(int(s.key_mode)) + " is not known");
  }
  if (!valid(s.value_mode)) {
    throw Error(ErrorCode::invalid_argument,
                who + "value mode enum value " + std::to_string(int(s.value_mode)) + " is not known");
  }
  if (s.ternary != TernaryScale::mean_abs && s.ternary != TernaryScale::lsq) {
    throw Error(ErrorCode::invalid_argument,
                who + "ternary scale enum value " + std::to_string(int(s.ternary)) + " is not known");
  }
  const uint32_t g = s.group_size;
  if (g == 0 || g % 32 != 0 || g > 1024) {
    // Same limits as QuantSpec: every group fills whole 32-bit code words at every bit width.
    throw Error(ErrorCode::bad_group_size,
                who + "group_size " + std::to_string(g) + " is not a multiple of 32 in [32, 1024]");
  }
  if (s.residual_length == 0 || s.residual_length % g != 0) {
    // The residual is flushed as whole groups, so it must hold a whole number of them.
    throw Error(ErrorCode::bad_group_size, who + "residual_length " + std::to_string(s.residual_length) +
                                               " is not a positive multiple of group_size " + std::to_string(g));
  }
  if (s.key_mode == KeyMode::vidkv) {
    if (!std::isfinite(s.keys.nbits) || s.keys.nbits < 1.0 || s.keys.nbits > 2.0) {
      throw Error(ErrorCode::unsupported_bits,
                  who + "VidKV key nbits " + num(s.keys.nbits) + " is outside [1, 2]");
    }
    if (s.keys.scope != ChannelScope::head && s.keys.scope != ChannelScope::layer) {
      throw Error(ErrorCode::invalid_argument,
                  who + "channel scope enum value " + std::to_string(int(s.keys.scope)) + " is not known");
    }
    if (s.keys.fft != FftLayout::half && s.keys.fft != FftLayout::full) {
      throw Error(ErrorCode::invalid_argument,
                  who + "fft layout enum value " + std::to_string(int(s.keys.fft)) + " is not known");
    }
  }
  if (s.keys.group_size != g) {
    throw Error(ErrorCode::bad_group_size, who + "keys.group_size " + std::to_string(s.keys.group_size) +
                                               " differs from group_size " + std::to_string(g));
  }
  if (s.stp) {
    if (s.value_mode != ValueMode::per_channel_ternary) {
      throw Error(ErrorCode::invalid_argument, who + "STP protects 1.58-bit values; values are " +
                                                   value_mode_name(s.value_mode));
    }
    if (!(s.stp_ratio > 0.0 && s.stp_ratio < 1.0)) {
      throw Error(ErrorCode::invalid_argument, who + "stp_ratio " + num(s.stp_ratio) + " is not in (0, 1)");
    }
  }
  validate_heads(s.head_policies, who);
}

bool same_configuration(const CacheSettings& a, const CacheSettings& b) {
  return a.key_mode == b.key_mode && a.keys.nbits == b.keys.nbits && a.keys.group_size == b.keys.group_size &&
         a.keys.scope == b.keys.scope && a.keys.fft == b.keys.fft && a.value_mode == b.value_mode &&
         a.ternary == b.ternary && a.trits_base3 == b.trits_base3 && a.stp == b.stp &&
         a.stp_ratio == b.stp_ratio && a.group_size == b.group_size && a.residual_length == b.residual_length &&
         same_head_policies(a.head_policies, b.head_policies);
}

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const CacheSettings& s : presets()) names.push_back(s.name);
  return names;
}

CacheSettings preset(const std::string& name) {
  for (CacheSettings& s : presets()) {
    if (s.name == name) return s;
  }
  throw Error(ErrorCode::invalid_argument, "unknown preset '" + name + "'; known presets: " + known_names());
}

std::string settings_name(const CacheSettings& s) {
  for (const CacheSettings& p : presets()) {
    if (same_configuration(s, p)) return p.name;
  }
  // "k<key bits>-v<value bits>" in the presets' style, then whatever else differs from them.
  std::string k = s.key_mode == KeyMode::fp16 ? "16" : s.key_mode == KeyMode::per_channel_2bit ? "2" : num(s.keys.nbits);
  std::string v = s.value_mode == ValueMode::fp16               ? "16"
                  : s.value_mode == ValueMode::per_channel_2bit ? "2"
                  : s.value_mode == ValueMode::per_token_2bit   ? "2t"
                                                                : "1.58";
  std::string name = "k" + k + "-v" + v;
  if (name == "k16-v16") name = "fp16";
  if (name == "k2-v2") name = "2bit";
  if (name == "k2-v2t") name = "kivi";
  if (s.stp) name += "-stp";
  if (s.stp && s.stp_ratio != 0.2) name += "-p" + num(s.stp_ratio);
  if (s.group_size != 32) name += "-g" + std::to_string(s.group_size);
  if (s.residual_length != 128) name += "-r" + std::to_string(s.residual_length);
  if (!s.head_policies.uniform()) name += "-heads";
  // Whatever is left (scope, fft, ternary scale, trit packing) is not in the name: never let the
  // name claim a preset the settings do not equal.
  for (const std::string& p : preset_names()) {
    if (p == name) return name + "-custom";
  }
  return name;
}

std::string describe(const CacheSettings& s) {
  std::string out = s.name + ": keys ";
  switch (s.key_mode) {
    case KeyMode::fp16: out += "fp16"; break;
    case KeyMode::per_channel_2bit: out += "2-bit per channel"; break;
    case KeyMode::vidkv:
      out += "VidKV nbits " + num(s.keys.nbits) + " (" + channel_scope_name(s.keys.scope) + ", fft " +
             fft_layout_name(s.keys.fft) + ")";
      break;
  }
  out += ", values ";
  switch (s.value_mode) {
    case ValueMode::fp16: out += "fp16"; break;
    case ValueMode::per_channel_2bit: out += "2-bit per channel"; break;
    case ValueMode::per_token_2bit: out += "2-bit per token"; break;
    case ValueMode::per_channel_ternary:
      out += std::string("1.58-bit ") + (s.trits_base3 ? "trits" : "in 2-bit fields") + " (" +
             ternary_scale_name(s.ternary) + ")";
      if (s.stp) out += " with STP p " + num(s.stp_ratio) + " at 2-bit";
      break;
  }
  if (s.key_mode == KeyMode::fp16 && s.value_mode == ValueMode::fp16) {
    out += " (no quantization)";
  } else {
    out += ", group " + std::to_string(s.group_size) + ", residual " + std::to_string(s.residual_length);
  }
  return out + describe_heads(s.head_policies);
}

StorageBreakdown settings_key_storage(const CacheSettings& s, const TensorShape& shape, StorageFormat format) {
  validate(s);
  switch (s.key_mode) {
    case KeyMode::fp16: return fp16_storage(shape);
    case KeyMode::per_channel_2bit: {
      // nbits 2 makes every channel anomalous: 2-bit codes, fp16 scale + min, no map, in both
      // formats (the original stores its 2-bit path the same way).
      KeySpec two = s.keys;
      two.nbits = 2.0;
      return key_storage(two, shape, format);
    }
    case KeyMode::vidkv: return key_storage(s.keys, shape, format);
  }
  return {};
}

StorageBreakdown settings_value_storage(const CacheSettings& s, const TensorShape& shape, StorageFormat format) {
  validate(s);
  const uint32_t g = s.group_size;
  switch (s.value_mode) {
    case ValueMode::fp16: return fp16_storage(shape);
    case ValueMode::per_channel_2bit:
      return value_storage(ValueStorageSpec{QuantBits::b2, s.trits_base3, g, 0}, shape, format);
    case ValueMode::per_channel_ternary: {
      const uint32_t p = s.stp ? protected_count(StpSpec{s.stp_ratio, g, 0}, shape.tokens) : 0;
      return value_storage(ValueStorageSpec{QuantBits::b1_58, s.trits_base3, g, p}, shape, format);
    }
    case ValueMode::per_token_2bit: {
      // KIVI: groups of g channels of one token, fp16 scale + min each; same in both formats.
      validate(QuantSpec{QuantBits::b2, QuantAxis::token, g, s.ternary}, shape);
      const uint64_t rows = uint64_t(shape.heads) * shape.tokens, groups = rows * (shape.dim / g);
      StorageBreakdown b;
      b.values = shape.elements();
      b.code_bytes = b.values * 2 / 8;
      b.scale_bytes = groups * 2;
      b.min_bytes = groups * 2;
      return b;
    }
  }
  return {};
}

}  // namespace vidkv
