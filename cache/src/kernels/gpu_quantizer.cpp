#include "vidkv/gpu_quantizer.hpp"

#include <bit>
#include <cstring>
#include <string>

#include "kernels/gpu_common.hpp"
#include "kernels/gpu_packed_io.hpp"
#include "vidkv/ternary_pack.hpp"
#include "vk.hpp"

namespace vidkv {

namespace {

using gpu::kWorkgroupSize;

struct PushConstants {
  uint32_t heads, tokens, dim, head_stride, token_stride, groups_total;
};

uint32_t mode_of(QuantBits bits) {
  switch (bits) {
    case QuantBits::b1: return 0;
    case QuantBits::b1_58: return 1;
    case QuantBits::b2: return 2;
    case QuantBits::b4: return 3;
    case QuantBits::b8: return 4;
  }
  return 2;
}

rt::PipelineDesc grouped_pipeline(const char* name, const QuantSpec& spec, ElementType data_type,
                                  bool trits_base3 = false) {
  const uint32_t levels = max_code(spec.bits);
  const float rcp = levels > 0 ? 1.0f / float(levels) : 0.0f;
  return gpu::pipeline(name,
                       {mode_of(spec.bits), spec.axis == QuantAxis::channel ? 0u : 1u, spec.group_size,
                        spec.ternary_scale == TernaryScale::lsq ? 1u : 0u, data_type == ElementType::f32 ? 1u : 0u,
                        std::bit_cast<uint32_t>(rcp), trits_base3 ? 1u : 0u},
                       4, sizeof(PushConstants));
}

// trit_pack's push constants: heads, tokens, dim, packed bytes.
rt::PipelineDesc trit_pack_pipeline(const QuantSpec& spec) {
  return gpu::pipeline("trit_pack", {spec.group_size}, 2, 4 * sizeof(uint32_t));
}

void require_size(const rt::BufferView& view, uint64_t bytes, const char* what) {
  if (view.buffer == VK_NULL_HANDLE) {
    throw Error(ErrorCode::invalid_argument, std::string(what) + " buffer is VK_NULL_HANDLE");
  }
  if (view.size < bytes) {
    throw Error(ErrorCode::buffer_too_small, std::string(what) + " buffer holds " + std::to_string(view.size) +
                                                 " bytes; " + std::to_string(bytes) + " are needed");
  }
}

void require_alignment(const rt::Context& ctx, const rt::BufferView& view, const char* what) {
  const uint64_t align = ctx.info().min_storage_buffer_offset_alignment;
  if (align > 1 && view.offset % align != 0) {
    throw Error(ErrorCode::invalid_argument, std::string(what) + " buffer offset " + std::to_string(view.offset) +
                                                 " is not a multiple of minStorageBufferOffsetAlignment " +
                                                 std::to_string(align));
  }
}

// Checks shared by quantize and dequantize; returns the push constants.
PushConstants check_tensor(const rt::Context& ctx, const QuantSpec& spec, const TensorShape& shape,
                           const TensorLayout& layout, ElementType type, const rt::BufferView& tensor,
                           const PackedBuffers& packed, const char* tensor_name) {
  validate(spec, shape);
  const uint64_t span = layout.span(shape);
  if (span > 0xffffffffull || layout.head_stride > 0xffffffffull || layout.token_stride > 0xffffffffull) {
    throw Error(ErrorCode::invalid_argument, "tensor spans " + std::to_string(span) +
                                                 " elements; at most 2^32 - 1 are addressed by one call");
  }
  const PackedBytes bytes = packed_bytes(spec, shape);
  // fp16 tensors are read and written as 32-bit words: the buffer covers whole words.
  require_size(tensor, (span * element_bytes(type) + 3) / 4 * 4, tensor_name);
  require_size(packed.codes, bytes.codes, "codes");
  require_size(packed.scales, bytes.scales, "scales");
  require_size(packed.mins, bytes.mins, "mins");
  for (const auto* view : {&tensor, &packed.codes, &packed.scales, &packed.mins}) {
    require_alignment(ctx, *view, view == &tensor ? tensor_name : "packed");
  }
  const PackedSizes sizes = packed_sizes(spec, shape);
  return {shape.heads, shape.tokens, shape.dim, uint32_t(layout.head_stride), uint32_t(layout.token_stride),
          uint32_t(sizes.scale_count())};
}

}  // namespace

const char* element_type_name(ElementType type) noexcept { return type == ElementType::f16 ? "f16" : "f32"; }

PackedBytes packed_bytes(const QuantSpec& spec, const TensorShape& shape) {
  const PackedSizes sizes = packed_sizes(spec, shape);
  const uint64_t half_words = (sizes.scale_count() + 1) / 2;
  return {sizes.code_words() * 4, half_words * 4, half_words * 4};
}

static void require_trits(const QuantSpec& spec);

GpuQuantizer::GpuQuantizer(std::shared_ptr<rt::Context> context)
    : context_(context), pipelines_(context), runner_(context) {}

GpuQuantizer::~GpuQuantizer() = default;

std::vector<rt::PreparedPipeline> GpuQuantizer::prepare_quantize_pipelines(const QuantSpec& spec,
                                                                         ElementType input_type, bool trits_base3) {
  validate(spec, {1, spec.group_size, spec.group_size});
  const std::string label = std::string("quantize_grouped[") + bits_name(spec.bits) + "-bit per " + axis_name(spec.axis) +
                            (input_type == ElementType::f32 ? ", f32" : ", f16") + "]";
  std::vector<rt::PreparedPipeline> out = {pipelines_.prepare(label, grouped_pipeline("quantize_grouped", spec, input_type))};
  if (trits_base3) {
    require_trits(spec);
    out.push_back(pipelines_.prepare("trit_pack", trit_pack_pipeline(spec)));
  }
  return out;
}

void GpuQuantizer::record_quantize(VkCommandBuffer cmd, const QuantSpec& spec, const TensorShape& shape,
                                   const TensorLayout& layout, ElementType input_type,
                                   const rt::BufferView& input, const PackedBuffers& output) {
  const PushConstants pc = check_tensor(*context_, spec, shape, layout, input_type, input, output, "input");
  const auto& pipeline = pipelines_.get(grouped_pipeline("quantize_grouped", spec, input_type));
  const rt::BufferView buffers[] = {input, output.codes, output.scales, output.mins};
  const uint64_t pairs = (uint64_t(pc.groups_total) + 1) / 2;
  pipeline.dispatch(cmd, buffers, &pc, rt::grid_workgroups(pairs, kWorkgroupSize));
}

void GpuQuantizer::record_dequantize(VkCommandBuffer cmd, const QuantSpec& spec, const TensorShape& shape,
                                     const PackedBuffers& input, const TensorLayout& layout,
                                     ElementType output_type, const rt::BufferView& output) {
  const PushConstants pc = check_tensor(*context_, spec, shape, layout, output_type, output, input, "output");
  if (output_type == ElementType::f16 &&
      (shape.dim % 2 != 0 || layout.head_stride % 2 != 0 || layout.token_stride % 2 != 0)) {
    // fp16 outputs are written as whole 32-bit words of two channels.
    throw Error(ErrorCode::invalid_argument, "fp16 output needs an even dim and even head and token strides, got dim " +
                                                 std::to_string(shape.dim) + ", strides " +
                                                 std::to_string(layout.head_stride) + " and " +
                                                 std::to_string(layout.token_stride));
  }
  const auto& pipeline = pipelines_.get(grouped_pipeline("dequantize_grouped", spec, output_type));
  const rt::BufferView buffers[] = {input.codes, input.scales, input.mins, output};
  const uint64_t items = uint64_t(shape.heads) * shape.tokens * ((shape.dim + 1) / 2);
  pipeline.dispatch(cmd, buffers, &pc, rt::grid_workgroups(items, kWorkgroupSize));
}

static void require_trits(const QuantSpec& spec) {
  if (spec.bits != QuantBits::b1_58 || spec.axis != QuantAxis::channel) {
    throw Error(ErrorCode::unsupported_bits, std::string("trits 5 per byte hold 1.58-bit per-channel codes, not ") +
                                                 bits_name(spec.bits) + "-bit per " + axis_name(spec.axis));
  }
}

static uint64_t trit_buffer_bytes(const QuantSpec& spec, const TensorShape& shape) {
  return (trit_packed_bytes(shape, spec.group_size) + 3) / 4 * 4;
}

void GpuQuantizer::record_pack_trits(VkCommandBuffer cmd, const QuantSpec& spec, const TensorShape& shape,
                                     const rt::BufferView& field_codes, const rt::BufferView& packed) {
  validate(spec, shape);
  require_trits(spec);
  require_size(field_codes, packed_bytes(spec, shape).codes, "codes");
  require_size(packed, trit_buffer_bytes(spec, shape), "packed trits");
  require_alignment(*context_, field_codes, "codes");
  require_alignment(*context_, packed, "packed trits");
  const uint32_t pc[4] = {shape.heads, shape.tokens, shape.dim, uint32_t(trit_packed_bytes(shape, spec.group_size))};
  static_assert(sizeof(pc) == 4 * sizeof(uint32_t));
  const auto& pipeline = pipelines_.get(trit_pack_pipeline(spec));
  const rt::BufferView buffers[] = {field_codes, packed};
  pipeline.dispatch(cmd, buffers, pc, rt::grid_workgroups(trit_buffer_bytes(spec, shape) / 4, kWorkgroupSize));
}

void GpuQuantizer::record_dequantize_trits(VkCommandBuffer cmd, const QuantSpec& spec, const TensorShape& shape,
                                           const PackedBuffers& input, const TensorLayout& layout,
                                           ElementType output_type, const rt::BufferView& output) {
  validate(spec, shape);
  require_trits(spec);
  require_size(input.codes, trit_buffer_bytes(spec, shape), "packed trits");
  // The fields-sized check in record_dequantize covers scales, mins and output; the trit buffer is
  // smaller than the fields one, so check the rest with a stand-in of the fields' size.
  PackedBuffers checked = input;
  checked.codes.size = std::max<VkDeviceSize>(input.codes.size, packed_bytes(spec, shape).codes);
  const PushConstants pc = check_tensor(*context_, spec, shape, layout, output_type, output, checked, "output");
  if (output_type == ElementType::f16 &&
      (shape.dim % 2 != 0 || layout.head_stride % 2 != 0 || layout.token_stride % 2 != 0)) {
    throw Error(ErrorCode::invalid_argument, "fp16 output needs an even dim and even strides");
  }
  const auto& pipeline = pipelines_.get(grouped_pipeline("dequantize_grouped", spec, output_type, true));
  const rt::BufferView buffers[] = {input.codes, input.scales, input.mins, output};
  const uint64_t items = uint64_t(shape.heads) * shape.tokens * ((shape.dim + 1) / 2);
  pipeline.dispatch(cmd, buffers, &pc, rt::grid_workgroups(items, kWorkgroupSize));
}

void GpuQuantizer::quantize(const QuantSpec& spec, const TensorShape& shape, const TensorLayout& layout,
                            ElementType input_type, const rt::BufferView& input, const PackedBuffers& output) {
  runner_.run([&](VkCommandBuffer cmd) { record_quantize(cmd, spec, shape, layout, input_type, input, output); });
}

void GpuQuantizer::dequantize(const QuantSpec& spec, const TensorShape& shape, const PackedBuffers& input,
                              const TensorLayout& layout, ElementType output_type, const rt::BufferView& output) {
  runner_.run([&](VkCommandBuffer cmd) {
    record_dequantize(cmd, spec, shape, input, layout, output_type, output);
  });
}

QuantizedTensor GpuQuantizer::quantize_host_bytes(const QuantSpec& spec, const TensorShape& shape,
                                                  const void* data, uint64_t bytes, ElementType type,
                                                  const TensorLayout& layout) {
  validate(spec, shape);
  if (bytes < layout.span(shape) * element_bytes(type)) {
    throw Error(ErrorCode::buffer_too_small, "input holds " + std::to_string(bytes) + " bytes; the layout spans " +
                                                 std::to_string(layout.span(shape) * element_bytes(type)));
  }
  rt::Buffer input(context_, (bytes + 3) / 4 * 4);
  const gpu::DevicePacked out = gpu::allocate_packed(context_, spec, shape);
  input.upload(data, bytes);
  quantize(spec, shape, layout, type, input.view(), out.views());
  return gpu::download_packed(spec, shape, out);
}

QuantizedTensor GpuQuantizer::quantize_host(const QuantSpec& spec, const TensorShape& shape,
                                            const std::vector<uint16_t>& input, const TensorLayout& layout) {
  return quantize_host_bytes(spec, shape, input.data(), input.size() * 2, ElementType::f16, layout);
}

QuantizedTensor GpuQuantizer::quantize_host(const QuantSpec& spec, const TensorShape& shape,
                                            const std::vector<float>& input, const TensorLayout& layout) {
  return quantize_host_bytes(spec, shape, input.data(), input.size() * 4, ElementType::f32, layout);
}

std::vector<uint8_t> GpuQuantizer::dequantize_host_bytes(const QuantizedTensor& q, const TensorLayout& layout,
                                                         ElementType type, const std::vector<uint8_t>* trits) {
  validate(q.spec, q.shape);
  const gpu::DevicePacked device = gpu::upload_packed(context_, q);
  const uint64_t out_bytes = ((layout.span(q.shape) * element_bytes(type) + 3) / 4) * 4;
  rt::Buffer output(context_, out_bytes);
  output.fill(0);  // positions the layout does not cover read as 0, as in the reference
  if (trits == nullptr) {
    dequantize(q.spec, q.shape, device.views(), layout, type, output.view());
  } else {
    require_trits(q.spec);
    if (trits->size() != trit_packed_bytes(q.shape, q.spec.group_size)) {
      throw Error(ErrorCode::invalid_argument, "packed trits hold " + std::to_string(trits->size()) + " bytes; " +
                                                   std::to_string(trit_packed_bytes(q.shape, q.spec.group_size)) +
                                                   " expected");
    }
    rt::Buffer packed(context_, trit_buffer_bytes(q.spec, q.shape));
    std::vector<uint8_t> padded(packed.size(), 0);
    std::copy(trits->begin(), trits->end(), padded.begin());
    packed.upload(padded.data(), padded.size());
    runner_.run([&](VkCommandBuffer cmd) {
      record_dequantize_trits(cmd, q.spec, q.shape, {packed.view(), device.scales->view(), device.mins->view()},
                              layout, type, output.view());
    });
  }
  std::vector<uint8_t> result(out_bytes);
  output.download(result.data(), out_bytes);
  result.resize(layout.span(q.shape) * element_bytes(type));
  return result;
}

std::vector<uint8_t> GpuQuantizer::pack_trits_host(const QuantizedTensor& q) {
  validate(q.spec, q.shape);
  require_trits(q.spec);
  const PackedBytes pb = packed_bytes(q.spec, q.shape);
  if (q.codes.size() * 4 != pb.codes) throw Error(ErrorCode::invalid_argument, "codes do not match the shape");
  rt::Buffer codes(context_, pb.codes), packed(context_, trit_buffer_bytes(q.spec, q.shape));
  codes.upload(q.codes.data(), pb.codes);
  runner_.run([&](VkCommandBuffer cmd) { record_pack_trits(cmd, q.spec, q.shape, codes.view(), packed.view()); });
  std::vector<uint8_t> out(trit_packed_bytes(q.shape, q.spec.group_size));
  packed.download(out.data(), out.size());
  return out;
}

std::vector<uint16_t> GpuQuantizer::dequantize_trits_host(const QuantizedTensor& q, const std::vector<uint8_t>& packed,
                                                          const TensorLayout& layout) {
  auto bytes = dequantize_host_bytes(q, layout, ElementType::f16, &packed);
  std::vector<uint16_t> out(bytes.size() / 2);
  std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

std::vector<uint16_t> GpuQuantizer::dequantize_host(const QuantizedTensor& q, const TensorLayout& layout) {
  auto bytes = dequantize_host_bytes(q, layout, ElementType::f16);
  std::vector<uint16_t> out(bytes.size() / 2);
  std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

std::vector<float> GpuQuantizer::dequantize_host_f32(const QuantizedTensor& q, const TensorLayout& layout) {
  auto bytes = dequantize_host_bytes(q, layout, ElementType::f32);
  std::vector<float> out(bytes.size() / 4);
  std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

}  // namespace vidkv
