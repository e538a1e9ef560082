#pragma once
// Grouped quantize + pack and unpack + dequantize on a Vulkan device, bit-exact with
// vidkv::reference (codes, scales, mins and decoded values). Every operation either records into
// a caller's command buffer (record_*; nothing is submitted, see vidkv/runtime/commands.hpp for the
// barriers the caller owes) or runs synchronously (submits and waits).
#include <memory>
#include <vector>

#include <vulkan/vulkan_core.h>

#include "vidkv/export.hpp"
#include "vidkv/quant_spec.hpp"
#include "vidkv/reference.hpp"
#include "vidkv/runtime/buffer.hpp"
#include "vidkv/runtime/commands.hpp"
#include "vidkv/runtime/context.hpp"
#include "vidkv/runtime/pipeline.hpp"

namespace vidkv {

enum class ElementType { f16, f32 };
VIDKV_API const char* element_type_name(ElementType type) noexcept;
inline uint32_t element_bytes(ElementType type) { return type == ElementType::f16 ? 2 : 4; }

// The packed arrays of one quantized tensor. codes: code_words() 32-bit words; scales and mins:
// scale_count() halves each, stored two per 32-bit word (so a buffer holds a whole number of words).
struct PackedBuffers {
  rt::BufferView codes;
  rt::BufferView scales;
  rt::BufferView mins;
};

// Bytes each packed array needs for `spec` and `shape`.
struct PackedBytes {
  uint64_t codes = 0;
  uint64_t scales = 0;
  uint64_t mins = 0;
  uint64_t total() const { return codes + scales + mins; }
};
VIDKV_API PackedBytes packed_bytes(const QuantSpec& spec, const TensorShape& shape);

class VIDKV_API GpuQuantizer {
 public:
  explicit GpuQuantizer(std::shared_ptr<rt::Context> context);
  ~GpuQuantizer();

  // Checks everything first (spec, shape, layout, buffer sizes and offsets) and throws
  // vidkv::Error without recording anything when a check fails.
  void record_quantize(VkCommandBuffer cmd, const QuantSpec& spec, const TensorShape& shape,
                       const TensorLayout& layout, ElementType input_type, const rt::BufferView& input,
                       const PackedBuffers& output);
  void record_dequantize(VkCommandBuffer cmd, const QuantSpec& spec, const TensorShape& shape,
                         const PackedBuffers& input, const TensorLayout& layout, ElementType output_type,
                         const rt::BufferView& output);

  void quantize(const QuantSpec& spec, const TensorShape& shape, const TensorLayout& layout,
                ElementType input_type, const rt::BufferView& input, const PackedBuffers& output);
  void dequantize(const QuantSpec& spec, const TensorShape& shape, const PackedBuffers& input,
                  const TensorLayout& layout, ElementType output_type, const rt::BufferView& output);

  // 1.58-bit per-channel codes repacked from 2-bit fields to trits 5 per byte (ternary_pack.hpp):
  // `packed` needs trit_packed_bytes(shape, group_size) rounded up to whole words.
  void record_pack_trits(VkCommandBuffer cmd, const QuantSpec& spec, const TensorShape& shape,
                         const rt::BufferView& field_codes, const rt::BufferView& packed);
  // Decoding straight from trits 5 per byte (input.codes holds the packed bytes).
  void record_dequantize_trits(VkCommandBuffer cmd, const QuantSpec& spec, const TensorShape& shape,
                               const PackedBuffers& input, const TensorLayout& layout, ElementType output_type,
                               const rt::BufferView& output);

  // Host round trips through device buffers (tools and tests).
  QuantizedTensor quantize_host(const QuantSpec& spec, const TensorShape& shape,
                                const std::vector<uint16_t>& input_fp16, const TensorLayout& layout);
  QuantizedTensor quantize_host(const QuantSpec& spec, const TensorShape& shape,
                                const std::vector<float>& input_fp32, const TensorLayout& layout);
  std::vector<uint16_t> dequantize_host(const QuantizedTensor& q, const TensorLayout& layout);
  std::vector<float> dequantize_host_f32(const QuantizedTensor& q, const TensorLayout& layout);
  std::vector<uint8_t> pack_trits_host(const QuantizedTensor& q);
  std::vector<uint16_t> dequantize_trits_host(const QuantizedTensor& q, const std::vector<uint8_t>& packed,
                                              const TensorLayout& layout);

  const std::shared_ptr<rt::Context>& context() const { return context_; }

  // Creates, without buffers or dispatches, the pipelines that quantizing a tensor of this spec
  // from `input_type` uses (with trits_base3: also the packing to trits 5 per byte), for
  // vidkv-info --pipelines. Throws for a spec validate() rejects.
  std::vector<rt::PreparedPipeline> prepare_quantize_pipelines(const QuantSpec& spec, ElementType input_type,
                                                               bool trits_base3);

 private:
  QuantizedTensor quantize_host_bytes(const QuantSpec& spec, const TensorShape& shape, const void* data,
                                      uint64_t bytes, ElementType type, const TensorLayout& layout);
  std::vector<uint8_t> dequantize_host_bytes(const QuantizedTensor& q, const TensorLayout& layout,
                                             ElementType type, const std::vector<uint8_t>* trits = nullptr);

  std::shared_ptr<rt::Context> context_;
  rt::PipelineSet pipelines_;
  rt::CommandRunner runner_;
};

}  // namespace vidkv
