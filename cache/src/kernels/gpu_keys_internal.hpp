#pragma once
// Internal state and helpers of GpuKeyQuantizer, shared by its recording (gpu_keys_record.cpp) and
// host (gpu_keys.cpp) halves.
#include <algorithm>
#include <initializer_list>
#include <memory>
#include <vector>

#include "kernels/gpu_common.hpp"
#include "vidkv/gpu_keys.hpp"
#include "vidkv/runtime/commands.hpp"

namespace vidkv::keys_detail {

struct ShapePush {
  uint32_t heads, tokens, dim, head_stride, token_stride;
};
// Elements one key_gather invocation splits and channel pairs one key_scatter invocation writes
// (RUN in each shader).
constexpr uint64_t kKeyGatherRun = 8;
constexpr uint64_t kKeyScatterRun = 4;
constexpr uint64_t kKeyStreamsRun = 8;  // stream values per key_streams.comp invocation (its RUN)
struct GatherPush {
  uint32_t heads, tokens, dim, head_stride, token_stride, k, normal_row_stride;
};
struct StreamPush {
  uint32_t heads, tokens, n, streams, spectrum_row_stride;
};
struct ScatterPush {
  uint32_t heads, tokens, dim, head_stride, token_stride, k, normal_row_stride;
  float normal_scale;
};

// The pipelines of the quantize path, shared by record_quantize and prepare_quantize_pipelines.
inline rt::PipelineDesc range_pipeline(ChannelScope scope) {
  return gpu::pipeline("channel_range", {scope == ChannelScope::layer ? 1u : 0u, 0u}, 2, sizeof(ShapePush));
}
inline rt::PipelineDesc select_pipeline() {
  rt::PipelineDesc desc = gpu::pipeline("channel_select", {}, 3, 2 * sizeof(uint32_t));  // dim, k
  desc.specialization.clear();  // fixed local size of 256: one invocation per channel
  return desc;
}
inline rt::PipelineDesc roles_pipeline() {
  return gpu::pipeline("channel_roles", {}, 2, 3 * sizeof(uint32_t));  // units, dim, k
}
inline rt::PipelineDesc gather_pipeline(ChannelScope scope) {
  return gpu::pipeline("key_gather", {scope == ChannelScope::layer ? 1u : 0u, 0u}, 4, sizeof(GatherPush));
}
inline rt::PipelineDesc streams_pipeline(FftLayout fft) {
  return gpu::pipeline("key_streams", {fft == FftLayout::full ? 1u : 0u}, 2, sizeof(StreamPush));
}

// Buffers are never empty (k = 0 or k = dim leaves one part without data, but its binding stays).
inline uint64_t at_least(uint64_t bytes) { return std::max<uint64_t>(bytes, 16); }
inline uint32_t units_of(ChannelScope scope, uint32_t heads) { return scope == ChannelScope::layer ? 1 : heads; }
inline QuantSpec anomalous_spec(const KeySpec& s) { return {QuantBits::b2, QuantAxis::channel, s.group_size}; }
inline QuantSpec stream_spec(const KeySpec& s) { return {QuantBits::b1, QuantAxis::channel, s.group_size}; }

template <typename T>
std::vector<T> download(const rt::Buffer& buffer, size_t count) {
  std::vector<T> out(count);
  if (count) buffer.download(out.data(), count * sizeof(T));
  return out;
}

// The channel table [units][dim] (anomalous then normal, each increasing) from per-head splits,
// after checking that each is an increasing partition of the channels into k and dim - k.
std::vector<uint32_t> table_from_splits(const std::vector<ChannelSplit>& splits, ChannelScope scope, uint32_t heads,
                                        uint32_t dim, uint32_t k);
std::vector<ChannelSplit> splits_from_table(const std::vector<uint32_t>& table, uint32_t heads, uint32_t units,
                                            uint32_t dim, uint32_t k);

}  // namespace vidkv::keys_detail

namespace vidkv {

struct KeyWorkspace::Buffers {
  KeySpec spec;
  uint32_t heads = 0, dim = 0;
  std::unique_ptr<rt::Buffer> ranges, roles, anomalous, rows, spectrum, streams;
};

struct GpuKeyQuantizer::Impl {
  std::shared_ptr<rt::Context> ctx;
  rt::PipelineSet pipelines;
  rt::CommandRunner runner;
  rt::FftPlanCache ffts;
  GpuQuantizer grouped;
  uint8_t poison = 0xff;

  explicit Impl(std::shared_ptr<rt::Context> c) : ctx(c), pipelines(c), runner(c), ffts(c), grouped(c) {}

  // Poisons buffers a run is about to write (see set_poison).
  void poison_all(std::initializer_list<const rt::Buffer*> buffers) {
    for (const rt::Buffer* b : buffers) const_cast<rt::Buffer*>(b)->fill(poison);
  }
  void record_ranges(VkCommandBuffer cmd, const TensorShape& shape, const TensorLayout& layout, ChannelScope scope,
                     const rt::BufferView& input, const rt::BufferView& ranges);
  void record_select(VkCommandBuffer cmd, uint32_t units, uint32_t dim, uint32_t k, const rt::BufferView& ranges,
                     const rt::BufferView& roles, const rt::BufferView& table);
  std::unique_ptr<rt::Buffer> upload_input(const TensorShape& shape, const std::vector<uint16_t>& input,
                                           const TensorLayout& layout);
};

}  // namespace vidkv
