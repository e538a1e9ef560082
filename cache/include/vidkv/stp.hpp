#pragma once
// Semantic token protection (DESIGN section 2): visual tokens whose embeddings are most similar to
// the prompt keep 2-bit values; the rest take 1.58-bit. Keys are unaffected.
// Exact definitions shared by the reference and the shaders (so both select the same tokens):
//   text_sum[h] = sum over j of t_j[h], j increasing, in fp32 (inputs fp16 or fp32, as fp32)
//   score_i     = (sum over h of v_i[h] * text_sum[h], h increasing, fp32, no fused multiply-add)
//                 * (1.0f / M)       -- mean_j (v_i . t_j) up to fp32 rounding
//   protected   = the n = round(p * N / group_size) * group_size visual tokens of highest score,
//                 ties to the lower index; token positions are offset by the first visual token.
// The values of a layer are then split by token: protected tokens (increasing position) form one
// tensor quantized per channel at 2 bits, the others (increasing position) one at 1.58 bits; groups
// run along each gathered token axis, so both counts must be multiples of group_size.
#include <cstdint>
#include <vector>

#include "vidkv/export.hpp"
#include "vidkv/reference.hpp"

namespace vidkv {

struct StpSpec {
  double ratio = 0.2;           // p, in (0, 1)
  uint32_t group_size = 32;
  uint32_t first_visual = 0;    // position of the first visual token in the sequence
};

struct TokenSplit {
  std::vector<uint32_t> protected_tokens;  // increasing sequence positions, 2-bit values
  std::vector<uint32_t> other_tokens;      // increasing sequence positions, 1.58-bit values
};

struct StpQuantizedValues {
  TensorShape shape;  // of the whole layer: heads x tokens x dim
  TokenSplit split;
  QuantizedTensor high;  // 2-bit per channel over protected_tokens
  QuantizedTensor low;   // 1.58-bit per channel over other_tokens
};

// n = round(p * visual / group_size) * group_size; throws Error(invalid_argument) naming p unless
// 0 < p < 1.
VIDKV_API uint32_t protected_count(const StpSpec& spec, uint32_t visual_tokens);

namespace reference {
// visual [N][hidden], text [M][hidden], fp32 (convert fp16 first). Throws on empty or mismatched
// sizes, naming them.
VIDKV_API std::vector<float> stp_scores(const std::vector<float>& visual, const std::vector<float>& text,
                                        uint32_t hidden);
// Top tokens of `scores` as sequence positions (offset by first_visual), split against
// total_tokens; throws when the counts are not multiples of group_size.
VIDKV_API TokenSplit stp_select(const StpSpec& spec, const std::vector<float>& scores, uint32_t total_tokens);
// An explicit list instead: validated (in range, no repeats, a multiple of group_size).
VIDKV_API TokenSplit split_from_list(const std::vector<uint32_t>& protected_tokens, uint32_t total_tokens,
                                     uint32_t group_size);
VIDKV_API StpQuantizedValues quantize_values_stp(const TokenSplit& split, uint32_t group_size,
                                                 TernaryScale ternary, const TensorShape& shape,
                                                 const uint16_t* input, const TensorLayout& layout);
VIDKV_API std::vector<uint16_t> dequantize_values_stp(const StpQuantizedValues& q, const TensorLayout& layout);
}  // namespace reference
}  // namespace vidkv
