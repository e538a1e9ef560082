#include "vidkv/gpu_keys.hpp"

#include <algorithm>
#include <cstring>

#include "gpu_common.hpp"
#include "gpu_packed_io.hpp"
#include "vidkv/fp16.hpp"
#include "vidkv/runtime/commands.hpp"

namespace vidkv {

namespace {

struct ShapePush {
  uint32_t heads, tokens, dim, head_stride, token_stride;
};
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

// Buffers are never empty (k = 0 or k = dim leaves one part without data, but its binding stays).
uint64_t at_least(uint64_t bytes) { return std::max<uint64_t>(bytes, 16); }

uint32_t units_of(ChannelScope scope, uint32_t heads) { return scope == ChannelScope::layer ? 1 : heads; }

template <typename T>
std::vector<T> download(const rt::Buffer& buffer, size_t count) {
  std::vector<T> out(count);
  if (count) buffer.download(out.data(), count * sizeof(T));
  return out;
}

}  // namespace

struct GpuKeyQuantizer::Impl {
  std::shared_ptr<rt::Context> ctx;
  rt::PipelineSet pipelines;
  rt::CommandRunner runner;
  rt::FftPlanCache ffts;
  GpuQuantizer grouped;
  uint8_t poison = 0xff;

  // Poisons buffers the run is about to write (see set_poison).
  void poison_all(std::initializer_list<rt::Buffer*> buffers) {
    for (rt::Buffer* b : buffers) b->fill(poison);
  }

  explicit Impl(std::shared_ptr<rt::Context> c) : ctx(c), pipelines(c), runner(c), ffts(c), grouped(c) {}

  // ranges [units][dim] (one half per word) from the input on the device.
  void record_ranges(VkCommandBuffer cmd, const TensorShape& shape, const TensorLayout& layout, ChannelScope scope,
                     const rt::Buffer& input, const rt::Buffer& ranges) {
    const ShapePush pc{shape.heads, shape.tokens, shape.dim, uint32_t(layout.head_stride),
                       uint32_t(layout.token_stride)};
    const auto& p = pipelines.get(gpu::pipeline("channel_range", {scope == ChannelScope::layer ? 1u : 0u, 0u}, 2,
                                                sizeof(pc)));
    const rt::BufferView views[] = {input.view(), ranges.view()};
    p.dispatch(cmd, views, &pc, rt::workgroups_for(uint64_t(units_of(scope, shape.heads)) * shape.dim,
                                                   gpu::kWorkgroupSize));
  }

  std::unique_ptr<rt::Buffer> upload_input(const TensorShape& shape, const std::vector<uint16_t>& input,
                                           const TensorLayout& layout) {
    if (input.size() < layout.span(shape)) {
      throw Error(ErrorCode::buffer_too_small, "keys hold " + std::to_string(input.size()) +
                                                   " halves; the layout spans " + std::to_string(layout.span(shape)));
    }
    auto buffer = std::make_unique<rt::Buffer>(ctx, at_least((input.size() * 2 + 3) / 4 * 4));
    buffer->upload(input.data(), input.size() * 2);
    return buffer;
  }
};

GpuKeyQuantizer::GpuKeyQuantizer(std::shared_ptr<rt::Context> context) : impl_(std::make_unique<Impl>(context)) {}
GpuKeyQuantizer::~GpuKeyQuantizer() = default;

void GpuKeyQuantizer::set_poison(uint8_t byte_value) { impl_->poison = byte_value; }

std::vector<uint16_t> GpuKeyQuantizer::ranges_host(const TensorShape& shape, const std::vector<uint16_t>& input,
                                                   const TensorLayout& layout, ChannelScope scope) {
  validate(QuantSpec{QuantBits::b2, QuantAxis::channel, 32}, {shape.heads, 32, shape.dim});
  if (shape.tokens == 0) throw Error(ErrorCode::invalid_argument, "tokens must be positive");
  auto in = impl_->upload_input(shape, input, layout);
  const uint32_t units = units_of(scope, shape.heads);
  rt::Buffer ranges(impl_->ctx, at_least(uint64_t(units) * shape.dim * 4));
  impl_->poison_all({&ranges});
  impl_->runner.run([&](VkCommandBuffer cmd) { impl_->record_ranges(cmd, shape, layout, scope, *in, ranges); });
  const auto words = download<uint32_t>(ranges, size_t(units) * shape.dim);
  return std::vector<uint16_t>(words.begin(), words.end());
}

std::vector<ChannelSplit> GpuKeyQuantizer::select_host(const std::vector<uint16_t>& ranges, uint32_t dim,
                                                       uint32_t heads, ChannelScope scope, uint32_t k) {
  const uint32_t units = units_of(scope, heads);
  if (dim == 0 || dim > 256 || k > dim || ranges.size() != size_t(units) * dim) {
    throw Error(ErrorCode::invalid_argument, "select: " + std::to_string(ranges.size()) + " ranges for " +
                                                 std::to_string(units) + " units of dim " + std::to_string(dim) +
                                                 " (at most 256), k " + std::to_string(k));
  }
  Impl& m = *impl_;
  const std::vector<uint32_t> words(ranges.begin(), ranges.end());
  rt::Buffer in(m.ctx, at_least(words.size() * 4)), roles(m.ctx, at_least(words.size() * 4));
  rt::Buffer alist(m.ctx, at_least(uint64_t(units) * k * 4)), nlist(m.ctx, at_least(uint64_t(units) * (dim - k) * 4));
  m.poison_all({&roles, &alist, &nlist});
  in.upload(words.data(), words.size() * 4);
  m.runner.run([&](VkCommandBuffer cmd) {
    const uint32_t pc[2] = {dim, k};
    rt::PipelineDesc desc = gpu::pipeline("channel_select", {}, 4, sizeof(pc));
    desc.specialization.clear();
    const rt::BufferView views[] = {in.view(), roles.view(), alist.view(), nlist.view()};
    m.pipelines.get(desc).dispatch(cmd, views, pc, units);
  });
  const auto a = download<uint32_t>(alist, size_t(units) * k);
  const auto n = download<uint32_t>(nlist, size_t(units) * (dim - k));
  std::vector<ChannelSplit> splits;
  for (uint32_t h = 0; h < heads; ++h) {
    const size_t u = units == 1 ? 0 : h;
    splits.push_back({std::vector<uint32_t>(a.begin() + u * k, a.begin() + (u + 1) * k),
                      std::vector<uint32_t>(n.begin() + u * (dim - k), n.begin() + (u + 1) * (dim - k))});
  }
  return splits;
}

QuantizedKeys GpuKeyQuantizer::quantize_host(const KeySpec& spec, const TensorShape& shape,
                                             const std::vector<uint16_t>& input, const TensorLayout& layout) {
  return quantize_host_with(spec, shape, input, layout, {});
}

namespace {

// Roles [units][dim] (anomalous bit | position) and the two lists from per-head splits; checks
// that each split is a partition of the channels into k anomalous and dim - k normal, increasing.
std::vector<uint32_t> roles_from_splits(const std::vector<ChannelSplit>& splits, ChannelScope scope,
                                        uint32_t heads, uint32_t dim, uint32_t k) {
  if (splits.size() != heads) {
    throw Error(ErrorCode::invalid_argument, "expected one channel split per head (" + std::to_string(heads) +
                                                 "), got " + std::to_string(splits.size()));
  }
  const uint32_t units = units_of(scope, heads);
  std::vector<uint32_t> roles(size_t(units) * dim, UINT32_MAX);
  for (uint32_t h = 0; h < heads; ++h) {
    const ChannelSplit& s = splits[h];
    if (s.anomalous.size() != k || s.normal.size() != dim - k) {
      throw Error(ErrorCode::invalid_argument, "channel split of head " + std::to_string(h) + " has " +
                                                   std::to_string(s.anomalous.size()) + " anomalous channels; " +
                                                   std::to_string(k) + " expected");
    }
    if (scope == ChannelScope::layer && h > 0 &&
        (s.anomalous != splits[0].anomalous || s.normal != splits[0].normal)) {
      throw Error(ErrorCode::invalid_argument, "channel scope layer needs the same split for every head");
    }
    if (h >= units) continue;
    for (size_t list = 0; list < 2; ++list) {
      const auto& channels = list == 0 ? s.anomalous : s.normal;
      for (size_t i = 0; i < channels.size(); ++i) {
        const uint32_t c = channels[i];
        if (c >= dim || (i > 0 && channels[i - 1] >= c) || roles[size_t(h) * dim + c] != UINT32_MAX) {
          throw Error(ErrorCode::invalid_argument, "channel split of head " + std::to_string(h) +
                                                       " is not an increasing partition of the channels");
        }
        roles[size_t(h) * dim + c] = (list == 0 ? 0x80000000u : 0u) | uint32_t(i);
      }
    }
  }
  return roles;
}

QuantSpec anomalous_spec(const KeySpec& s) { return {QuantBits::b2, QuantAxis::channel, s.group_size}; }
QuantSpec stream_spec(const KeySpec& s) { return {QuantBits::b1, QuantAxis::channel, s.group_size}; }

}  // namespace

QuantizedKeys GpuKeyQuantizer::quantize_host_with(const KeySpec& spec, const TensorShape& shape,
                                                  const std::vector<uint16_t>& input, const TensorLayout& layout,
                                                  const std::vector<ChannelSplit>& given) {
  validate(spec, shape);
  if (shape.dim > 256) {
    // channel_select ranks the channels of a unit in one workgroup of 256 invocations
    throw Error(ErrorCode::invalid_argument, "key dim " + std::to_string(shape.dim) + " exceeds 256");
  }
  Impl& m = *impl_;
  const uint32_t H = shape.heads, T = shape.tokens, D = shape.dim;
  const uint32_t k = anomalous_channel_count(spec, D), N = D - k, S = coefficient_streams(spec.fft, N);
  const uint32_t units = units_of(spec.scope, H);
  std::vector<uint32_t> given_roles;
  if (!given.empty()) given_roles = roles_from_splits(given, spec.scope, H, D, k);
  auto in = m.upload_input(shape, input, layout);

  auto ctx = m.ctx;
  rt::Buffer ranges(ctx, at_least(uint64_t(units) * D * 4)), roles(ctx, at_least(uint64_t(units) * D * 4));
  rt::Buffer alist(ctx, at_least(uint64_t(units) * k * 4)), nlist(ctx, at_least(uint64_t(units) * N * 4));
  rt::Buffer anomalous(ctx, at_least(uint64_t(T) * H * k * 4)), streams(ctx, at_least(uint64_t(T) * H * S * 4));
  const rt::FftPlan* forward = N > 0 ? &m.ffts.get(N, H * T, false) : nullptr;
  rt::Buffer rows(ctx, forward ? forward->real_bytes() : 16), spectrum(ctx, forward ? forward->complex_bytes() : 16);
  const TensorShape a_shape{H, T, k}, s_shape{H, T, S};
  const gpu::DevicePacked a_packed = gpu::allocate_packed(ctx, anomalous_spec(spec), a_shape);
  const gpu::DevicePacked s_packed = gpu::allocate_packed(ctx, stream_spec(spec), s_shape);
  m.poison_all({&ranges, &roles, &alist, &nlist, &anomalous, &streams, &rows, &spectrum});
  a_packed.fill(m.poison);
  s_packed.fill(m.poison);
  if (!given_roles.empty()) roles.upload(given_roles.data(), given_roles.size() * 4);

  const uint32_t scope_layer = spec.scope == ChannelScope::layer ? 1u : 0u;
  m.runner.run([&](VkCommandBuffer cmd) {
    m.record_ranges(cmd, shape, layout, spec.scope, *in, ranges);
    rt::compute_to_compute_barrier(cmd);
    if (given_roles.empty()) {
      const uint32_t pc[2] = {D, k};
      rt::PipelineDesc desc = gpu::pipeline("channel_select", {}, 4, sizeof(pc));
      desc.specialization.clear();  // fixed local size of 256 (one invocation per channel)
      const rt::BufferView views[] = {ranges.view(), roles.view(), alist.view(), nlist.view()};
      m.pipelines.get(desc).dispatch(cmd, views, pc, units);
      rt::compute_to_compute_barrier(cmd);
    }
    const GatherPush gp{H, T, D, uint32_t(layout.head_stride), uint32_t(layout.token_stride), k, N};
    const rt::BufferView gviews[] = {in->view(), roles.view(), anomalous.view(), rows.view()};
    m.pipelines.get(gpu::pipeline("key_gather", {scope_layer, 0u}, 4, sizeof(gp)))
        .dispatch(cmd, gviews, &gp, rt::workgroups_for(uint64_t(H) * T * D, gpu::kWorkgroupSize));
    rt::compute_to_compute_barrier(cmd);
    if (forward) {
      forward->record(cmd, rows.view(), spectrum.view());
      rt::compute_to_compute_barrier(cmd);
      const StreamPush sp{H, T, N, S, N / 2 + 1};
      const rt::BufferView sviews[] = {spectrum.view(), streams.view()};
      m.pipelines.get(gpu::pipeline("key_streams", {spec.fft == FftLayout::full ? 1u : 0u}, 2, sizeof(sp)))
          .dispatch(cmd, sviews, &sp, rt::workgroups_for(uint64_t(H) * T * S, gpu::kWorkgroupSize));
      rt::compute_to_compute_barrier(cmd);
      m.grouped.record_quantize(cmd, stream_spec(spec), s_shape, TensorLayout::thd(s_shape), ElementType::f32,
                                streams.view(), s_packed.views());
    }
    if (k > 0) {
      m.grouped.record_quantize(cmd, anomalous_spec(spec), a_shape, TensorLayout::thd(a_shape), ElementType::f32,
                                anomalous.view(), a_packed.views());
    }
  });

  QuantizedKeys q;
  q.spec = spec;
  q.shape = shape;
  const auto range_words = download<uint32_t>(ranges, size_t(units) * D);
  q.ranges.assign(range_words.begin(), range_words.end());
  if (!given.empty()) {
    q.splits = given;
  } else {
    const auto a = download<uint32_t>(alist, size_t(units) * k);
    const auto n = download<uint32_t>(nlist, size_t(units) * N);
    for (uint32_t h = 0; h < H; ++h) {
      const uint32_t u = units == 1 ? 0 : h;
      q.splits.push_back({std::vector<uint32_t>(a.begin() + size_t(u) * k, a.begin() + size_t(u + 1) * k),
                          std::vector<uint32_t>(n.begin() + size_t(u) * N, n.begin() + size_t(u + 1) * N)});
    }
  }
  q.anomalous = gpu::download_packed(anomalous_spec(spec), a_shape, a_packed);
  q.normal = gpu::download_packed(stream_spec(spec), s_shape, s_packed);
  // The quantizer's input: each fp32 coefficient rounded to half, reordered to [heads][tokens][streams].
  const auto coeffs = download<float>(streams, size_t(T) * H * S);
  q.coefficients.resize(coeffs.size());
  for (uint32_t t = 0; t < T; ++t)
    for (uint32_t h = 0; h < H; ++h)
      for (uint32_t s = 0; s < S; ++s)
        q.coefficients[(size_t(h) * T + t) * S + s] = fp16::from_float(coeffs[(size_t(t) * H + h) * S + s]);
  return q;
}

std::vector<uint16_t> GpuKeyQuantizer::dequantize_host(const QuantizedKeys& q, const TensorLayout& layout) {
  const KeySpec& spec = q.spec;
  const TensorShape& shape = q.shape;
  validate(spec, shape);
  Impl& m = *impl_;
  const uint32_t H = shape.heads, T = shape.tokens, D = shape.dim;
  const uint32_t k = anomalous_channel_count(spec, D), N = D - k, S = coefficient_streams(spec.fft, N);
  if (D % 2 != 0 || layout.head_stride % 2 != 0 || layout.token_stride % 2 != 0) {
    throw Error(ErrorCode::invalid_argument, "fp16 keys are written two channels per word: dim and strides must be even");
  }
  const auto roles_host = roles_from_splits(q.splits, spec.scope, H, D, k);
  const TensorShape a_shape{H, T, k}, s_shape{H, T, S};
  auto ctx = m.ctx;
  if (q.anomalous.shape.dim != k || q.normal.shape.dim != S) {
    throw Error(ErrorCode::invalid_argument, "QuantizedKeys parts do not match nbits_key " + std::to_string(spec.nbits));
  }
  const gpu::DevicePacked a = gpu::upload_packed(ctx, q.anomalous);
  const gpu::DevicePacked s = gpu::upload_packed(ctx, q.normal);
  rt::Buffer roles(ctx, at_least(roles_host.size() * 4));
  roles.upload(roles_host.data(), roles_host.size() * 4);
  rt::Buffer anomalous(ctx, at_least(uint64_t(T) * H * k * 4)), streams(ctx, at_least(uint64_t(T) * H * S * 4));
  const rt::FftPlan* inverse = N > 0 ? &m.ffts.get(N, H * T, true) : nullptr;
  rt::Buffer spectrum(ctx, inverse ? inverse->complex_bytes() : 16), rows(ctx, inverse ? inverse->real_bytes() : 16);
  const uint64_t out_bytes = (layout.span(shape) * 2 + 3) / 4 * 4;
  rt::Buffer output(ctx, at_least(out_bytes));
  m.poison_all({&anomalous, &streams, &spectrum, &rows, &output});

  m.runner.run([&](VkCommandBuffer cmd) {
    if (k > 0) {
      m.grouped.record_dequantize(cmd, anomalous_spec(spec), a_shape, a.views(), TensorLayout::thd(a_shape),
                                  ElementType::f32, anomalous.view());
    }
    if (inverse) {
      m.grouped.record_dequantize(cmd, stream_spec(spec), s_shape, s.views(), TensorLayout::thd(s_shape),
                                  ElementType::f32, streams.view());
      rt::compute_to_compute_barrier(cmd);
      const StreamPush sp{H, T, N, S, N / 2 + 1};
      const rt::BufferView sviews[] = {streams.view(), spectrum.view()};
      m.pipelines.get(gpu::pipeline("key_spectrum", {spec.fft == FftLayout::full ? 1u : 0u}, 2, sizeof(sp)))
          .dispatch(cmd, sviews, &sp, rt::workgroups_for(uint64_t(H) * T * (N / 2 + 1), gpu::kWorkgroupSize));
      rt::compute_to_compute_barrier(cmd);
      inverse->record(cmd, spectrum.view(), rows.view());
    }
    rt::compute_to_compute_barrier(cmd);
    const ScatterPush pc{H, T, D, uint32_t(layout.head_stride), uint32_t(layout.token_stride), k, N,
                         N > 0 ? 1.0f / float(N) : 0.0f};
    const rt::BufferView views[] = {roles.view(), anomalous.view(), rows.view(), output.view()};
    m.pipelines.get(gpu::pipeline("key_scatter", {spec.scope == ChannelScope::layer ? 1u : 0u, 0u}, 4, sizeof(pc)))
        .dispatch(cmd, views, &pc, rt::workgroups_for(uint64_t(H) * T * (D / 2), gpu::kWorkgroupSize));
  });
  std::vector<uint16_t> result(layout.span(shape));
  output.download(result.data(), result.size() * 2);
  return result;
}

}  // namespace vidkv
