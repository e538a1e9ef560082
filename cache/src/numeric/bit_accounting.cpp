// Honest bit accounting (DESIGN section 4; the formats are spelled out in bit_accounting.hpp).
#include "vidkv/bit_accounting.hpp"

#include <string>

#include "vidkv/error.hpp"
#include "vidkv/ternary_pack.hpp"

namespace vidkv {
namespace {

constexpr uint64_t kHalfBytes = 2;
constexpr uint64_t kIndexBytes = 8;  // the original's int64 indices

// One per-channel part over `tokens` tokens: codes of `bits` bits, an fp16 scale per group and,
// when `with_min`, an fp16 min per group.
void add_part(StorageBreakdown& b, uint64_t rows, uint64_t tokens, uint32_t group_size, uint32_t bits,
              bool with_min) {
  b.code_bytes += rows * tokens * bits / 8;
  b.scale_bytes += rows * (tokens / group_size) * kHalfBytes;
  if (with_min) b.min_bytes += rows * (tokens / group_size) * kHalfBytes;
}

}  // namespace

StorageBreakdown key_storage(const KeySpec& spec, const TensorShape& shape, StorageFormat format) {
  validate(spec, shape);
  const bool compact = format == StorageFormat::compact;
  const uint32_t k = anomalous_channel_count(spec, shape.dim), n = shape.dim - k;
  const uint64_t heads = shape.heads;
  StorageBreakdown b;
  b.values = shape.elements();
  add_part(b, heads * k, shape.tokens, spec.group_size, 2, true);
  // Normal channels: half or full spectrum (the original always keeps the full one), 1-bit codes;
  // the original also stores an fp16 min (always 0) per group.
  const uint32_t streams = coefficient_streams(compact ? spec.fft : FftLayout::full, n);
  add_part(b, heads * streams, shape.tokens, spec.group_size, 1, !compact);
  // Which channels are anomalous; nothing to record when every channel takes the same path.
  if (k > 0 && n > 0) {
    if (compact) {
      b.map_bytes = uint64_t((shape.dim + 7) / 8) * (spec.scope == ChannelScope::head ? heads : 1);
    } else {
      b.map_bytes = uint64_t(shape.dim) * kIndexBytes;
    }
  }
  return b;
}

StorageBreakdown value_storage(const ValueStorageSpec& spec, const TensorShape& shape, StorageFormat format) {
  if (spec.bits != QuantBits::b1_58 && spec.bits != QuantBits::b2) {
    throw Error(ErrorCode::unsupported_bits,
                std::string("values are stored at 1.58 or 2 bits, not ") + bits_name(spec.bits));
  }
  validate(QuantSpec{spec.bits, QuantAxis::channel, spec.group_size, TernaryScale::mean_abs}, shape);
  const uint32_t p = spec.protected_tokens, g = spec.group_size;
  if (p > 0 && spec.bits != QuantBits::b1_58) {
    throw Error(ErrorCode::invalid_argument, "protected_tokens " + std::to_string(p) +
                                                 " given with 2-bit values (STP protects 1.58-bit values)");
  }
  if (p > shape.tokens || p % g != 0) {
    throw Error(ErrorCode::bad_group_size, "protected_tokens " + std::to_string(p) + " is above tokens " +
                                               std::to_string(shape.tokens) + " or not a multiple of group_size " +
                                               std::to_string(g));
  }
  const uint64_t rows = uint64_t(shape.heads) * shape.dim;
  StorageBreakdown b;
  b.values = shape.elements();
  if (format == StorageFormat::original) {
    // Every path in 2-bit fields with an fp16 scale and min per group; int64 token indices.
    add_part(b, rows, shape.tokens, g, 2, true);
    b.map_bytes = uint64_t(p) * kIndexBytes;
    return b;
  }
  if (spec.bits == QuantBits::b2) {
    add_part(b, rows, shape.tokens, g, 2, true);
    return b;
  }
  add_part(b, rows, p, g, 2, true);  // protected tokens (none without STP)
  const uint32_t other = shape.tokens - p;
  if (spec.trits_base3) {
    b.code_bytes += uint64_t(shape.heads) * (other / g) * trit_block_bytes(shape.dim, g);
    b.scale_bytes += rows * (other / g) * kHalfBytes;
  } else {
    add_part(b, rows, other, g, 2, false);
  }
  if (p > 0) b.map_bytes = (uint64_t(shape.tokens) + 7) / 8;
  return b;
}

}  // namespace vidkv
