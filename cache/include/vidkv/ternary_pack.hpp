#pragma once
// Trits packed 5 per byte (3^5 = 243 <= 256): 1.6 bits per ternary value instead of 2-bit fields.
// A per-channel 1.58-bit tensor (axis channel) is packed in blocks of one (head, group): the
// dim x group_size trits of the block, trit index c * group_size + t (t = token within the group),
// fill ceil(dim * group_size / 5) bytes; blocks follow each other in (head, group) order.
// Within a byte the five trits d_0..d_4 (d = code + 1 in {0, 1, 2}, d_0 first in index order) form
// v = sum d_i * 3^(4 - i), stored as b = ceil(256 * v / 243). Then digit i is recovered without a
// division: d_i = (((b * 3^i) mod 256) * 3) >> 8. The last byte of a block, when dim * group_size
// is not a multiple of 5, is padded with digits 0 (ignored on unpacking).
#include <cstdint>
#include <vector>

#include "vidkv/export.hpp"
#include "vidkv/reference.hpp"

namespace vidkv {

VIDKV_API uint8_t pack_trit_byte(const uint8_t digits[5]);           // digits in {0, 1, 2}
VIDKV_API uint8_t trit_digit(uint8_t byte, uint32_t position);       // position 0..4
VIDKV_API uint64_t trit_block_bytes(uint32_t dim, uint32_t group_size);  // ceil(dim * group_size / 5)
VIDKV_API uint64_t trit_packed_bytes(const TensorShape& shape, uint32_t group_size);

namespace reference {
// From the 2-bit-field codes of a 1.58-bit per-channel QuantizedTensor (throws Error otherwise).
VIDKV_API std::vector<uint8_t> pack_trits(const QuantizedTensor& q);
// Back to 2-bit-field codes (the QuantizedTensor's layout), for decoding and checks.
VIDKV_API std::vector<uint32_t> unpack_trits(const std::vector<uint8_t>& packed, const QuantSpec& spec,
                                             const TensorShape& shape);
}  // namespace reference
}  // namespace vidkv
