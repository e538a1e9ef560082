// Trits 5 per byte (cache/include/vidkv/ternary_pack.hpp): byte b = ceil(256 * v / 243) with
// v = sum d_i * 3^(4 - i); digit i = (((b * 3^i) & 255) * 3) >> 8. Decoding uses no division.

// x / 5 for any 32-bit x, by multiplication (0xCCCCCCCD = ceil(2^34 / 5)).
uint div5(uint x) {
  uint hi, lo;
  umulExtended(x, 0xCCCCCCCDu, hi, lo);
  return hi >> 2;
}

const uint POW3[5] = uint[5](1u, 3u, 9u, 27u, 81u);

uint trit_digit(uint byte_value, uint position) {
  return (((byte_value * POW3[position]) & 255u) * 3u) >> 8;
}

// Bytes of one (head, group) block of dim x group trits.
uint trit_block_bytes(uint dim, uint group) { return div5(dim * group + 4u); }
