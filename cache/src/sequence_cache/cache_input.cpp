// What vidkv::Cache does to its input before quantizing it: fp32 input is rounded to fp16 on the
// device (exactly as vidkv::f32_to_f16 on the host, so an fp32 prefill equals the fp16 prefill of
// the rounded values), and every input is scanned for NaN and Inf.
//
// Why reject non-finite input: one Inf in a group makes its scale Inf and every other value of the
// group NaN after decoding, and a NaN key poisons the whole softmax of every later step; a cache
// that accepted it would fail far from the cause. A synchronous call therefore rejects the input,
// naming the first bad position, and changes nothing. A recorded call cannot look at its data (it
// has not run yet): it counts non-finite values on the device instead, reported by
// Cache::stats().nonfinite_inputs, and what those groups decode to is unspecified.
#include <algorithm>
#include <string>

#include "sequence_cache/cache_internal.hpp"
#include "kernels/gpu_common.hpp"

namespace vidkv {

using cache_detail::CheckResult;

namespace {

rt::BufferView head(const rt::BufferView& v, uint64_t bytes) { return {v.buffer, v.offset, bytes}; }

const CheckResult kEmptyCheck{};

}  // namespace

void Cache::Impl::ensure_convert_scratch() {
  if (scratch.convert_keys) return;
  const uint64_t bytes = uint64_t(max_tokens) * token_bytes();
  auto k = std::make_unique<rt::Buffer>(ctx, bytes);
  auto v = std::make_unique<rt::Buffer>(ctx, bytes);
  scratch.convert_keys = std::move(k);
  scratch.convert_values = std::move(v);
}

std::pair<rt::BufferView, rt::BufferView> Cache::Impl::record_convert(VkCommandBuffer cmd, const rt::BufferView& k,
                                                                      const rt::BufferView& v, ElementType type,
                                                                      uint64_t halves) {
  if (type == ElementType::f16) return {head(k, halves * 2), head(v, halves * 2)};
  const uint32_t words = uint32_t(halves / 2);
  const auto& pipeline = pipelines.get(gpu::pipeline("convert_f32_f16", {}, 2, sizeof(words)));
  const rt::BufferView kout = scratch.convert_keys->view(0, halves * 2), vout = scratch.convert_values->view(0, halves * 2);
  const rt::BufferView kviews[] = {head(k, halves * 4), kout};
  const rt::BufferView vviews[] = {head(v, halves * 4), vout};
  pipeline.dispatch(cmd, kviews, &words, rt::grid_workgroups(words, gpu::kWorkgroupSize));
  pipeline.dispatch(cmd, vviews, &words, rt::grid_workgroups(words, gpu::kWorkgroupSize));
  // The converted halves are read by shaders and copied into the residual.
  rt::compute_to_compute_barrier(cmd);
  return {kout, vout};
}

void Cache::Impl::record_scan(VkCommandBuffer cmd, const rt::BufferView& k, const rt::BufferView& v, uint64_t halves,
                              const rt::BufferView& check) {
  // A token inside the residual may start at an offset the device cannot bind a storage buffer at
  // (minStorageBufferOffsetAlignment): bind from the aligned offset below and skip the words
  // between.
  const uint64_t align = std::max<uint64_t>(ctx->info().min_storage_buffer_offset_alignment, 4);
  const auto& pipeline = pipelines.get(gpu::pipeline("scan_nonfinite", {}, 2, 4 * sizeof(uint32_t)));
  uint32_t slot = 0;
  for (const rt::BufferView* input : {&k, &v}) {
    const uint64_t start = input->offset / align * align;
    const uint32_t push[4] = {uint32_t(halves / 2), 0u, slot++, uint32_t((input->offset - start) / 4)};
    const rt::BufferView views[] = {{input->buffer, start, input->offset - start + halves * 2}, check};
    pipeline.dispatch(cmd, views, push, rt::grid_workgroups(push[0], gpu::kWorkgroupSize));
  }
}

rt::BufferView Cache::Impl::begin_check() {
  if (!scratch.check) scratch.check = std::make_unique<rt::Buffer>(ctx, sizeof(CheckResult));
  scratch.check->upload(&kEmptyCheck, sizeof(CheckResult));
  return scratch.check->view();
}

void Cache::Impl::finish_check(const std::string& what, uint32_t first_token) const {
  CheckResult r;
  scratch.check->download(&r, sizeof(r));
  if (r.key_count == 0 && r.value_count == 0) return;
  const bool in_keys = r.key_count > 0;
  const uint32_t e = in_keys ? r.first_key : r.first_value;
  const uint64_t row = token_halves();
  const uint32_t D = geometry.head_dim;
  throw Error(ErrorCode::invalid_argument,
              what + ": " + std::to_string(r.key_count + r.value_count) + " NaN/Inf value(s) (after rounding to fp16); first in " +
                  (in_keys ? "keys" : "values") + " at token " + std::to_string(first_token + e / row) + ", head " +
                  std::to_string((e % row) / D) + ", channel " + std::to_string(e % D) +
                  "; the cache is unchanged");
}

rt::BufferView Cache::Impl::recorded_check() {
  if (!scratch.recorded_check) {
    auto b = std::make_unique<rt::Buffer>(ctx, sizeof(CheckResult));
    b->upload(&kEmptyCheck, sizeof(CheckResult));
    scratch.recorded_check = std::move(b);
  }
  return scratch.recorded_check->view();
}

uint64_t Cache::Impl::recorded_nonfinite() const {
  if (!scratch.recorded_check) return 0;
  CheckResult r;
  scratch.recorded_check->download(&r, sizeof(r));
  return uint64_t(r.key_count) + r.value_count;
}

}  // namespace vidkv
