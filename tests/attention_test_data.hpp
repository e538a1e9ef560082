#pragma once
// Inputs shared by the attention tests: K/V halves [tokens][kv_heads][dim] with outlier key
// channels, a query whose scores have a standard deviation of about 2 per query head (softmax
// neither flat nor one-hot), the error measure (per query head max_c |out - ref| / max_c |ref|, the
// worst head), and keys of a token range quantized as a prefill or a later block does.
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "common/attention_checks.hpp"
#include "common/random_data.hpp"
#include "vidkv/attention_reference.hpp"
#include "vidkv/fp16.hpp"
#include "vidkv/ternary_pack.hpp"

namespace vidkv::test {

// The tools library's generators and error measure (tools/common/attention_checks.hpp), which
// vidkv-conformance uses too, so the tests and the conformance tool judge attention alike.
using KvData = tools::RandomKv;
using tools::attention_error;
using tools::random_kv;
using tools::realistic_query;
using tools::token_slice;

// Keys of tokens [from, from + count) quantized with the given channel split (empty: chosen from
// these tokens, as a prefill does; later blocks reuse the prefill's).
inline QuantizedKeys quantize_key_slice(const KvData& kv, uint32_t from, uint32_t count, uint32_t heads, uint32_t dim,
                                        const KeySpec& spec, const std::vector<ChannelSplit>& splits) {
  const TensorShape shape{heads, count, dim};
  const TensorLayout thd = TensorLayout::thd(shape);
  const auto k = token_slice(kv.keys, from, count, heads, dim);
  if (splits.empty()) return reference::quantize_keys(spec, shape, k.data(), thd);
  const auto coefficients = reference::key_coefficients(spec, shape, k.data(), thd, splits);
  return reference::quantize_keys_with(spec, shape, k.data(), thd, splits, coefficients);
}

}  // namespace vidkv::test
