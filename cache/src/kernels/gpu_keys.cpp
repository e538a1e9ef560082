// GpuKeyQuantizer's host-level functions (tools and tests): device buffers made, filled and read
// back around the recorded path of gpu_keys_record.cpp, so both are one code path.
#include "vidkv/gpu_keys.hpp"

#include <string>

#include "kernels/gpu_keys_internal.hpp"
#include "kernels/gpu_packed_io.hpp"
#include "vidkv/fp16.hpp"

namespace vidkv {

using namespace keys_detail;

namespace keys_detail {

std::vector<uint32_t> table_from_splits(const std::vector<ChannelSplit>& splits, ChannelScope scope, uint32_t heads,
                                        uint32_t dim, uint32_t k) {
  if (splits.size() != heads) {
    throw Error(ErrorCode::invalid_argument, "expected one channel split per head (" + std::to_string(heads) +
                                                 "), got " + std::to_string(splits.size()));
  }
  const uint32_t units = units_of(scope, heads);
  std::vector<uint32_t> table;
  for (uint32_t h = 0; h < heads; ++h) {
    const ChannelSplit& s = splits[h];
    if (s.anomalous.size() != k || s.normal.size() != dim - k) {
      throw Error(ErrorCode::invalid_argument, "channel split of head " + std::to_string(h) + " has " +
                                                   std::to_string(s.anomalous.size()) + " anomalous channels; " +
                                                   std::to_string(k) + " expected");
    }
    if (scope == ChannelScope::layer && h > 0 && (s.anomalous != splits[0].anomalous || s.normal != splits[0].normal)) {
      throw Error(ErrorCode::invalid_argument, "channel scope layer needs the same split for every head");
    }
    std::vector<bool> seen(dim, false);
    for (const auto* list : {&s.anomalous, &s.normal}) {
      for (size_t i = 0; i < list->size(); ++i) {
        const uint32_t c = (*list)[i];
        if (c >= dim || (i > 0 && (*list)[i - 1] >= c) || seen[c]) {
          throw Error(ErrorCode::invalid_argument,
                      "channel split of head " + std::to_string(h) + " is not an increasing partition of the channels");
        }
        seen[c] = true;
      }
    }
    if (h < units) {
      table.insert(table.end(), s.anomalous.begin(), s.anomalous.end());
      table.insert(table.end(), s.normal.begin(), s.normal.end());
    }
  }
  return table;
}

std::vector<ChannelSplit> splits_from_table(const std::vector<uint32_t>& table, uint32_t heads, uint32_t units,
                                            uint32_t dim, uint32_t k) {
  std::vector<ChannelSplit> splits;
  for (uint32_t h = 0; h < heads; ++h) {
    const auto row = table.begin() + size_t(units == 1 ? 0 : h) * dim;
    splits.push_back({std::vector<uint32_t>(row, row + k), std::vector<uint32_t>(row + k, row + dim)});
  }
  return splits;
}

}  // namespace keys_detail

GpuKeyQuantizer::GpuKeyQuantizer(std::shared_ptr<rt::Context> context) : impl_(std::make_unique<Impl>(context)) {}
GpuKeyQuantizer::~GpuKeyQuantizer() = default;

void GpuKeyQuantizer::set_poison(uint8_t byte_value) { impl_->poison = byte_value; }

std::unique_ptr<rt::Buffer> GpuKeyQuantizer::Impl::upload_input(const TensorShape& shape,
                                                                const std::vector<uint16_t>& input,
                                                                const TensorLayout& layout) {
  if (input.size() < layout.span(shape)) {
    throw Error(ErrorCode::buffer_too_small, "keys hold " + std::to_string(input.size()) +
                                                 " halves; the layout spans " + std::to_string(layout.span(shape)));
  }
  auto buffer = std::make_unique<rt::Buffer>(ctx, at_least((input.size() * 2 + 3) / 4 * 4));
  buffer->upload(input.data(), input.size() * 2);
  return buffer;
}

std::vector<uint16_t> GpuKeyQuantizer::ranges_host(const TensorShape& shape, const std::vector<uint16_t>& input,
                                                   const TensorLayout& layout, ChannelScope scope) {
  validate(QuantSpec{QuantBits::b2, QuantAxis::channel, 32}, {shape.heads, 32, shape.dim});
  if (shape.tokens == 0) throw Error(ErrorCode::invalid_argument, "tokens must be positive");
  Impl& m = *impl_;
  auto in = m.upload_input(shape, input, layout);
  const uint32_t units = units_of(scope, shape.heads);
  rt::Buffer ranges(m.ctx, at_least(uint64_t(units) * shape.dim * 4));
  m.poison_all({&ranges});
  m.runner.run([&](VkCommandBuffer cmd) { m.record_ranges(cmd, shape, layout, scope, in->view(), ranges.view()); });
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
  rt::Buffer table(m.ctx, at_least(words.size() * 4));
  m.poison_all({&roles, &table});
  in.upload(words.data(), words.size() * 4);
  m.runner.run([&](VkCommandBuffer cmd) { m.record_select(cmd, units, dim, k, in.view(), roles.view(), table.view()); });
  return splits_from_table(download<uint32_t>(table, words.size()), heads, units, dim, k);
}

QuantizedKeys GpuKeyQuantizer::quantize_host(const KeySpec& spec, const TensorShape& shape,
                                             const std::vector<uint16_t>& input, const TensorLayout& layout) {
  return quantize_host_with(spec, shape, input, layout, {});
}

QuantizedKeys GpuKeyQuantizer::quantize_host_with(const KeySpec& spec, const TensorShape& shape,
                                                  const std::vector<uint16_t>& input, const TensorLayout& layout,
                                                  const std::vector<ChannelSplit>& given) {
  validate(spec, shape);
  Impl& m = *impl_;
  const uint32_t H = shape.heads, T = shape.tokens, D = shape.dim;
  const uint32_t k = anomalous_channel_count(spec, D), S = coefficient_streams(spec.fft, D - k);
  const uint32_t units = units_of(spec.scope, H);
  const bool select = given.empty();
  std::vector<uint32_t> given_table;
  if (!select) given_table = table_from_splits(given, spec.scope, H, D, k);
  auto in = m.upload_input(shape, input, layout);
  KeyWorkspace workspace(m.ctx, spec, H, D, T);
  KeyWorkspace::Buffers& w = *workspace.buffers_;
  rt::Buffer table(m.ctx, at_least(channel_table_bytes(spec, H, D)));
  const TensorShape a_shape{H, T, k}, s_shape{H, T, S};
  const gpu::DevicePacked a_packed = gpu::allocate_packed(m.ctx, keys_detail::anomalous_spec(spec), a_shape);
  const gpu::DevicePacked s_packed = gpu::allocate_packed(m.ctx, keys_detail::stream_spec(spec), s_shape);
  m.poison_all({&table, w.ranges.get(), w.roles.get(), w.anomalous.get(), w.rows.get(), w.spectrum.get(),
                w.streams.get()});
  a_packed.fill(m.poison);
  s_packed.fill(m.poison);
  if (!select) table.upload(given_table.data(), given_table.size() * 4);
  m.runner.run([&](VkCommandBuffer cmd) {
    if (!select) {  // the ranges are part of the result even when the channels are given
      m.record_ranges(cmd, shape, layout, spec.scope, in->view(), w.ranges->view());
      rt::compute_to_compute_barrier(cmd);
    }
    record_quantize(cmd, spec, shape, layout, in->view(), select, table.view(), workspace,
                    {a_packed.views(), s_packed.views()});
  });

  QuantizedKeys q;
  q.spec = spec;
  q.shape = shape;
  const auto range_words = download<uint32_t>(*w.ranges, size_t(units) * D);
  q.ranges.assign(range_words.begin(), range_words.end());
  q.splits = select ? splits_from_table(download<uint32_t>(table, size_t(units) * D), H, units, D, k) : given;
  q.anomalous = gpu::download_packed(keys_detail::anomalous_spec(spec), a_shape, a_packed);
  q.normal = gpu::download_packed(keys_detail::stream_spec(spec), s_shape, s_packed);
  // The quantizer's input: each fp32 coefficient rounded to half, reordered to [heads][tokens][streams].
  const auto coeffs = download<float>(*w.streams, size_t(T) * H * S);
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
  const auto table_host = table_from_splits(q.splits, spec.scope, H, D, k);
  const uint32_t units = units_of(spec.scope, H);
  const TensorShape a_shape{H, T, k}, s_shape{H, T, S};
  auto ctx = m.ctx;
  if (q.anomalous.shape.dim != k || q.normal.shape.dim != S) {
    throw Error(ErrorCode::invalid_argument, "QuantizedKeys parts do not match nbits_key " + std::to_string(spec.nbits));
  }
  const gpu::DevicePacked a = gpu::upload_packed(ctx, q.anomalous);
  const gpu::DevicePacked s = gpu::upload_packed(ctx, q.normal);
  rt::Buffer table(ctx, at_least(table_host.size() * 4)), roles(ctx, at_least(table_host.size() * 4));
  table.upload(table_host.data(), table_host.size() * 4);
  rt::Buffer anomalous(ctx, at_least(uint64_t(T) * H * k * 4)), streams(ctx, at_least(uint64_t(T) * H * S * 4));
  const rt::FftPlan* inverse = N > 0 ? &m.ffts.get(N, H * T, true) : nullptr;
  rt::Buffer spectrum(ctx, inverse ? inverse->complex_bytes() : 16), rows(ctx, inverse ? inverse->real_bytes() : 16);
  const uint64_t out_bytes = (layout.span(shape) * 2 + 3) / 4 * 4;
  rt::Buffer output(ctx, at_least(out_bytes));
  m.poison_all({&anomalous, &streams, &spectrum, &rows, &output});

  m.runner.run([&](VkCommandBuffer cmd) {
    const uint32_t rp[3] = {units, D, k};
    const rt::BufferView rviews[] = {table.view(), roles.view()};
    m.pipelines.get(gpu::pipeline("channel_roles", {}, 2, sizeof(rp)))
        .dispatch(cmd, rviews, rp, rt::workgroups_for(uint64_t(units) * D, gpu::kWorkgroupSize));
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
          .dispatch(cmd, sviews, &sp, rt::grid_workgroups(uint64_t(H) * T * (N / 2 + 1), gpu::kWorkgroupSize));
      rt::compute_to_compute_barrier(cmd);
      inverse->record(cmd, spectrum.view(), rows.view());
    }
    rt::compute_to_compute_barrier(cmd);
    const ScatterPush pc{H, T, D, uint32_t(layout.head_stride), uint32_t(layout.token_stride), k, N,
                         N > 0 ? 1.0f / float(N) : 0.0f};
    const rt::BufferView views[] = {roles.view(), anomalous.view(), rows.view(), output.view()};
    m.pipelines.get(gpu::pipeline("key_scatter", {spec.scope == ChannelScope::layer ? 1u : 0u, 0u}, 4, sizeof(pc)))
        .dispatch(cmd, views, &pc, rt::grid_workgroups((uint64_t(H) * T * (D / 2) + kKeyScatterRun - 1) / kKeyScatterRun, gpu::kWorkgroupSize));
  });
  std::vector<uint16_t> result(layout.span(shape));
  output.download(result.data(), result.size() * 2);
  return result;
}

}  // namespace vidkv
