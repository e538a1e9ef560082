#pragma once
// Per-head cache policies (RLKV, arXiv 2510.08525): each (layer, KV head) of a cache keeps its
// tokens in one of three ways.
//   vidkv   the cache's preset (its quantized segments and fp16 residual; for the fp16 preset, fp16)
//   full    fp16, every token
//   window  fp16, only the first `sink` tokens and the newest `recent` ones (a ring): memory is
//           (sink + recent) tokens however long the sequence grows
// A layer may mix them; the attention runs one pass per policy present in the layer (not one per
// head) and each query head reads its own KV head's tokens only.
//
// Where the policies come from (HeadPolicySpec, part of CacheSettings, so the configuration text
// can carry it too):
//   - nothing: every head takes `vidkv` (a plain cache);
//   - an explicit list, layer-major [layers][kv_heads];
//   - head scores (a CSV file "layer,head,score" with an optional header line; JSON: a list of
//     {"layer": l, "head": h, "score": s} objects, or a list per layer of one score per head; or
//     the plain matrix RLKV (adapter_weights.tsv) and DuoAttention (full_attention_heads.tsv)
//     publish: one line per layer, one tab-separated score per KV head, no header) and
//     a sparsity s in [0, 1): the heads whose score lies below the s quantile of all scores (all
//     layers together, as RLKV ranks them) take `low` (default window), the others `high`
//     (default full). Exactly floor(s x layers x kv_heads) heads take `low`: the lowest scores,
//     ties broken towards the lower (layer, head).
// resolve_head_policies() checks the spec against the cache's geometry: a list of the wrong
// length, a score for a layer or head the geometry does not have, a head scored twice or not at
// all, a score that is not finite, s outside [0, 1), sink + recent of zero: Error(invalid_argument)
// naming the problem.
#include <cstdint>
#include <string>
#include <vector>

#include "vidkv/export.hpp"

namespace vidkv {

enum class HeadPolicy : uint8_t { vidkv = 0, full = 1, window = 2 };

VIDKV_API const char* head_policy_name(HeadPolicy policy) noexcept;  // "vidkv", "full", "window"
// Throws Error(invalid_argument) naming `name` and the known policies.
VIDKV_API HeadPolicy parse_head_policy(const std::string& name);

struct HeadScore {
  uint32_t layer = 0;
  uint32_t head = 0;
  double score = 0.0;
};

struct HeadPolicySpec {
  std::vector<HeadPolicy> heads;  // explicit, [layers][kv_heads]; used when not empty
  std::vector<HeadScore> scores;  // else, when not empty: assignment by sparsity
  double sparsity = 0.0;
  HeadPolicy low = HeadPolicy::window;  // heads below the sparsity quantile
  HeadPolicy high = HeadPolicy::full;   // the others
  uint32_t sink = 16;                   // window policy
  uint32_t recent = 64;
  // Where `scores` were read from (for messages and describe()); not part of the configuration.
  std::string score_source;

  // No explicit list and no scores: every head takes vidkv.
  bool uniform() const { return heads.empty() && scores.empty(); }
};

// Same configuration (score_source ignored).
VIDKV_API bool same_head_policies(const HeadPolicySpec& a, const HeadPolicySpec& b);

// The policy of every (layer, head), layer-major; see the top of this file for the checks.
VIDKV_API std::vector<HeadPolicy> resolve_head_policies(const HeadPolicySpec& spec, uint32_t layers,
                                                        uint32_t kv_heads);

// Reads a head-score file: CSV ("layer,head,score" lines; an optional first line naming the
// columns; blank lines and '#' comments skipped) when the name ends in .csv, JSON when it ends
// in .json, a matrix (line l holds layer l's scores, one per KV head, separated by tabs or
// spaces; every line the same count; blank lines and '#' comments skipped) when it ends in .tsv;
// else by its content: '[' or '{' first is JSON, a first data line without a comma a matrix.
// A matrix of another shape than the cache is refused when the cache resolves it, naming both.
// Throws Error(io_error) when it cannot be read, Error(invalid_argument) naming the line (and for JSON the field) of
// malformed content, negative or non-integer layer/head, or a score that is not a finite number
// (Python's NaN/Infinity in JSON included), and when the file holds no score at all (which would
// silently mean "no per-head policies"). JSON objects may carry other keys; they are ignored.
VIDKV_API std::vector<HeadScore> read_head_scores(const std::string& path);
// The same from text already in memory; `name` decides the format as above and names it in errors.
VIDKV_API std::vector<HeadScore> parse_head_scores(const std::string& text, const std::string& name);

}  // namespace vidkv
