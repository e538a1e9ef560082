// GpuStp: the token-split value quantization. Each part of the split (protected tokens at 2 bits,
// the others at 1.58 bits) is gathered into a dense fp16 [count][heads][dim] tensor, bits
// unchanged (shaders/token_gather.comp), and quantized per channel by the GpuQuantizer; decoding
// runs the GpuQuantizer backwards into dense tensors and scatters their rows back to their
// positions (shaders/token_scatter.comp). The part specs are the reference's (stp_reference.cpp):
// high = 2-bit per channel (mean_abs, unused at 2 bits), low = 1.58-bit with the given scale.
#include <algorithm>
#include <array>
#include <memory>
#include <string>
#include <utility>

#include "kernels/gpu_packed_io.hpp"
#include "kernels/gpu_stp_internal.hpp"
#include "shader_registry.hpp"
#include "vidkv/gpu_stp.hpp"

namespace vidkv {

namespace {

using stp_detail::require_addressable;
using stp_detail::require_view;
using stp_detail::word_bytes;

constexpr uint32_t kWorkgroupSize = 64;
constexpr uint32_t kMaxGroups = 65535;  // maxComputeWorkGroupCount[0] guaranteed by Vulkan

struct MovePush {
  uint32_t heads, dim, count, head_stride, token_stride;
};

QuantSpec high_spec(uint32_t group_size) {
  return {QuantBits::b2, QuantAxis::channel, group_size, TernaryScale::mean_abs};
}
QuantSpec low_spec(uint32_t group_size, TernaryScale ternary) {
  return {QuantBits::b1_58, QuantAxis::channel, group_size, ternary};
}
TensorShape part_shape(const TensorShape& shape, const std::vector<uint32_t>& tokens) {
  return {shape.heads, uint32_t(tokens.size()), shape.dim};
}

// The checks of the reference, in its order: group size; the split (in range, increasing,
// disjoint, complete, both counts multiples of the group); the whole layer's shape.
void check_split(const TokenSplit& s, const TensorShape& shape, uint32_t group_size) {
  if (group_size == 0) throw Error(ErrorCode::bad_group_size, "group_size is 0");
  std::vector<bool> seen(shape.tokens, false);
  for (const auto* list : {&s.protected_tokens, &s.other_tokens}) {
    for (size_t i = 0; i < list->size(); ++i) {
      const uint32_t t = (*list)[i];
      if (t >= shape.tokens || seen[t] || (i > 0 && (*list)[i - 1] >= t)) {
        throw Error(ErrorCode::invalid_argument,
                    "token " + std::to_string(t) + " of the split is out of range (tokens " +
                        std::to_string(shape.tokens) + "), repeated or out of increasing order");
      }
      seen[t] = true;
    }
  }
  const size_t covered = s.protected_tokens.size() + s.other_tokens.size();
  if (covered != shape.tokens) {
    throw Error(ErrorCode::invalid_argument,
                "split covers " + std::to_string(covered) + " of " + std::to_string(shape.tokens) + " tokens");
  }
  if (s.protected_tokens.size() % group_size != 0 || s.other_tokens.size() % group_size != 0) {
    throw Error(ErrorCode::bad_group_size, "protected tokens " + std::to_string(s.protected_tokens.size()) +
                                               " and other tokens " + std::to_string(s.other_tokens.size()) +
                                               " must both be multiples of group_size " + std::to_string(group_size));
  }
  validate(high_spec(group_size), shape);
}

// Layout of the whole layer: addressable with 32-bit indices, fp16 buffer large enough.
void check_tensor(const rt::Context& ctx, const TensorShape& shape, const TensorLayout& layout,
                  const rt::BufferView& view, const char* what) {
  const uint64_t span = layout.span(shape);
  require_addressable(span, what);
  require_addressable(layout.head_stride, "head stride");
  require_addressable(layout.token_stride, "token stride");
  require_view(ctx, view, word_bytes(span, 2), what);
}

void check_packed(const rt::Context& ctx, const QuantSpec& spec, const TensorShape& part, const PackedBuffers& p) {
  if (part.tokens == 0) return;  // an empty part reads and writes nothing
  validate(spec, part);
  require_addressable(part.elements(), "dense part");
  const PackedBytes bytes = packed_bytes(spec, part);
  require_view(ctx, p.codes, bytes.codes, "codes");
  require_view(ctx, p.scales, bytes.scales, "scales");
  require_view(ctx, p.mins, bytes.mins, "mins");
}

const rt::ComputePipeline& move_pipeline(rt::PipelineSet& set, const char* name) {
  const ShaderCode* code = shaders::find(name);
  if (code == nullptr) throw Error(ErrorCode::invalid_argument, std::string("no embedded shader ") + name);
  rt::PipelineDesc desc;
  desc.shader = code;
  desc.specialization = {kWorkgroupSize};
  desc.buffer_count = 3;
  desc.push_constant_bytes = sizeof(MovePush);
  return set.get(desc);
}

// Scratch of one part: its token list and its dense fp16 tensor, on the device.
struct PartScratch {
  std::unique_ptr<rt::Buffer> tokens, dense;
  PartScratch(const std::shared_ptr<rt::Context>& ctx, const std::vector<uint32_t>& list, const TensorShape& part) {
    if (list.empty()) return;
    tokens = std::make_unique<rt::Buffer>(ctx, list.size() * 4);
    tokens->upload(list.data(), list.size() * 4);
    dense = std::make_unique<rt::Buffer>(ctx, part.elements() * 2);
  }
};

void dispatch_move(VkCommandBuffer cmd, const rt::ComputePipeline& pipeline, const rt::BufferView& first,
                   const PartScratch& scratch, const rt::BufferView& last, const TensorShape& part,
                   const TensorLayout& layout) {
  const MovePush push{part.heads, part.dim, part.tokens, uint32_t(layout.head_stride), uint32_t(layout.token_stride)};
  const rt::BufferView buffers[] = {first, scratch.tokens->view(), last};
  const uint32_t groups = std::min(rt::workgroups_for(part.elements() / 2, kWorkgroupSize), kMaxGroups);
  pipeline.dispatch(cmd, buffers, &push, groups);
}

// The shapes of both parts, after every check quantize_values and dequantize_values share: the
// split, the unpacked tensor's buffer, and both parts' packed buffers.
std::pair<TensorShape, TensorShape> checked_parts(const rt::Context& ctx, const TokenSplit& split,
                                                  uint32_t group_size, TernaryScale ternary, const TensorShape& shape,
                                                  const TensorLayout& layout, const rt::BufferView& tensor,
                                                  const char* tensor_name, const PackedBuffers& high,
                                                  const PackedBuffers& low) {
  check_split(split, shape, group_size);
  check_tensor(ctx, shape, layout, tensor, tensor_name);
  const TensorShape hs = part_shape(shape, split.protected_tokens), ls = part_shape(shape, split.other_tokens);
  check_packed(ctx, high_spec(group_size), hs, high);
  check_packed(ctx, low_spec(group_size, ternary), ls, low);
  return {hs, ls};
}

}  // namespace

void GpuStp::quantize_values(const TokenSplit& split, uint32_t group_size, TernaryScale ternary,
                             const TensorShape& shape, const TensorLayout& layout, const rt::BufferView& input,
                             const PackedBuffers& high, const PackedBuffers& low) {
  const auto [hs, ls] = checked_parts(*context_, split, group_size, ternary, shape, layout, input, "input", high, low);
  const auto& gather = move_pipeline(pipelines_, "token_gather");
  PartScratch hi(context_, split.protected_tokens, hs), lo(context_, split.other_tokens, ls);
  runner_.run([&](VkCommandBuffer cmd) {
    if (hs.tokens > 0) dispatch_move(cmd, gather, input, hi, hi.dense->view(), hs, layout);
    if (ls.tokens > 0) dispatch_move(cmd, gather, input, lo, lo.dense->view(), ls, layout);
    rt::compute_to_compute_barrier(cmd);
    if (hs.tokens > 0) {
      quantizer_.record_quantize(cmd, high_spec(group_size), hs, TensorLayout::thd(hs), ElementType::f16,
                                 hi.dense->view(), high);
    }
    if (ls.tokens > 0) {
      quantizer_.record_quantize(cmd, low_spec(group_size, ternary), ls, TensorLayout::thd(ls), ElementType::f16,
                                 lo.dense->view(), low);
    }
  });
}

void GpuStp::dequantize_values(const TokenSplit& split, uint32_t group_size, TernaryScale ternary,
                               const TensorShape& shape, const PackedBuffers& high, const PackedBuffers& low,
                               const TensorLayout& layout, const rt::BufferView& output) {
  const auto [hs, ls] = checked_parts(*context_, split, group_size, ternary, shape, layout, output, "output", high, low);
  const auto& scatter = move_pipeline(pipelines_, "token_scatter");
  PartScratch hi(context_, split.protected_tokens, hs), lo(context_, split.other_tokens, ls);
  runner_.run([&](VkCommandBuffer cmd) {
    if (hs.tokens > 0) {
      quantizer_.record_dequantize(cmd, high_spec(group_size), hs, high, TensorLayout::thd(hs), ElementType::f16,
                                   hi.dense->view());
    }
    if (ls.tokens > 0) {
      quantizer_.record_dequantize(cmd, low_spec(group_size, ternary), ls, low, TensorLayout::thd(ls), ElementType::f16,
                                   lo.dense->view());
    }
    rt::compute_to_compute_barrier(cmd);
    // The parts own disjoint tokens; words shared at odd strides are updated atomically.
    if (hs.tokens > 0) dispatch_move(cmd, scatter, hi.dense->view(), hi, output, hs, layout);
    if (ls.tokens > 0) dispatch_move(cmd, scatter, lo.dense->view(), lo, output, ls, layout);
  });
}

StpQuantizedValues GpuStp::quantize_values_host(const TokenSplit& split, uint32_t group_size, TernaryScale ternary,
                                                const TensorShape& shape, const std::vector<uint16_t>& input,
                                                const TensorLayout& layout) {
  check_split(split, shape, group_size);
  const uint64_t span = layout.span(shape);
  if (input.size() < span) {
    throw Error(ErrorCode::buffer_too_small,
                "input holds " + std::to_string(input.size()) + " halves; the layout spans " + std::to_string(span));
  }
  StpQuantizedValues q;
  q.shape = shape;
  q.split = split;
  q.high.spec = high_spec(group_size);
  q.high.shape = part_shape(shape, split.protected_tokens);
  q.low.spec = low_spec(group_size, ternary);
  q.low.shape = part_shape(shape, split.other_tokens);
  rt::Buffer input_buffer(context_, word_bytes(span, 2));
  input_buffer.upload(input.data(), span * 2);
  const gpu::DevicePacked hb = gpu::allocate_packed(context_, q.high.spec, q.high.shape);
  const gpu::DevicePacked lb = gpu::allocate_packed(context_, q.low.spec, q.low.shape);
  quantize_values(split, group_size, ternary, shape, layout, input_buffer.view(), hb.views(), lb.views());
  q.high = gpu::download_packed(q.high.spec, q.high.shape, hb);
  q.low = gpu::download_packed(q.low.spec, q.low.shape, lb);
  return q;
}

std::vector<uint16_t> GpuStp::dequantize_values_host(const StpQuantizedValues& q, const TensorLayout& layout) {
  const uint32_t group_size = q.high.spec.group_size;
  check_split(q.split, q.shape, group_size);
  for (const auto* part : {&q.high, &q.low}) {
    const bool is_high = part == &q.high;
    const auto& tokens = is_high ? q.split.protected_tokens : q.split.other_tokens;
    if (part->spec.bits != (is_high ? QuantBits::b2 : QuantBits::b1_58) || part->spec.axis != QuantAxis::channel ||
        part->spec.group_size != group_size || part->shape.heads != q.shape.heads || part->shape.dim != q.shape.dim ||
        part->shape.tokens != tokens.size()) {
      throw Error(ErrorCode::invalid_argument,
                  std::string(is_high ? "high" : "low") + " part's spec or shape does not match the split (tokens " +
                      std::to_string(part->shape.tokens) + ", split " + std::to_string(tokens.size()) + ")");
    }
    const PackedSizes sizes = tokens.empty() ? PackedSizes{} : packed_sizes(part->spec, part->shape);
    if (part->codes.size() != sizes.code_words() || part->scales.size() != sizes.scale_count() ||
        part->mins.size() != sizes.scale_count()) {
      throw Error(ErrorCode::invalid_argument,
                  std::string(is_high ? "high" : "low") + " part's arrays do not match its spec and shape");
    }
  }
  const uint64_t span = layout.span(q.shape);
  require_addressable(span, "output");
  const gpu::DevicePacked hb = gpu::upload_packed(context_, q.high);
  const gpu::DevicePacked lb = gpu::upload_packed(context_, q.low);
  rt::Buffer output(context_, word_bytes(span, 2));
  output.fill(0);  // positions the layout does not cover read as 0, as in the reference
  dequantize_values(q.split, group_size, q.low.spec.ternary_scale, q.shape, hb.views(), lb.views(), layout,
                    output.view());
  std::vector<uint16_t> result(word_bytes(span, 2) / 2);
  output.download(result.data(), word_bytes(span, 2));
  result.resize(span);
  return result;
}

}  // namespace vidkv
