#include "vidkv/quant_spec.hpp"

#include <string>

#include "vidkv/error.hpp"

namespace vidkv {

const char* bits_name(QuantBits bits) noexcept {
  switch (bits) {
    case QuantBits::b1: return "1";
    case QuantBits::b1_58: return "1.58";
    case QuantBits::b2: return "2";
    case QuantBits::b4: return "4";
    case QuantBits::b8: return "8";
  }
  return "?";
}

const char* axis_name(QuantAxis axis) noexcept {
  switch (axis) {
    case QuantAxis::channel: return "channel";
    case QuantAxis::token: return "token";
  }
  return "?";
}

const char* ternary_scale_name(TernaryScale s) noexcept {
  switch (s) {
    case TernaryScale::mean_abs: return "mean_abs";
    case TernaryScale::lsq: return "lsq";
  }
  return "?";
}

QuantBits parse_bits(const std::string& text) {
  for (QuantBits b : {QuantBits::b1, QuantBits::b1_58, QuantBits::b2, QuantBits::b4,
                      QuantBits::b8}) {
    if (text == bits_name(b)) return b;
  }
  throw Error(ErrorCode::unsupported_bits,
              "bit width '" + text + "' is not one of 1, 1.58, 2, 4, 8");
}

uint32_t field_bits(QuantBits bits) noexcept {
  switch (bits) {
    case QuantBits::b1: return 1;
    case QuantBits::b1_58: return 2;  // a trit is stored as code + 1 in a 2-bit field
    case QuantBits::b2: return 2;
    case QuantBits::b4: return 4;
    case QuantBits::b8: return 8;
  }
  return 0;
}

uint32_t max_code(QuantBits bits) noexcept {
  switch (bits) {
    case QuantBits::b2: return 3;
    case QuantBits::b4: return 15;
    case QuantBits::b8: return 255;
    default: return 0;
  }
}

uint64_t TensorLayout::span(const TensorShape& s) const {
  if (s.heads == 0 || s.tokens == 0 || s.dim == 0) return 0;
  // One past the last element addressed, (H-1, T-1, D-1).
  return uint64_t(s.heads - 1) * head_stride + uint64_t(s.tokens - 1) * token_stride + s.dim;
}

void validate(const QuantSpec& spec, const TensorShape& shape) {
  if (shape.heads == 0 || shape.tokens == 0 || shape.dim == 0) {
    throw Error(ErrorCode::invalid_argument,
                "tensor shape heads=" + std::to_string(shape.heads) + " tokens=" +
                    std::to_string(shape.tokens) + " dim=" + std::to_string(shape.dim) +
                    " has a zero dimension");
  }
  if (field_bits(spec.bits) == 0) {
    throw Error(ErrorCode::unsupported_bits,
                "bit width enum value " + std::to_string(int(spec.bits)) + " is not known");
  }
  if (spec.axis != QuantAxis::channel && spec.axis != QuantAxis::token) {
    throw Error(ErrorCode::invalid_argument,
                "axis enum value " + std::to_string(int(spec.axis)) + " is not known");
  }
  const std::string gs = std::to_string(spec.group_size);
  if (spec.group_size == 0 || spec.group_size % 32 != 0) {
    throw Error(ErrorCode::bad_group_size, "group_size " + gs + " is not a multiple of 32");
  }
  if (spec.group_size > 1024) {
    throw Error(ErrorCode::bad_group_size, "group_size " + gs + " is above 1024");
  }
  const bool by_channel = spec.axis == QuantAxis::channel;
  const uint32_t grouped = by_channel ? shape.tokens : shape.dim;
  if (grouped % spec.group_size != 0) {
    throw Error(ErrorCode::bad_group_size,
                std::string(by_channel ? "tokens " : "dim ") + std::to_string(grouped) +
                    " is not a multiple of group_size " + gs + " (axis " +
                    axis_name(spec.axis) + ")");
  }
  if (!by_channel && (spec.bits == QuantBits::b1 || spec.bits == QuantBits::b1_58)) {
    throw Error(ErrorCode::unsupported_bits,
                std::string(bits_name(spec.bits)) +
                    "-bit quantization is offered only with axis channel, not token");
  }
}

PackedSizes packed_sizes(const QuantSpec& spec, const TensorShape& shape) {
  validate(spec, shape);
  PackedSizes p;
  p.field_bits = field_bits(spec.bits);
  p.fields_per_word = 32 / p.field_bits;
  const bool by_channel = spec.axis == QuantAxis::channel;
  // The grouped axis runs along a row; rows are (head, channel) or (head, token).
  const uint32_t along = by_channel ? shape.tokens : shape.dim;
  p.words_per_row = along / p.fields_per_word;
  p.groups_per_row = along / spec.group_size;
  p.rows = uint64_t(shape.heads) * (by_channel ? shape.dim : shape.tokens);
  return p;
}

}  // namespace vidkv
