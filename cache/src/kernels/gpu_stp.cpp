// GpuStp: scores and selection (shaders/stp_text_sum, stp_score, stp_sort, stp_split). The token
// split quantization is in gpu_stp_values.cpp.
#include "vidkv/gpu_stp.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <string>

#include "kernels/gpu_stp_internal.hpp"
#include "shader_registry.hpp"

namespace vidkv {

namespace {

using stp_detail::require_addressable;
using stp_detail::require_view;
using stp_detail::word_bytes;

constexpr uint32_t kWorkgroupSize = 64;  // scores: one invocation per channel or token

struct TextSumPush {
  uint32_t text_tokens, hidden;
};
struct ScorePush {
  uint32_t visual_tokens, hidden;
  float inv_m;
};
struct SortPush {
  uint32_t visual_tokens, k, j;
};
struct SplitPush {
  uint32_t total_tokens, first_visual, visual_tokens, protected_count;
};

rt::PipelineDesc desc(const char* name, std::vector<uint32_t> specialization, uint32_t buffers, uint32_t push) {
  const ShaderCode* code = shaders::find(name);
  if (code == nullptr) throw Error(ErrorCode::invalid_argument, std::string("no embedded shader ") + name);
  rt::PipelineDesc d;
  d.shader = code;
  d.specialization = std::move(specialization);
  d.buffer_count = buffers;
  d.push_constant_bytes = push;
  return d;
}

// Sorted entries: the next power of two >= N, and at least one whole chunk.
uint64_t sort_entries(uint32_t visual_tokens, uint32_t chunk) {
  return std::max<uint64_t>(std::bit_ceil(uint64_t(visual_tokens)), chunk);
}

void check_sizes(uint32_t visual_tokens, uint32_t text_tokens, uint32_t hidden) {
  if (hidden == 0) throw Error(ErrorCode::invalid_argument, "STP hidden size is 0");
  if (visual_tokens == 0) throw Error(ErrorCode::invalid_argument, "STP needs visual tokens; N = 0");
  if (text_tokens == 0) throw Error(ErrorCode::invalid_argument, "STP needs text tokens; M = 0");
  require_addressable(uint64_t(visual_tokens) * hidden, "visual embeddings");
  require_addressable(uint64_t(text_tokens) * hidden, "text embeddings");
}

}  // namespace

GpuStp::GpuStp(std::shared_ptr<rt::Context> context)
    : context_(context), pipelines_(context), runner_(context), quantizer_(context) {
  // Largest power of two up to 256 that the device runs in one workgroup and whose chunk of
  // 2 x size (key, index) pairs fits in shared memory. Vulkan guarantees 128 invocations, 16 KiB.
  const auto& info = context_->info();
  uint32_t size = 256;
  while (size > 1 && (size > info.max_workgroup_invocations || size > info.max_workgroup_size[0] ||
                      uint64_t(size) * 2 * 8 > info.max_shared_memory)) {
    size /= 2;
  }
  sort_workgroup_ = size;
}

GpuStp::~GpuStp() = default;

void GpuStp::scores(const rt::BufferView& visual, ElementType visual_type, uint32_t visual_tokens,
                    const rt::BufferView& text, ElementType text_type, uint32_t text_tokens, uint32_t hidden,
                    const rt::BufferView& scores) {
  check_sizes(visual_tokens, text_tokens, hidden);
  require_view(*context_, visual, word_bytes(uint64_t(visual_tokens) * hidden, element_bytes(visual_type)), "visual");
  require_view(*context_, text, word_bytes(uint64_t(text_tokens) * hidden, element_bytes(text_type)), "text");
  require_view(*context_, scores, uint64_t(visual_tokens) * 4, "scores");
  const auto& sum_pipeline = pipelines_.get(
      desc("stp_text_sum", {kWorkgroupSize, text_type == ElementType::f32 ? 1u : 0u}, 2, sizeof(TextSumPush)));
  const auto& score_pipeline = pipelines_.get(
      desc("stp_score", {kWorkgroupSize, visual_type == ElementType::f32 ? 1u : 0u}, 3, sizeof(ScorePush)));
  rt::Buffer text_sum(context_, uint64_t(hidden) * 4);
  // 1.0f / M exactly as the reference computes it (one fp32 division, on the host).
  const ScorePush score_push{visual_tokens, hidden, 1.0f / float(text_tokens)};
  const TextSumPush sum_push{text_tokens, hidden};
  runner_.run([&](VkCommandBuffer cmd) {
    const rt::BufferView sum_buffers[] = {text, text_sum.view()};
    sum_pipeline.dispatch(cmd, sum_buffers, &sum_push, rt::workgroups_for(hidden, kWorkgroupSize));
    rt::compute_to_compute_barrier(cmd);
    const rt::BufferView score_buffers[] = {visual, text_sum.view(), scores};
    score_pipeline.dispatch(cmd, score_buffers, &score_push, rt::workgroups_for(visual_tokens, kWorkgroupSize));
  });
}

uint32_t GpuStp::select_dispatch_count(uint32_t visual_tokens) const {
  const uint32_t chunk = 2 * sort_workgroup_;
  const uint64_t entries = sort_entries(visual_tokens, chunk);
  uint32_t count = 2;  // the chunk sort and the split
  for (uint64_t k = 2ull * chunk; k <= entries; k <<= 1) {
    for (uint64_t j = k / 2; j >= chunk; j >>= 1) ++count;  // global steps
    ++count;                                                // the shared-memory tail of stage k
  }
  return count;
}

uint32_t GpuStp::select(const StpSpec& spec, const rt::BufferView& scores, uint32_t visual_tokens,
                        uint32_t total_tokens, const rt::BufferView& protected_tokens,
                        const rt::BufferView& other_tokens) {
  // throws naming p unless 0 < p < 1, then on group_size 0, as the reference
  const uint32_t n = protected_count(spec, visual_tokens);
  if (uint64_t(spec.first_visual) + visual_tokens > total_tokens) {
    throw Error(ErrorCode::invalid_argument, "visual tokens " + std::to_string(spec.first_visual) + " .. " +
                                                 std::to_string(uint64_t(spec.first_visual) + visual_tokens - 1) +
                                                 " do not fit in total_tokens = " + std::to_string(total_tokens));
  }
  const uint32_t others = total_tokens - n;
  if (others % spec.group_size != 0) {
    throw Error(ErrorCode::bad_group_size,
                "STP leaves " + std::to_string(others) +
                    " unprotected tokens, not a multiple of group_size = " + std::to_string(spec.group_size));
  }
  if (visual_tokens > 0) require_view(*context_, scores, uint64_t(visual_tokens) * 4, "scores");
  if (n > 0) require_view(*context_, protected_tokens, uint64_t(n) * 4, "protected_tokens");
  if (others > 0) require_view(*context_, other_tokens, uint64_t(others) * 4, "other_tokens");

  const uint32_t chunk = 2 * sort_workgroup_;
  const uint64_t entries = sort_entries(visual_tokens, chunk);
  const uint32_t groups = uint32_t(entries / chunk);
  auto sort_pipeline = [&](uint32_t mode) -> const rt::ComputePipeline& {
    return pipelines_.get(desc("stp_sort", {sort_workgroup_, chunk, mode}, 2, sizeof(SortPush)));
  };
  const auto& local_sort = sort_pipeline(0);
  const auto& global_step = sort_pipeline(1);
  const auto& local_merge = sort_pipeline(2);
  const auto& split = pipelines_.get(desc("stp_split", {sort_workgroup_}, 4, sizeof(SplitPush)));
  rt::Buffer pairs(context_, entries * 8);
  // An empty list (or N = 0 scores, which the reference accepts: every token is then "other") is
  // never read or written; its binding only needs some valid buffer.
  const rt::BufferView score_view = visual_tokens > 0 ? scores : pairs.view();
  const rt::BufferView protected_view = n > 0 ? protected_tokens : pairs.view();
  const rt::BufferView other_view = others > 0 ? other_tokens : pairs.view();
  runner_.run([&](VkCommandBuffer cmd) {
    const rt::BufferView sort_buffers[] = {score_view, pairs.view()};
    SortPush push{visual_tokens, 0, 0};
    if (visual_tokens > 0) {
      local_sort.dispatch(cmd, sort_buffers, &push, groups);
      rt::compute_to_compute_barrier(cmd);
    }
    for (uint64_t k = 2ull * chunk; k <= entries && visual_tokens > 0; k <<= 1) {
      push.k = uint32_t(k);
      for (uint64_t j = k / 2; j >= chunk; j >>= 1) {
        push.j = uint32_t(j);
        global_step.dispatch(cmd, sort_buffers, &push, groups);
        rt::compute_to_compute_barrier(cmd);
      }
      local_merge.dispatch(cmd, sort_buffers, &push, groups);
      rt::compute_to_compute_barrier(cmd);
    }
    const SplitPush split_push{total_tokens, spec.first_visual, visual_tokens, n};
    const rt::BufferView split_buffers[] = {score_view, pairs.view(), protected_view, other_view};
    split.dispatch(cmd, split_buffers, &split_push, 1);
  });
  return n;
}

std::vector<float> GpuStp::scores_host_bytes(const void* visual, uint64_t visual_elements, const void* text,
                                             uint64_t text_elements, ElementType type, uint32_t hidden) {
  if (hidden == 0) throw Error(ErrorCode::invalid_argument, "STP hidden size is 0");
  if (visual_elements == 0 || text_elements == 0) {
    throw Error(ErrorCode::invalid_argument, "STP embeddings are empty: visual holds " +
                                                 std::to_string(visual_elements) + " values, text " +
                                                 std::to_string(text_elements));
  }
  if (visual_elements % hidden != 0 || text_elements % hidden != 0) {
    throw Error(ErrorCode::invalid_argument,
                "STP embeddings of " + std::to_string(visual_elements) + " (visual) and " +
                    std::to_string(text_elements) +
                    " (text) values are not whole rows of hidden = " + std::to_string(hidden));
  }
  require_addressable(visual_elements, "visual embeddings");
  require_addressable(text_elements, "text embeddings");
  const uint32_t n = uint32_t(visual_elements / hidden), m = uint32_t(text_elements / hidden);
  const uint32_t bytes = element_bytes(type);
  rt::Buffer visual_buffer(context_, word_bytes(visual_elements, bytes));
  rt::Buffer text_buffer(context_, word_bytes(text_elements, bytes));
  rt::Buffer score_buffer(context_, uint64_t(n) * 4);
  visual_buffer.upload(visual, visual_elements * bytes);
  text_buffer.upload(text, text_elements * bytes);
  scores(visual_buffer.view(), type, n, text_buffer.view(), type, m, hidden, score_buffer.view());
  std::vector<float> result(n);
  score_buffer.download(result.data(), uint64_t(n) * 4);
  return result;
}

std::vector<float> GpuStp::scores_host(const std::vector<float>& visual, const std::vector<float>& text,
                                       uint32_t hidden) {
  return scores_host_bytes(visual.data(), visual.size(), text.data(), text.size(), ElementType::f32, hidden);
}

std::vector<float> GpuStp::scores_host(const std::vector<uint16_t>& visual, const std::vector<uint16_t>& text,
                                       uint32_t hidden) {
  return scores_host_bytes(visual.data(), visual.size(), text.data(), text.size(), ElementType::f16, hidden);
}

TokenSplit GpuStp::select_host(const StpSpec& spec, const std::vector<float>& scores, uint32_t total_tokens) {
  require_addressable(scores.size(), "scores");
  const uint32_t visual_tokens = uint32_t(scores.size());
  const uint32_t n = protected_count(spec, visual_tokens);
  for (size_t i = 0; i < scores.size(); ++i) {
    // The device sort orders finite keys only; the host can still say which score is bad.
    if (std::isnan(scores[i])) {
      throw Error(ErrorCode::invalid_argument, "STP score " + std::to_string(i) + " is NaN");
    }
  }
  const uint32_t others = total_tokens >= n ? total_tokens - n : 0;
  rt::Buffer score_buffer(context_, std::max<uint64_t>(uint64_t(visual_tokens) * 4, 4));
  rt::Buffer protected_buffer(context_, std::max<uint64_t>(uint64_t(n) * 4, 4));
  rt::Buffer other_buffer(context_, std::max<uint64_t>(uint64_t(others) * 4, 4));
  if (visual_tokens > 0) score_buffer.upload(scores.data(), uint64_t(visual_tokens) * 4);
  select(spec, score_buffer.view(), visual_tokens, total_tokens, protected_buffer.view(), other_buffer.view());
  TokenSplit split;
  split.protected_tokens.resize(n);
  split.other_tokens.resize(others);
  if (n > 0) protected_buffer.download(split.protected_tokens.data(), uint64_t(n) * 4);
  if (others > 0) other_buffer.download(split.other_tokens.data(), uint64_t(others) * 4);
  return split;
}

}  // namespace vidkv
