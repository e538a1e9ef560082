// GpuKeyQuantizer's device path: the whole key quantization recorded into one command buffer on
// device buffers (the cache runtime's path), and the recording helpers the host path shares.
#include <string>

#include "kernels/gpu_keys_internal.hpp"

namespace vidkv {

using namespace keys_detail;

KeyWorkspace::KeyWorkspace(std::shared_ptr<rt::Context> context, const KeySpec& spec, uint32_t heads, uint32_t dim,
                           uint32_t max_tokens)
    : buffers_(std::make_unique<Buffers>()), max_tokens_(max_tokens) {
  validate(spec, {heads, spec.group_size, dim});
  if (max_tokens == 0) throw Error(ErrorCode::invalid_argument, "KeyWorkspace needs max_tokens > 0");
  const uint32_t k = anomalous_channel_count(spec, dim), n = dim - k, s = coefficient_streams(spec.fft, n);
  const uint64_t units = units_of(spec.scope, heads), tokens = uint64_t(max_tokens) * heads;
  auto make = [&](uint64_t bytes) { return std::make_unique<rt::Buffer>(context, at_least(bytes)); };
  Buffers& b = *buffers_;
  b.spec = spec;
  b.heads = heads;
  b.dim = dim;
  b.ranges = make(units * dim * 4);
  b.roles = make(units * dim * 4);
  b.anomalous = make(tokens * k * 4);
  b.rows = make((tokens * n * 4 + 7) / 8 * 8);  // VkFFT's real side in whole complex values
  b.spectrum = make(tokens * (n / 2 + 1) * 8);
  b.streams = make(tokens * s * 4);
}

KeyWorkspace::~KeyWorkspace() = default;

uint64_t GpuKeyQuantizer::channel_table_bytes(const KeySpec& spec, uint32_t heads, uint32_t dim) {
  return uint64_t(units_of(spec.scope, heads)) * dim * 4;
}

void GpuKeyQuantizer::Impl::record_ranges(VkCommandBuffer cmd, const TensorShape& shape, const TensorLayout& layout,
                                          ChannelScope scope, const rt::BufferView& input,
                                          const rt::BufferView& ranges) {
  const ShapePush pc{shape.heads, shape.tokens, shape.dim, uint32_t(layout.head_stride), uint32_t(layout.token_stride)};
  const auto& p = pipelines.get(range_pipeline(scope));
  const rt::BufferView views[] = {input, ranges};
  p.dispatch(cmd, views, &pc,
             rt::workgroups_for(uint64_t(units_of(scope, shape.heads)) * shape.dim, gpu::kWorkgroupSize));
}

void GpuKeyQuantizer::Impl::record_select(VkCommandBuffer cmd, uint32_t units, uint32_t dim, uint32_t k,
                                          const rt::BufferView& ranges, const rt::BufferView& roles,
                                          const rt::BufferView& table) {
  const uint32_t pc[2] = {dim, k};
  const rt::BufferView views[] = {ranges, roles, table};
  pipelines.get(select_pipeline()).dispatch(cmd, views, pc, units);
}

static void require_view(const rt::BufferView& view, uint64_t bytes, const std::string& what) {
  if (view.buffer == VK_NULL_HANDLE || view.size < bytes) {
    throw Error(ErrorCode::buffer_too_small, what + " buffer holds " + std::to_string(view.size) + " bytes; " +
                                                 std::to_string(bytes) + " are needed");
  }
}

std::vector<rt::PreparedPipeline> GpuKeyQuantizer::prepare_quantize_pipelines(const KeySpec& spec, uint32_t dim,
                                                                              bool select) {
  validate(spec, {1, spec.group_size, dim});
  Impl& m = *impl_;
  const uint32_t k = anomalous_channel_count(spec, dim), S = coefficient_streams(spec.fft, dim - k);
  std::vector<rt::PreparedPipeline> out;
  if (select) {
    out.push_back(m.pipelines.prepare("channel_range", range_pipeline(spec.scope)));
    out.push_back(m.pipelines.prepare("channel_select", select_pipeline()));
  } else {
    out.push_back(m.pipelines.prepare("channel_roles", roles_pipeline()));
  }
  out.push_back(m.pipelines.prepare("key_gather", gather_pipeline(spec.scope)));
  auto add_grouped = [&](const QuantSpec& q) {
    for (auto& p : m.grouped.prepare_quantize_pipelines(q, ElementType::f32, false)) out.push_back(std::move(p));
  };
  if (S > 0) {
    out.push_back(m.pipelines.prepare("key_streams", streams_pipeline(spec.fft)));
    add_grouped(stream_spec(spec));
  }
  if (k > 0) add_grouped(anomalous_spec(spec));
  return out;
}

void GpuKeyQuantizer::record_quantize(VkCommandBuffer cmd, const KeySpec& spec, const TensorShape& shape,
                                      const TensorLayout& layout, const rt::BufferView& input, bool select,
                                      const rt::BufferView& channels, KeyWorkspace& workspace,
                                      const KeyPackedBuffers& output) {
  // --- every check first: nothing is recorded when one fails ---
  validate(spec, shape);
  Impl& m = *impl_;
  KeyWorkspace::Buffers& w = *workspace.buffers_;
  const uint32_t H = shape.heads, T = shape.tokens, D = shape.dim;
  if (D > 256) throw Error(ErrorCode::invalid_argument, "key dim " + std::to_string(D) + " exceeds 256");
  if (H > w.heads || w.dim != D || w.spec.nbits != spec.nbits || w.spec.fft != spec.fft ||
      w.spec.scope != spec.scope || w.spec.group_size != spec.group_size) {
    throw Error(ErrorCode::invalid_argument, "the KeyWorkspace was made for another key spec, dim or fewer heads");
  }
  if (T > workspace.max_tokens()) {
    throw Error(ErrorCode::invalid_argument, std::to_string(T) + " tokens exceed the workspace's " +
                                                 std::to_string(workspace.max_tokens()));
  }
  const uint32_t k = anomalous_channel_count(spec, D), N = D - k, S = coefficient_streams(spec.fft, N);
  const uint32_t units = units_of(spec.scope, H);
  require_view(input, (layout.span(shape) * 2 + 3) / 4 * 4, "keys");
  require_view(channels, channel_table_bytes(spec, H, D), "channel table");
  const TensorShape a_shape{H, T, k}, s_shape{H, T, S};
  if (k > 0) {
    const PackedBytes b = packed_bytes(anomalous_spec(spec), a_shape);
    require_view(output.anomalous.codes, b.codes, "anomalous codes");
    require_view(output.anomalous.scales, b.scales, "anomalous scales");
    require_view(output.anomalous.mins, b.mins, "anomalous mins");
  }
  if (S > 0) {
    const PackedBytes b = packed_bytes(stream_spec(spec), s_shape);
    require_view(output.normal.codes, b.codes, "stream codes");
    require_view(output.normal.scales, b.scales, "stream scales");
    require_view(output.normal.mins, b.mins, "stream mins");
  }
  const rt::FftPlan* forward = N > 0 ? &m.ffts.get(N, H * T, false) : nullptr;

  // --- recording ---
  if (select) {
    m.record_ranges(cmd, shape, layout, spec.scope, input, w.ranges->view());
    rt::compute_to_compute_barrier(cmd);
    m.record_select(cmd, units, D, k, w.ranges->view(), w.roles->view(), channels);
  } else {
    const uint32_t pc[3] = {units, D, k};
    const rt::BufferView views[] = {channels, w.roles->view()};
    m.pipelines.get(roles_pipeline())
        .dispatch(cmd, views, pc, rt::workgroups_for(uint64_t(units) * D, gpu::kWorkgroupSize));
  }
  rt::compute_to_compute_barrier(cmd);
  const GatherPush gp{H, T, D, uint32_t(layout.head_stride), uint32_t(layout.token_stride), k, N};
  const rt::BufferView gviews[] = {input, w.roles->view(), w.anomalous->view(), w.rows->view()};
  m.pipelines.get(gather_pipeline(spec.scope))
      .dispatch(cmd, gviews, &gp, rt::grid_workgroups((uint64_t(H) * T * D + kKeyGatherRun - 1) / kKeyGatherRun, gpu::kWorkgroupSize));
  rt::compute_to_compute_barrier(cmd);
  if (forward) {
    forward->record(cmd, w.rows->view(), w.spectrum->view());
    rt::compute_to_compute_barrier(cmd);
    const StreamPush sp{H, T, N, S, N / 2 + 1};
    const rt::BufferView sviews[] = {w.spectrum->view(), w.streams->view()};
    m.pipelines.get(streams_pipeline(spec.fft))
        .dispatch(cmd, sviews, &sp, rt::grid_workgroups((uint64_t(H) * T * S + kKeyStreamsRun - 1) / kKeyStreamsRun, gpu::kWorkgroupSize));
    rt::compute_to_compute_barrier(cmd);
    m.grouped.record_quantize(cmd, stream_spec(spec), s_shape, TensorLayout::thd(s_shape), ElementType::f32,
                              w.streams->view(), output.normal);
  }
  if (k > 0) {
    m.grouped.record_quantize(cmd, anomalous_spec(spec), a_shape, TensorLayout::thd(a_shape), ElementType::f32,
                              w.anomalous->view(), output.anomalous);
  }
}

void GpuKeyQuantizer::record_dequantize(VkCommandBuffer cmd, const KeySpec& spec, const TensorShape& shape,
                                        const KeyPackedBuffers& input, const rt::BufferView& channels,
                                        KeyWorkspace& workspace, const TensorLayout& layout,
                                        const rt::BufferView& output) {
  // --- every check first: nothing is recorded when one fails ---
  validate(spec, shape);
  Impl& m = *impl_;
  KeyWorkspace::Buffers& w = *workspace.buffers_;
  const uint32_t H = shape.heads, T = shape.tokens, D = shape.dim;
  if (H > w.heads || w.dim != D || w.spec.nbits != spec.nbits || w.spec.fft != spec.fft ||
      w.spec.scope != spec.scope || w.spec.group_size != spec.group_size) {
    throw Error(ErrorCode::invalid_argument, "the KeyWorkspace was made for another key spec, dim or fewer heads");
  }
  if (T > workspace.max_tokens()) {
    throw Error(ErrorCode::invalid_argument, std::to_string(T) + " tokens exceed the workspace's " +
                                                 std::to_string(workspace.max_tokens()));
  }
  if (D % 2 != 0 || layout.head_stride % 2 != 0 || layout.token_stride % 2 != 0) {
    throw Error(ErrorCode::invalid_argument, "fp16 keys are written two channels per word: dim and strides must be even");
  }
  const uint32_t k = anomalous_channel_count(spec, D), N = D - k, S = coefficient_streams(spec.fft, N);
  const uint32_t units = units_of(spec.scope, H);
  require_view(output, (layout.span(shape) * 2 + 3) / 4 * 4, "decoded keys");
  require_view(channels, channel_table_bytes(spec, H, D), "channel table");
  const TensorShape a_shape{H, T, k}, s_shape{H, T, S};
  const rt::FftPlan* inverse = N > 0 ? &m.ffts.get(N, H * T, true) : nullptr;

  // --- recording ---
  const uint32_t rp[3] = {units, D, k};
  const rt::BufferView rviews[] = {channels, w.roles->view()};
  m.pipelines.get(gpu::pipeline("channel_roles", {}, 2, sizeof(rp)))
      .dispatch(cmd, rviews, rp, rt::workgroups_for(uint64_t(units) * D, gpu::kWorkgroupSize));
  if (k > 0) {
    m.grouped.record_dequantize(cmd, anomalous_spec(spec), a_shape, input.anomalous, TensorLayout::thd(a_shape),
                                ElementType::f32, w.anomalous->view());
  }
  if (inverse) {
    m.grouped.record_dequantize(cmd, stream_spec(spec), s_shape, input.normal, TensorLayout::thd(s_shape),
                                ElementType::f32, w.streams->view());
    rt::compute_to_compute_barrier(cmd);
    const StreamPush sp{H, T, N, S, N / 2 + 1};
    const rt::BufferView sviews[] = {w.streams->view(), w.spectrum->view()};
    m.pipelines.get(gpu::pipeline("key_spectrum", {spec.fft == FftLayout::full ? 1u : 0u}, 2, sizeof(sp)))
        .dispatch(cmd, sviews, &sp, rt::grid_workgroups(uint64_t(H) * T * (N / 2 + 1), gpu::kWorkgroupSize));
    rt::compute_to_compute_barrier(cmd);
    inverse->record(cmd, w.spectrum->view(), w.rows->view());
  }
  rt::compute_to_compute_barrier(cmd);
  const ScatterPush pc{H, T, D, uint32_t(layout.head_stride), uint32_t(layout.token_stride), k, N,
                       N > 0 ? 1.0f / float(N) : 0.0f};
  const rt::BufferView views[] = {w.roles->view(), w.anomalous->view(), w.rows->view(), output};
  m.pipelines.get(gpu::pipeline("key_scatter", {spec.scope == ChannelScope::layer ? 1u : 0u, 0u}, 4, sizeof(pc)))
      .dispatch(cmd, views, &pc, rt::grid_workgroups((uint64_t(H) * T * (D / 2) + kKeyScatterRun - 1) / kKeyScatterRun, gpu::kWorkgroupSize));
}

}  // namespace vidkv
