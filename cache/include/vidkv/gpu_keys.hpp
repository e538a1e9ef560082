#pragma once
// VidKV's mixed-precision keys on a Vulkan device (see vidkv_keys.hpp for the exact definitions):
// channel ranges and the anomalous-channel choice in shaders, the normal channels through a VkFFT
// real-to-complex transform across channels, both parts quantized with the grouped quantizer; the
// decode runs the inverse real FFT on the device. Ranges, channel choices, codes, scales and mins
// equal the reference bit for bit given the same fp16 coefficients; the coefficients themselves
// (fp32 VkFFT vs the reference's double DFT) and the decoded keys agree within fp16 rounding.
#include <memory>
#include <vector>

#include "vidkv/export.hpp"
#include "vidkv/gpu_quantizer.hpp"
#include "vidkv/runtime/fft.hpp"
#include "vidkv/vidkv_keys.hpp"

namespace vidkv {

// Device buffers a key quantization writes: the 2-bit part and the 1-bit streams, in the layouts
// of QuantizedKeys (shape {heads, tokens, k} and {heads, tokens, streams}); a part that is empty
// (k = 0 or k = dim) is not touched.
struct KeyPackedBuffers {
  PackedBuffers anomalous;
  PackedBuffers normal;
};

// Scratch of one recorded key quantization, sized for up to max_tokens tokens and `heads` heads of
// one layer (a cache's mixed layers quantize fewer heads with it). It must
// outlive the command buffer it was recorded into, and not be shared by two recordings in flight.
class VIDKV_API KeyWorkspace {
 public:
  KeyWorkspace(std::shared_ptr<rt::Context> context, const KeySpec& spec, uint32_t heads, uint32_t dim,
               uint32_t max_tokens);
  ~KeyWorkspace();
  uint32_t max_tokens() const { return max_tokens_; }

 private:
  friend class GpuKeyQuantizer;
  struct Buffers;
  std::unique_ptr<Buffers> buffers_;
  uint32_t max_tokens_ = 0;
};

class VIDKV_API GpuKeyQuantizer {
 public:
  explicit GpuKeyQuantizer(std::shared_ptr<rt::Context> context);
  ~GpuKeyQuantizer();

  // Ranges [units][dim] as halves and the per-head channel split, computed on the device.
  std::vector<uint16_t> ranges_host(const TensorShape& shape, const std::vector<uint16_t>& input,
                                    const TensorLayout& layout, ChannelScope scope);
  // The channel split per head chosen on the device from ranges [units][dim] (halves).
  std::vector<ChannelSplit> select_host(const std::vector<uint16_t>& ranges, uint32_t dim, uint32_t heads,
                                        ChannelScope scope, uint32_t k);
  // Quantizes: selects channels from this input's ranges.
  QuantizedKeys quantize_host(const KeySpec& spec, const TensorShape& shape, const std::vector<uint16_t>& input,
                              const TensorLayout& layout);
  // Quantizes with channels chosen earlier (a sequence keeps its prefill choice for later blocks).
  QuantizedKeys quantize_host_with(const KeySpec& spec, const TensorShape& shape, const std::vector<uint16_t>& input,
                                   const TensorLayout& layout, const std::vector<ChannelSplit>& splits);
  // Decoded keys as halves at layout positions (positions the layout does not cover hold the
  // poison byte).
  std::vector<uint16_t> dequantize_host(const QuantizedKeys& q, const TensorLayout& layout);

  // Records the quantization of `shape.tokens` tokens of `input` (fp16, `layout`) into `output`.
  // `channels` is the uint32 table [units][dim] of attention_channel_table() (per unit the k
  // anomalous channels, then the dim - k normal ones, each increasing): with select = true it is
  // written from this input's ranges (the prefill), otherwise read (blocks appended later keep the
  // prefill's choice). Everything is checked before anything is recorded.
  void record_quantize(VkCommandBuffer cmd, const KeySpec& spec, const TensorShape& shape, const TensorLayout& layout,
                       const rt::BufferView& input, bool select, const rt::BufferView& channels,
                       KeyWorkspace& workspace, const KeyPackedBuffers& output);
  // Records the decode of keys quantized by record_quantize (`input`, `shape.tokens` tokens, the
  // same channel table) into fp16 `output` in `layout`, through the workspace (the inverse FFT
  // runs on its buffers, so one workspace serves quantization and decode alike). Checked first.
  void record_dequantize(VkCommandBuffer cmd, const KeySpec& spec, const TensorShape& shape,
                         const KeyPackedBuffers& input, const rt::BufferView& channels, KeyWorkspace& workspace,
                         const TensorLayout& layout, const rt::BufferView& output);
  // Creates, without buffers or dispatches, the compute pipelines record_quantize uses for this
  // spec (channel ranges and selection with select = true, else the channel roles; the gather; the
  // stream extraction and the grouped quantizers of both parts), for vidkv-info --pipelines. The
  // forward FFT is VkFFT's own pipeline and is not among them.
  std::vector<rt::PreparedPipeline> prepare_quantize_pipelines(const KeySpec& spec, uint32_t dim, bool select);
  // Bytes of the channel table: units * dim * 4.
  static uint64_t channel_table_bytes(const KeySpec& spec, uint32_t heads, uint32_t dim);

  // Fills every output and intermediate buffer with this byte before each run (default 0xFF), so a
  // shader that leaves an element unwritten produces a visible mismatch; tests run with two values.
  void set_poison(uint8_t byte_value);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vidkv
