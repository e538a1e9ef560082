#pragma once
// Cache settings: everything that decides how one layer's K and V are stored (DESIGN section 2),
// the named presets, the original's configuration dictionaries, and the honest bits of each
// (DESIGN section 4).
//
// Presets (defaults: group 32, residual 128, VidKV key scope head, fft half, ternary scale lsq,
// trits 5 per byte):
//   fp16            keys fp16, values fp16: the baseline, nothing quantized
//   2bit            keys 2-bit per channel, values 2-bit per channel (the original's K2/V2)
//   kivi            keys 2-bit per channel, values 2-bit per token (KIVI)
//   k1.5-v2         VidKV keys nbits 1.5, values 2-bit per channel
//   k1.5-v1.58      VidKV keys nbits 1.5, values 1.58-bit per channel (trits)
//   k1.5-v1.58-stp  the same plus semantic token protection, p = 0.2
//
// parse_settings() also takes the original's configuration dictionary as Python literal text:
//   {'backend': 'QuantizedCacheVLM', 'nbits': [1.5, 1.58], 'q_group_size': 32,
//    'residual_length': 128, 'axis_key': -1, 'axis_value': -1}
// Accepted grammar (a subset of Python literals):
//   value  := dict | list | tuple | string | number | True | False | None | name
//   dict   := '{' [ string ':' value { ',' string ':' value } [','] ] '}'   (string keys only;
//             a repeated key is an error, not Python's "last wins", since it is surely a mistake)
//   list   := '[' [ value { ',' value } [','] ] ']'       tuple := '(' ... ')' likewise
//   string := '...' or "..." on one line; escapes \\ \' \" \n \t \r, other backslashes kept
//   number := [+|-] digits [ '.' [digits] ] [ (e|E) [+|-] digits ] | [+|-] '.' digits [exponent]
//             (integer when it has neither '.' nor exponent; no leading zeros, no 0x, no '_')
//   name   := a bare dotted identifier such as torch.float16, kept as an opaque value so that a
//             printed config with 'compute_dtype' still parses (only allowed under ignored keys)
//   whitespace (spaces, tabs, newlines) and '#' comments to end of line anywhere between tokens.
// Keys understood (every other key is recorded in CacheSettings::ignored_keys for the caller to
// warn about, nested ones as "outer.inner"):
//   backend          required: 'QuantizedCacheVLM' or 'QuantizedCacheLM' (the authors' README uses
//                    both; no STP), or 'QuantizedCacheVLMSTP' (STP)
//   nbits            [key, value] or one number for both. key: 16 (fp16), 2 (2-bit per channel) or
//                    1 <= n < 2 (VidKV keys); value: 16, 2 or 1.58 (trits)
//   axis_key         -1 (per channel, default); anything else is an error for quantized keys
//   axis_value       -1 (per channel, default) or 0 (per token, KIVI; 2-bit values only)
//   q_group_size     int, default 32;   residual_length   int, default 128
//   vidkv_stp        with the STP backend: the protected ratio p (a number in (0, 1)), True or
//                    None (p = 0.2), or a dict {'ratio': p} (also 'p'); absent means p = 0.2.
//                    With the plain backend: absent, False or None; anything else is an error.
// Per-head policies (head_policy.hpp; all optional, absent means every head takes the preset):
//   head_policies    a list of policy names ('vidkv', 'full', 'window'), layer-major, or a list
//                    per layer of them (all of one length), flattened
//   head_scores      a score file's path (CSV or JSON, head_policy.hpp; relative to the working
//                    directory), read while parsing; not together with head_policies
//   sparsity         with head_scores: s in [0, 1), default 0 (no head takes low_policy)
//   low_policy       with head_scores: the policy below the s quantile, default 'window'
//   high_policy      with head_scores: the policy of the others, default 'full'
//   window_sink      with head_policies or head_scores: int >= 0, default 16
//   window_recent    likewise, default 64; window_sink + window_recent must be > 0
#include <cstdint>
#include <string>
#include <vector>

#include "vidkv/bit_accounting.hpp"
#include "vidkv/export.hpp"
#include "vidkv/head_policy.hpp"
#include "vidkv/quant_spec.hpp"
#include "vidkv/vidkv_keys.hpp"

namespace vidkv {

struct CacheSettings {
  enum class KeyMode { fp16, per_channel_2bit, vidkv };
  enum class ValueMode { fp16, per_channel_2bit, per_channel_ternary, per_token_2bit };

  // A preset's name; for parsed settings the preset they equal, else a name built from the
  // fields (e.g. "k1.25-v2", "k1.5-v1.58-g64"), so it never claims a preset it is not.
  std::string name;
  KeyMode key_mode = KeyMode::vidkv;
  // Used for key_mode vidkv; kept at its defaults otherwise. keys.group_size must equal
  // group_size (validate() checks), so one KeySpec can be handed to the key quantizers as is.
  KeySpec keys;
  ValueMode value_mode = ValueMode::per_channel_ternary;
  TernaryScale ternary = TernaryScale::lsq;  // quant_spec.hpp says why lsq
  bool trits_base3 = true;                   // trits 5 per byte (false: 2-bit fields)
  bool stp = false;                          // semantic token protection (ternary values only)
  double stp_ratio = 0.2;                    // p, in (0, 1); only read when stp
  uint32_t group_size = 32;                  // tokens per group (channels per group, per token)
  uint32_t residual_length = 128;            // newest tokens kept fp16, a multiple of group_size
  // Per-head policies (head_policy.hpp); uniform() by default: every head takes this preset.
  HeadPolicySpec head_policies;
  // Keys of a parsed dictionary that vidkv does not use (e.g. "compute_dtype"); not a setting.
  std::vector<std::string> ignored_keys;
};

VIDKV_API const char* key_mode_name(CacheSettings::KeyMode mode) noexcept;      // "fp16", "2bit", "vidkv"
VIDKV_API const char* value_mode_name(CacheSettings::ValueMode mode) noexcept;  // "fp16", "2bit", "1.58", "2bit-token"

// Throws vidkv::Error naming the bad value: unknown enum values; VidKV nbits not finite or
// outside [1, 2] (unsupported_bits); group_size 0, not a multiple of 32 or above 1024, or
// keys.group_size different from it (bad_group_size); residual_length 0 or not a multiple of
// group_size (bad_group_size); stp with values other than 1.58-bit, or stp_ratio outside (0, 1)
// (invalid_argument). Head policies (invalid_argument): window sink + recent of 0, unknown
// policies, both an explicit list and scores, a sparsity other than 0 without scores or outside
// [0, 1) with them, a score that is not finite; the checks that need the cache's geometry are
// resolve_head_policies()'s.
VIDKV_API void validate(const CacheSettings& settings);

// Same storage configuration: every field but name and ignored_keys (head policies compared by
// same_head_policies()).
VIDKV_API bool same_configuration(const CacheSettings& a, const CacheSettings& b);

VIDKV_API std::vector<std::string> preset_names();
// Throws Error(invalid_argument) naming `name` and listing the known presets.
VIDKV_API CacheSettings preset(const std::string& name);
// A preset name or a dictionary (text starting with '{' after whitespace); the result is
// validated. Malformed text: Error(invalid_argument) with the byte offset into `text`.
VIDKV_API CacheSettings parse_settings(const std::string& text);
// One line, e.g. "k1.5-v1.58: keys VidKV nbits 1.5 (head, fft half), values 1.58-bit trits (lsq),
// group 32, residual 128".
VIDKV_API std::string describe(const CacheSettings& settings);
// The name parsed settings get (see CacheSettings::name).
VIDKV_API std::string settings_name(const CacheSettings& settings);

// Bits of the quantized store for `shape` (tokens = quantized tokens, a multiple of group_size;
// the fp16 residual is apart). fp16: 16 bits per value, all "code" bytes. 2-bit keys: per channel
// with fp16 scale and min per group. kivi values: 2-bit per token with fp16 scale and min per
// (token, group of group_size channels), so dim must be a multiple of group_size. STP: the
// protected tokens are protected_count() (stp.hpp) of all tokens, all treated as visual.
VIDKV_API StorageBreakdown settings_key_storage(const CacheSettings& settings, const TensorShape& shape,
                                                StorageFormat format = StorageFormat::compact);
VIDKV_API StorageBreakdown settings_value_storage(const CacheSettings& settings, const TensorShape& shape,
                                                  StorageFormat format = StorageFormat::compact);

}  // namespace vidkv
