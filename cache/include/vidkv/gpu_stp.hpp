#pragma once
// Semantic token protection on a Vulkan device, bit-exact with vidkv::reference (stp.hpp): scores,
// the top-n selection (same tokens, same tie-breaking), and the token-split value quantization
// (codes, scales, mins and decoded values). Every operation checks all of its arguments before it
// touches the device and throws vidkv::Error naming the bad value; nothing is written then.
//
// The device-level calls take the caller's buffers and run synchronously (submit and wait); the
// *_host calls are round trips through buffers of their own (tools and tests).
#include <cstdint>
#include <memory>
#include <vector>

#include "vidkv/export.hpp"
#include "vidkv/gpu_quantizer.hpp"
#include "vidkv/quant_spec.hpp"
#include "vidkv/reference.hpp"
#include "vidkv/runtime/buffer.hpp"
#include "vidkv/runtime/commands.hpp"
#include "vidkv/runtime/context.hpp"
#include "vidkv/runtime/pipeline.hpp"
#include "vidkv/stp.hpp"

namespace vidkv {

class VIDKV_API GpuStp {
 public:
  explicit GpuStp(std::shared_ptr<rt::Context> context);
  ~GpuStp();

  // score_i of visual [N][hidden] against text [M][hidden] (row-major, fp16 two per word or fp32)
  // into `scores` (N floats).
  void scores(const rt::BufferView& visual, ElementType visual_type, uint32_t visual_tokens, const rt::BufferView& text,
              ElementType text_type, uint32_t text_tokens, uint32_t hidden, const rt::BufferView& scores);

  // The split of a sequence of total_tokens tokens whose visual tokens are first_visual ..
  // first_visual + N - 1, by the N scores in `scores` (device buffer, assumed finite: NaN cannot
  // be checked there). Writes protected_count(spec, N) increasing positions to protected_tokens
  // and the other total_tokens - n to other_tokens (uint32 each). Returns n.
  uint32_t select(const StpSpec& spec, const rt::BufferView& scores, uint32_t visual_tokens, uint32_t total_tokens,
                  const rt::BufferView& protected_tokens, const rt::BufferView& other_tokens);

  // Gathers the tokens of each part of `split` out of the fp16 tensor `input` (shape, layout) and
  // quantizes them per channel: protected at 2 bits into `high`, the others at 1.58 bits into
  // `low` (sizes as packed_bytes() of the part's shape heads x count x dim). A part with no tokens
  // writes nothing.
  void quantize_values(const TokenSplit& split, uint32_t group_size, TernaryScale ternary, const TensorShape& shape,
                       const TensorLayout& layout, const rt::BufferView& input, const PackedBuffers& high,
                       const PackedBuffers& low);
  // Decodes both parts and scatters their tokens back to their positions in the fp16 `output`
  // (positions the layout does not cover are left as they were).
  void dequantize_values(const TokenSplit& split, uint32_t group_size, TernaryScale ternary, const TensorShape& shape,
                         const PackedBuffers& high, const PackedBuffers& low, const TensorLayout& layout,
                         const rt::BufferView& output);

  // Host round trips, same semantics as the reference functions of the same names.
  std::vector<float> scores_host(const std::vector<float>& visual, const std::vector<float>& text, uint32_t hidden);
  std::vector<float> scores_host(const std::vector<uint16_t>& visual_fp16, const std::vector<uint16_t>& text_fp16,
                                 uint32_t hidden);
  TokenSplit select_host(const StpSpec& spec, const std::vector<float>& scores, uint32_t total_tokens);
  StpQuantizedValues quantize_values_host(const TokenSplit& split, uint32_t group_size, TernaryScale ternary,
                                          const TensorShape& shape, const std::vector<uint16_t>& input,
                                          const TensorLayout& layout);
  std::vector<uint16_t> dequantize_values_host(const StpQuantizedValues& q, const TensorLayout& layout);

  // Compute dispatches that select() records for N visual tokens (the cost of the sort).
  uint32_t select_dispatch_count(uint32_t visual_tokens) const;

  const std::shared_ptr<rt::Context>& context() const { return context_; }

 private:
  std::vector<float> scores_host_bytes(const void* visual, uint64_t visual_elements, const void* text,
                                       uint64_t text_elements, ElementType type, uint32_t hidden);

  std::shared_ptr<rt::Context> context_;
  rt::PipelineSet pipelines_;
  rt::CommandRunner runner_;
  GpuQuantizer quantizer_;
  uint32_t sort_workgroup_ = 0;  // invocations of one sort workgroup; it sorts twice as many entries
};

}  // namespace vidkv
