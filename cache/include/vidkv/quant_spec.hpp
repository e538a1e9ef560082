#pragma once
// What one grouped quantization does (bit width, axis, group size, ternary scale) and the sizes of
// the packed arrays it produces. Shared by the CPU reference and the GPU quantizer so both agree on
// the layout, which is the authors' (tests/golden/README.md):
//   axis = channel (the original's axis = -1): a group is group_size consecutive tokens of one
//     channel of one head. codes[h][c][w], token t in word t / fpi at bits (t % fpi) * field_bits;
//     scales[h][c][g], mins[h][c][g].
//   axis = token (the original's axis = 0, what KIVI does to values): a group is group_size
//     consecutive channels of one token of one head. codes[h][t][w], channel c in word c / fpi;
//     scales[h][t][g], mins[h][t][g].
// fpi (fields per 32-bit word) = 32 / field_bits; field_bits is 1, 2 (also for 1.58-bit trits,
// stored as code + 1 in {0, 1, 2}), 4 or 8.
#include <cstddef>
#include <cstdint>
#include <string>

#include "vidkv/error.hpp"
#include "vidkv/export.hpp"

namespace vidkv {

enum class QuantBits { b1, b1_58, b2, b4, b8 };
enum class QuantAxis { channel, token };
// Scale of a ternary group: the paper's mean|x| over the whole group, or the least-squares scale for
// the chosen codes, mean|x| over the elements whose code is not 0.
enum class TernaryScale { mean_abs, lsq };

struct QuantSpec {
  QuantBits bits = QuantBits::b2;
  QuantAxis axis = QuantAxis::channel;
  uint32_t group_size = 32;
  // lsq by default: lower reconstruction error than the paper's mean_abs on every golden value input
  // (relative L2 0.4495 vs 0.5042 on q1p58bit_values_h4_t256; README "Ternary scale"). To be
  // revisited against attention error once attention exists.
  TernaryScale ternary_scale = TernaryScale::lsq;
};

// Logical shape of one layer's K or V: heads x tokens x dim.
struct TensorShape {
  uint32_t heads = 0;
  uint32_t tokens = 0;
  uint32_t dim = 0;
  size_t elements() const { return size_t(heads) * tokens * dim; }
};

// Where element (head h, token t, channel d) lives: h * head_stride + t * token_stride + d.
struct VIDKV_API TensorLayout {
  uint64_t head_stride = 0;
  uint64_t token_stride = 0;
  // [tokens][heads][dim], the cache's layout and the one engines hand over.
  static TensorLayout thd(const TensorShape& s) { return {s.dim, uint64_t(s.heads) * s.dim}; }
  // [heads][tokens][dim], the layout of the golden vectors ([B=1][H][T][D]).
  static TensorLayout htd(const TensorShape& s) { return {uint64_t(s.tokens) * s.dim, s.dim}; }
  // Number of elements a buffer must hold for this layout and shape.
  uint64_t span(const TensorShape& s) const;
};

struct PackedSizes {
  uint32_t field_bits = 0;        // bits of one code field
  uint32_t fields_per_word = 0;   // 32 / field_bits
  uint32_t words_per_row = 0;     // code words of one (head, channel) row or (head, token) row
  uint32_t groups_per_row = 0;    // scale/min entries of one row
  uint64_t rows = 0;              // heads * dim (channel axis) or heads * tokens (token axis)
  uint64_t code_words() const { return rows * words_per_row; }
  uint64_t scale_count() const { return rows * groups_per_row; }
};

VIDKV_API const char* bits_name(QuantBits bits) noexcept;        // "1", "1.58", "2", "4", "8"
VIDKV_API const char* axis_name(QuantAxis axis) noexcept;        // "channel", "token"
VIDKV_API const char* ternary_scale_name(TernaryScale s) noexcept;  // "mean_abs", "lsq"
// Parses "1", "1.58", "2", "4", "8"; throws Error(unsupported_bits) naming the text otherwise.
VIDKV_API QuantBits parse_bits(const std::string& text);
VIDKV_API uint32_t field_bits(QuantBits bits) noexcept;
// Number of code levels minus one for the b-bit asymmetric paths (3, 15, 255); 0 otherwise.
VIDKV_API uint32_t max_code(QuantBits bits) noexcept;

// Throws vidkv::Error naming the problem when the spec and shape cannot be quantized:
//  - zero heads, tokens or dim (invalid_argument);
//  - group_size not a multiple of 32 or above 1024 (bad_group_size), so every group fills whole
//    32-bit code words at every bit width;
//  - the grouped axis (tokens for axis = channel, dim for axis = token) not a multiple of
//    group_size (bad_group_size: the cache keeps such a tail in fp16 instead);
//  - 1 or 1.58 bits with axis = token (unsupported_bits: only 2, 4 and 8 are offered per token).
// Any dim is accepted (the FFT key path quantizes odd numbers of coefficient streams); the GPU
// writes fp16 output two channels per 32-bit word, so it decodes an odd dim only to fp32.
VIDKV_API void validate(const QuantSpec& spec, const TensorShape& shape);
VIDKV_API PackedSizes packed_sizes(const QuantSpec& spec, const TensorShape& shape);

}  // namespace vidkv
