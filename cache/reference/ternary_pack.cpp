// Trits packed 5 per byte (see ternary_pack.hpp): b = ceil(256 * v / 243), digit i recovered as
// (((b * 3^i) mod 256) * 3) >> 8, so a shader unpacks with a multiply, a mask and a shift.
#include "vidkv/ternary_pack.hpp"

#include <string>

#include "vidkv/error.hpp"

namespace vidkv {
namespace {

constexpr uint32_t kPow3[5] = {1, 3, 9, 27, 81};

void check_ternary(const QuantSpec& spec) {
  if (spec.bits != QuantBits::b1_58 || spec.axis != QuantAxis::channel) {
    throw Error(ErrorCode::unsupported_bits, std::string("trit packing needs 1.58-bit per-channel codes, not ") +
                                                 bits_name(spec.bits) + "-bit axis " + axis_name(spec.axis));
  }
}

}  // namespace

uint8_t pack_trit_byte(const uint8_t digits[5]) {
  uint32_t v = 0;
  for (uint32_t i = 0; i < 5; ++i) {
    if (digits[i] > 2) {
      throw Error(ErrorCode::invalid_argument,
                  "trit digit " + std::to_string(i) + " is " + std::to_string(digits[i]) + " (valid: 0, 1, 2)");
    }
    v = v * 3 + digits[i];  // d_0 weighs 3^4
  }
  return uint8_t((256 * v + 242) / 243);  // ceil(256 v / 243) <= 255 for v <= 242
}

uint8_t trit_digit(uint8_t byte, uint32_t position) {
  if (position > 4) {
    throw Error(ErrorCode::invalid_argument, "trit position " + std::to_string(position) + " is not in 0..4");
  }
  return uint8_t((((uint32_t(byte) * kPow3[position]) & 0xffu) * 3u) >> 8);
}

uint64_t trit_block_bytes(uint32_t dim, uint32_t group_size) {
  return (uint64_t(dim) * group_size + 4) / 5;
}

uint64_t trit_packed_bytes(const TensorShape& shape, uint32_t group_size) {
  if (group_size == 0 || shape.tokens % group_size != 0) {
    throw Error(ErrorCode::bad_group_size, "tokens " + std::to_string(shape.tokens) +
                                               " is not a multiple of group_size " + std::to_string(group_size));
  }
  return uint64_t(shape.heads) * (shape.tokens / group_size) * trit_block_bytes(shape.dim, group_size);
}

namespace reference {

std::vector<uint8_t> pack_trits(const QuantizedTensor& q) {
  check_ternary(q.spec);
  const PackedSizes p = packed_sizes(q.spec, q.shape);
  if (q.codes.size() != p.code_words()) {
    throw Error(ErrorCode::invalid_argument, "quantized tensor holds " + std::to_string(q.codes.size()) +
                                                 " code words, its spec needs " + std::to_string(p.code_words()));
  }
  const uint32_t g_size = q.spec.group_size, dim = q.shape.dim, groups = q.shape.tokens / g_size;
  const uint64_t block = trit_block_bytes(dim, g_size);
  std::vector<uint8_t> out(trit_packed_bytes(q.shape, g_size), 0);
  for (uint32_t h = 0; h < q.shape.heads; ++h) {
    for (uint32_t g = 0; g < groups; ++g) {
      uint8_t* dst = out.data() + (uint64_t(h) * groups + g) * block;
      for (uint64_t b = 0; b < block; ++b) {
        uint8_t digits[5] = {0, 0, 0, 0, 0};
        for (uint32_t i = 0; i < 5; ++i) {
          const uint64_t idx = b * 5 + i;  // c * group_size + t
          if (idx >= uint64_t(dim) * g_size) break;
          const uint32_t c = uint32_t(idx / g_size), t = g * g_size + uint32_t(idx % g_size);
          const uint64_t row = uint64_t(h) * dim + c;
          const uint32_t f = (q.codes[row * p.words_per_row + t / 16] >> ((t % 16) * 2)) & 3u;
          if (f == 3) {
            throw Error(ErrorCode::corrupt_data, "1.58-bit code field holds 3 at (head " + std::to_string(h) +
                                                     ", token " + std::to_string(t) + ", channel " +
                                                     std::to_string(c) + ")");
          }
          digits[i] = uint8_t(f);
        }
        dst[b] = pack_trit_byte(digits);
      }
    }
  }
  return out;
}

std::vector<uint32_t> unpack_trits(const std::vector<uint8_t>& packed, const QuantSpec& spec,
                                   const TensorShape& shape) {
  check_ternary(spec);
  const PackedSizes p = packed_sizes(spec, shape);
  if (packed.size() != trit_packed_bytes(shape, spec.group_size)) {
    throw Error(ErrorCode::invalid_argument, "packed trits hold " + std::to_string(packed.size()) + " bytes, shape needs " +
                                                 std::to_string(trit_packed_bytes(shape, spec.group_size)));
  }
  const uint32_t g_size = spec.group_size, dim = shape.dim, groups = shape.tokens / g_size;
  const uint64_t block = trit_block_bytes(dim, g_size);
  std::vector<uint32_t> codes(p.code_words(), 0);
  for (uint32_t h = 0; h < shape.heads; ++h) {
    for (uint32_t g = 0; g < groups; ++g) {
      const uint8_t* src = packed.data() + (uint64_t(h) * groups + g) * block;
      for (uint64_t idx = 0; idx < uint64_t(dim) * g_size; ++idx) {
        const uint32_t c = uint32_t(idx / g_size), t = g * g_size + uint32_t(idx % g_size);
        const uint32_t d = trit_digit(src[idx / 5], uint32_t(idx % 5));
        codes[(uint64_t(h) * dim + c) * p.words_per_row + t / 16] |= d << ((t % 16) * 2);
      }
    }
  }
  return codes;
}

}  // namespace reference
}  // namespace vidkv
