// Cases of vidkv-attention-bench --policies (policy_cases.hpp).
#include "policy_cases.hpp"

#include <cstdio>

#include "vidkv/presets.hpp"

namespace vidkv::tools {

namespace {

// "2v+2w" style label of a per-head policy list.
std::string label(const std::vector<HeadPolicy>& heads) {
  uint32_t n[3] = {0, 0, 0};
  for (HeadPolicy p : heads) ++n[size_t(p)];
  std::string s;
  const char* letter = "vfw";
  for (int i = 0; i < 3; ++i) {
    if (n[i] == 0) continue;
    if (!s.empty()) s += "+";
    s += std::to_string(n[i]) + letter[i];
  }
  return s;
}

}  // namespace

std::vector<PolicyCase> make_policy_cases(const std::shared_ptr<rt::Context>& ctx, const PolicyCaseInput& in,
                                          std::vector<std::unique_ptr<Cache>>& holder) {
  const uint32_t H = in.kv_heads;
  using P = HeadPolicy;
  // Uniform; half the heads compressed and half windowed (RLKV with VidKV on the heads that
  // matter); RLKV's own split (full + window); one of each policy.
  std::vector<std::vector<HeadPolicy>> lists{{}};
  std::vector<HeadPolicy> vw(H, P::window), fw(H, P::window), all3(H, P::window);
  for (uint32_t h = 0; h < H / 2; ++h) vw[h] = P::vidkv, fw[h] = P::full;
  lists.push_back(vw);
  lists.push_back(fw);
  if (H >= 3) {
    all3[0] = P::vidkv;
    all3[1] = P::full;
    lists.push_back(all3);
  }
  std::vector<PolicyCase> cases;
  for (const auto& heads : lists) {
    CacheSettings s = preset("k1.5-v1.58");
    s.head_policies.heads = heads;
    auto cache = std::make_unique<Cache>(ctx, CacheGeometry{1, H, in.q_heads, in.dim}, s, in.tokens);
    const uint32_t seq = cache->create_sequence();
    std::fprintf(stderr, "prefilling %u tokens for cache %s...\n", in.tokens, heads.empty() ? "k1.5-v1.58" : label(heads).c_str());
    cache->prefill(seq, 0, in.keys, in.values, ElementType::f16, in.tokens);
    const CacheStats st = cache->stats();
    const uint64_t head_row = uint64_t(in.dim) * 2 * 2;  // one token of one head, K and V
    PolicyCase c;
    c.name = heads.empty() ? "cache k1.5-v1.58" : "cache " + label(heads);
    c.bytes = st.keys.total() + st.values.total() + st.residual_bytes +
              (st.policies[size_t(P::full)].tokens + st.policies[size_t(P::window)].tokens) * head_row;
    Cache* raw = cache.get();
    c.record = [raw, seq, in](VkCommandBuffer cmd) { raw->record_attention(cmd, seq, 0, in.q, in.out); };
    holder.push_back(std::move(cache));
    cases.push_back(std::move(c));
  }
  return cases;
}

}  // namespace vidkv::tools
