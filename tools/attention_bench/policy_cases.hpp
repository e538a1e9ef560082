#pragma once
// vidkv-attention-bench --policies: decode attention through vidkv::Cache on layers whose KV heads
// take per-head policies (head_policy.hpp), beside a uniform k1.5-v1.58 cache, so the cost of a
// mixed layer's per-policy passes (gathering query rows, one pass per policy, scattering output
// rows) can be read against the work each pass does.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "vidkv/cache.hpp"

namespace vidkv::tools {

struct PolicyCase {
  std::string name;
  uint64_t bytes = 0;  // bytes the attention reads: packed store, fp16 residual, full and window heads
  std::function<void(VkCommandBuffer)> record;
};

struct PolicyCaseInput {
  uint32_t tokens = 0, kv_heads = 0, q_heads = 0, dim = 0;
  rt::BufferView keys, values;  // fp16 [tokens][kv_heads][dim], finite
  rt::BufferView q, out;        // fp32 [q_heads][dim]
};

// One cache per case ("cache k1.5-v1.58", then mixed layers such as "cache 2v+2w": 2 vidkv and 2
// window heads), each prefilled with `input`; the caches live as long as the returned holder.
std::vector<PolicyCase> make_policy_cases(const std::shared_ptr<rt::Context>& ctx, const PolicyCaseInput& input,
                                          std::vector<std::unique_ptr<Cache>>& holder);

}  // namespace vidkv::tools
