#pragma once
// Argument checks shared by vidkv::Cache's synchronous and recording entry points. Each throws
// vidkv::Error naming the bad value and touches nothing.
#include <string>

#include "sequence_cache/cache_internal.hpp"

namespace vidkv::cache_checks {

Error bad(const std::string& message);
void geometry(const CacheGeometry& g);
// What the cache cannot store, beyond validate(settings).
void settings(const CacheSettings& s, const CacheGeometry& g);
void size(const char* what, size_t have, uint64_t want);
std::string where(uint32_t sequence, uint32_t layer, const char* op);

void prefill_state(const Cache::Impl& m, const cache_detail::Layer& l, uint32_t sequence, uint32_t layer,
                   uint32_t tokens);
void append_state(const Cache::Impl& m, const cache_detail::Layer& l, uint32_t sequence, uint32_t layer);
void attention_state(const Cache::Impl& m, const cache_detail::Layer& l, uint32_t sequence, uint32_t layer,
                     float scale);

// A device view of at least `bytes` at an offset the device can bind.
void view(const Cache::Impl& m, const rt::BufferView& view, uint64_t bytes, const std::string& what,
          const char* unit_text);
// Input of `tokens` tokens [tokens][kv_heads][head_dim] of `type` (f16; f32 only for a prefill).
void input_views(const Cache::Impl& m, const rt::BufferView& keys, const rt::BufferView& values, ElementType type,
                 uint32_t tokens, const char* op);
void query_views(const Cache::Impl& m, const rt::BufferView& q, const rt::BufferView& out);
// Outputs of `tokens` fp16 tokens.
void output_views(const Cache::Impl& m, const rt::BufferView& keys, const rt::BufferView& values, uint32_t tokens,
                  const char* op);

}  // namespace vidkv::cache_checks
