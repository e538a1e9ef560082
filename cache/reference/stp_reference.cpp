// Semantic token protection, CPU reference (see stp.hpp for the exact fp32 semantics). This file
// is compiled with -ffp-contract=off (cache/CMakeLists.txt) and keeps every product in a volatile
// float, so no multiply-add is fused and the scores equal the shaders' bit for bit.
#include "vidkv/stp.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "vidkv/error.hpp"

namespace vidkv {
namespace {

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void check_group(uint32_t group_size) {
  if (group_size == 0) throw Error(ErrorCode::bad_group_size, "group_size is 0");
}

// Checks a split of `total` tokens: in range, increasing, disjoint, complete, multiples of G.
void check_split(const TokenSplit& s, uint32_t total, uint32_t group_size) {
  check_group(group_size);
  std::vector<bool> seen(total, false);
  for (const auto* list : {&s.protected_tokens, &s.other_tokens}) {
    for (size_t i = 0; i < list->size(); ++i) {
      const uint32_t t = (*list)[i];
      if (t >= total || seen[t] || (i > 0 && (*list)[i - 1] >= t)) {
        throw Error(ErrorCode::invalid_argument, "token " + std::to_string(t) +
                                                     " of the split is out of range (tokens " + std::to_string(total) +
                                                     "), repeated or out of increasing order");
      }
      seen[t] = true;
    }
  }
  if (s.protected_tokens.size() + s.other_tokens.size() != total) {
    throw Error(ErrorCode::invalid_argument,
                "split covers " + std::to_string(s.protected_tokens.size() + s.other_tokens.size()) + " of " +
                    std::to_string(total) + " tokens");
  }
  if (s.protected_tokens.size() % group_size != 0 || s.other_tokens.size() % group_size != 0) {
    throw Error(ErrorCode::bad_group_size, "protected tokens " + std::to_string(s.protected_tokens.size()) +
                                               " and other tokens " + std::to_string(s.other_tokens.size()) + " (of " + std::to_string(total) + ")" +
                                               " must both be multiples of group_size " + std::to_string(group_size));
  }
}

// The listed tokens of every head, gathered into [heads][list][dim] and quantized per channel.
QuantizedTensor quantize_tokens(const QuantSpec& spec, const std::vector<uint32_t>& tokens, const TensorShape& shape,
                                const uint16_t* input, const TensorLayout& layout) {
  const TensorShape gs{shape.heads, uint32_t(tokens.size()), shape.dim};
  if (tokens.empty()) {
    QuantizedTensor q;
    q.spec = spec;
    q.shape = gs;  // tokens 0: an empty part, no codes, scales or mins
    return q;
  }
  std::vector<uint16_t> x(gs.elements());
  for (uint32_t h = 0; h < gs.heads; ++h)
    for (uint32_t j = 0; j < gs.tokens; ++j)
      for (uint32_t d = 0; d < gs.dim; ++d)
        x[(size_t(h) * gs.tokens + j) * gs.dim + d] = input[h * layout.head_stride + tokens[j] * layout.token_stride + d];
  return reference::quantize(spec, gs, x.data(), TensorLayout::htd(gs));
}

void scatter(const QuantizedTensor& q, const std::vector<uint32_t>& tokens, const TensorLayout& layout,
             std::vector<uint16_t>& out) {
  if (tokens.empty()) return;
  if (q.shape.tokens != tokens.size()) {
    throw Error(ErrorCode::invalid_argument, "quantized part holds " + std::to_string(q.shape.tokens) +
                                                 " tokens, the split " + std::to_string(tokens.size()));
  }
  const std::vector<uint16_t> y = reference::dequantize(q, TensorLayout::htd(q.shape));
  for (uint32_t h = 0; h < q.shape.heads; ++h)
    for (uint32_t j = 0; j < q.shape.tokens; ++j)
      for (uint32_t d = 0; d < q.shape.dim; ++d)
        out[h * layout.head_stride + tokens[j] * layout.token_stride + d] = y[(size_t(h) * q.shape.tokens + j) * q.shape.dim + d];
}

}  // namespace

uint32_t protected_count(const StpSpec& spec, uint32_t visual_tokens) {
  if (!(spec.ratio > 0.0 && spec.ratio < 1.0)) {
    throw Error(ErrorCode::invalid_argument, "STP ratio p = " + num(spec.ratio) + " is not in (0, 1)");
  }
  check_group(spec.group_size);
  const double groups = std::round(spec.ratio * double(visual_tokens) / double(spec.group_size));
  return uint32_t(groups) * spec.group_size;
}

namespace reference {

std::vector<float> stp_scores(const std::vector<float>& visual, const std::vector<float>& text, uint32_t hidden) {
  if (hidden == 0) throw Error(ErrorCode::invalid_argument, "embedding size hidden is 0");
  if (visual.empty() || visual.size() % hidden != 0) {
    throw Error(ErrorCode::invalid_argument, "visual embeddings hold " + std::to_string(visual.size()) +
                                                 " floats, not a positive multiple of hidden " + std::to_string(hidden));
  }
  if (text.empty() || text.size() % hidden != 0) {
    throw Error(ErrorCode::invalid_argument, "text embeddings hold " + std::to_string(text.size()) +
                                                 " floats, not a positive multiple of hidden " + std::to_string(hidden));
  }
  const size_t n = visual.size() / hidden, m = text.size() / hidden;
  std::vector<float> text_sum(hidden, 0.0f);
  for (size_t j = 0; j < m; ++j)
    for (uint32_t h = 0; h < hidden; ++h) text_sum[h] += text[j * hidden + h];
  const float inv_m = 1.0f / float(m);
  std::vector<float> scores(n);
  for (size_t i = 0; i < n; ++i) {
    float sum = 0.0f;
    for (uint32_t h = 0; h < hidden; ++h) {
      volatile float product = visual[i * hidden + h] * text_sum[h];  // rounded before the add
      sum += product;
    }
    scores[i] = sum * inv_m;
  }
  return scores;
}

TokenSplit stp_select(const StpSpec& spec, const std::vector<float>& scores, uint32_t total_tokens) {
  const uint32_t n = protected_count(spec, uint32_t(scores.size()));
  if (uint64_t(spec.first_visual) + scores.size() > total_tokens) {
    throw Error(ErrorCode::invalid_argument, "visual tokens [" + std::to_string(spec.first_visual) + ", " +
                                                 std::to_string(uint64_t(spec.first_visual) + scores.size()) +
                                                 ") run past total_tokens " + std::to_string(total_tokens));
  }
  for (size_t i = 0; i < scores.size(); ++i) {
    if (std::isnan(scores[i])) throw Error(ErrorCode::invalid_argument, "score " + std::to_string(i) + " is NaN");
  }
  std::vector<uint32_t> order(scores.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return scores[a] > scores[b]; });
  std::vector<uint32_t> chosen(order.begin(), order.begin() + n);
  for (uint32_t& t : chosen) t += spec.first_visual;
  std::sort(chosen.begin(), chosen.end());
  return split_from_list(chosen, total_tokens, spec.group_size);
}

TokenSplit split_from_list(const std::vector<uint32_t>& protected_tokens, uint32_t total_tokens,
                           uint32_t group_size) {
  check_group(group_size);
  std::vector<bool> is_protected(total_tokens, false);
  for (uint32_t t : protected_tokens) {
    if (t >= total_tokens) {
      throw Error(ErrorCode::invalid_argument, "protected token " + std::to_string(t) +
                                                   " is out of range (tokens " + std::to_string(total_tokens) + ")");
    }
    if (is_protected[t]) throw Error(ErrorCode::invalid_argument, "protected token " + std::to_string(t) + " is repeated");
    is_protected[t] = true;
  }
  TokenSplit s;
  for (uint32_t t = 0; t < total_tokens; ++t) (is_protected[t] ? s.protected_tokens : s.other_tokens).push_back(t);
  check_split(s, total_tokens, group_size);
  return s;
}

StpQuantizedValues quantize_values_stp(const TokenSplit& split, uint32_t group_size, TernaryScale ternary,
                                       const TensorShape& shape, const uint16_t* input, const TensorLayout& layout) {
  check_group(group_size);
  if (input == nullptr) throw Error(ErrorCode::invalid_argument, "input is null");
  // Zero sizes, group size and odd dim, on the whole layer (tokens: a multiple of the group since
  // both parts are).
  check_split(split, shape.tokens, group_size);
  validate(QuantSpec{QuantBits::b2, QuantAxis::channel, group_size, TernaryScale::mean_abs}, shape);
  StpQuantizedValues q;
  q.shape = shape;
  q.split = split;
  q.high = quantize_tokens(QuantSpec{QuantBits::b2, QuantAxis::channel, group_size, TernaryScale::mean_abs},
                           split.protected_tokens, shape, input, layout);
  q.low = quantize_tokens(QuantSpec{QuantBits::b1_58, QuantAxis::channel, group_size, ternary}, split.other_tokens,
                          shape, input, layout);
  return q;
}

std::vector<uint16_t> dequantize_values_stp(const StpQuantizedValues& q, const TensorLayout& layout) {
  check_split(q.split, q.shape.tokens, std::max<uint32_t>(1, q.high.spec.group_size));
  std::vector<uint16_t> out(layout.span(q.shape), 0);
  scatter(q.high, q.split.protected_tokens, layout, out);
  scatter(q.low, q.split.other_tokens, layout, out);
  return out;
}

}  // namespace reference
}  // namespace vidkv
