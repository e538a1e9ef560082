#pragma once
// VidKV's mixed-precision keys (DESIGN section 2): per channel, the k = floor(D * (nbits - 1))
// channels with the largest range max - min over the tokens ("anomalous") take 2-bit per-channel
// quantization; the other N = D - k ("normal") channels of every token go through a DFT across
// those channels (increasing channel order) and each real coefficient stream is quantized per
// channel at 1 bit. Decoding runs the inverse DFT and keeps the real part.
//
// Exact definitions shared by the reference and the shaders:
//  - range of channel c = half(max - min), max/min over the scope's fp16 values (-0 below +0);
//    scope head: the tokens of that head; scope layer: the tokens of every head (the original).
//  - selection: channels ordered by range descending, ties by lower channel index; the first k
//    are anomalous. Both lists are kept in increasing channel order.
//  - coefficient streams, fft = half (real-to-complex, exactly N reals per token):
//      Re X_0, then Re X_f, Im X_f for f = 1 .. ceil(N/2) - 1, then Re X_{N/2} when N is even;
//    fft = full (the original's): Re X_0, Im X_0, Re X_1, Im X_1, ..., Re X_{N-1}, Im X_{N-1}.
//    X_f = sum_n x_n exp(-2 pi i f n / N); each coefficient is rounded to fp16 and then quantized at
//    1 bit per stream (groups of group_size tokens), as vidkv::reference does for 1-bit.
//  - decode: x_n = Re((1/N) sum_f X'_f exp(+2 pi i f n / N)) over the full spectrum, where the half
//    layout stands for its conjugate-symmetric extension; rounded to fp16.
//  - any k is accepted, odd ones included (e.g. D = 64, nbits 1.3: k = 19, N = 45).
//  - an empty part (k = 0 at nbits 1.0: no anomalous channels; k = D at nbits 2.0: no streams) is a
//    QuantizedTensor with its spec filled in, shape {heads, tokens, 0} and no codes, scales or mins.
// The reference computes DFTs in double; the GPU uses VkFFT in fp32, so coefficients agree within
// fp16 rounding, and codes and scales are bit-exact given the same fp16 coefficients.
#include <cstdint>
#include <vector>

#include "vidkv/export.hpp"
#include "vidkv/reference.hpp"

namespace vidkv {

enum class ChannelScope { head, layer };
enum class FftLayout { half, full };
VIDKV_API const char* channel_scope_name(ChannelScope scope) noexcept;  // "head", "layer"
VIDKV_API const char* fft_layout_name(FftLayout layout) noexcept;       // "half", "full"

struct KeySpec {
  double nbits = 1.5;  // 1.0 (every channel through the FFT) .. 2.0 (plain 2-bit)
  uint32_t group_size = 32;
  ChannelScope scope = ChannelScope::head;
  FftLayout fft = FftLayout::half;
};

// k = floor(dim * (nbits - 1)) (with a 1e-9 guard against binary fractions); throws
// Error(unsupported_bits) naming nbits unless 1 <= nbits <= 2.
VIDKV_API uint32_t anomalous_channel_count(const KeySpec& spec, uint32_t dim);
// Real coefficient streams of one token: N (half) or 2N (full); 0 when N = 0.
VIDKV_API uint32_t coefficient_streams(FftLayout layout, uint32_t normal_channels);
// Throws vidkv::Error for a bad spec or shape (nbits, group size, tokens not a multiple of it).
VIDKV_API void validate(const KeySpec& spec, const TensorShape& shape);

struct ChannelSplit {
  std::vector<uint32_t> anomalous;  // increasing
  std::vector<uint32_t> normal;     // increasing
};

struct QuantizedKeys {
  KeySpec spec;
  TensorShape shape;
  std::vector<uint16_t> ranges;        // fp16, [units][dim]; units = heads (scope head) or 1
  std::vector<ChannelSplit> splits;    // one per head (identical for every head with scope layer)
  QuantizedTensor anomalous;           // 2-bit per channel, shape {heads, tokens, k}
  QuantizedTensor normal;              // 1-bit per stream, shape {heads, tokens, streams}
  std::vector<uint16_t> coefficients;  // fp16 quantizer input, [heads][tokens][streams]
};

namespace reference {

VIDKV_API std::vector<uint16_t> channel_ranges(const TensorShape& shape, const uint16_t* input,
                                               const TensorLayout& layout, ChannelScope scope);
VIDKV_API std::vector<ChannelSplit> select_channels(const std::vector<uint16_t>& ranges, uint32_t dim,
                                                    uint32_t heads, ChannelScope scope, uint32_t k);
// fp16 coefficient streams [heads][tokens][streams] of the normal channels (double DFT, rounded).
VIDKV_API std::vector<uint16_t> key_coefficients(const KeySpec& spec, const TensorShape& shape, const uint16_t* input,
                                                 const TensorLayout& layout, const std::vector<ChannelSplit>& splits);
// Everything: ranges, selection, DFT, quantization.
VIDKV_API QuantizedKeys quantize_keys(const KeySpec& spec, const TensorShape& shape, const uint16_t* input,
                                      const TensorLayout& layout);
// Same, but quantizes the given fp16 coefficients [heads][tokens][streams] (golden vectors, or a
// GPU's coefficients) instead of computing them, and uses the given channel split per head.
VIDKV_API QuantizedKeys quantize_keys_with(const KeySpec& spec, const TensorShape& shape, const uint16_t* input,
                                           const TensorLayout& layout, const std::vector<ChannelSplit>& splits,
                                           const std::vector<uint16_t>& coefficients);
// Decoded fp16 keys at layout positions (double inverse DFT).
VIDKV_API std::vector<uint16_t> dequantize_keys(const QuantizedKeys& q, const TensorLayout& layout);

}  // namespace reference
}  // namespace vidkv
