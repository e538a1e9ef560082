// Specialization constants and indexing shared by the grouped quantize and dequantize shaders.
// The packed layout is the authors' (cache/include/vidkv/quant_spec.hpp):
//   axis channel: row = head * dim + channel, a group runs along tokens;
//   axis token:   row = head * tokens + token, a group runs along channels.
// Codes of a row are contiguous 32-bit words; group g of a row fills whole words (group_size is a
// multiple of 32), scale and min of (row, g) are half number row * groups_per_row + g.

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint MODE = 2u;        // 0: 1-bit, 1: 1.58-bit, 2/3/4: 2/4/8-bit
layout(constant_id = 2) const uint AXIS = 0u;        // 0: channel, 1: token
layout(constant_id = 3) const uint GROUP_SIZE = 32u;
layout(constant_id = 4) const uint TERNARY_LSQ = 0u; // 1.58-bit scale: 0 mean|x|, 1 least squares
layout(constant_id = 5) const uint DATA_F32 = 0u;    // fp16 (two per word) or fp32 elements
layout(constant_id = 6) const float LEVEL_RCP = 0.33333334; // 1 / (2^b - 1), computed in fp32 on the host

const uint MODE_1BIT = 0u;
const uint MODE_TERNARY = 1u;
const uint FIELD_BITS = MODE == 0u ? 1u : (MODE == 3u ? 4u : (MODE == 4u ? 8u : 2u));
const uint FIELDS_PER_WORD = 32u / FIELD_BITS;
const uint FIELD_MASK = (1u << FIELD_BITS) - 1u;
const uint MAX_CODE = MODE == 2u ? 3u : (MODE == 3u ? 15u : 255u);

layout(push_constant) uniform Params {
  uint heads;
  uint tokens;
  uint dim;
  uint head_stride;    // elements between heads of the unpacked tensor
  uint token_stride;   // elements between tokens
  uint groups_total;   // rows * groups_per_row
} params;

uint rows_length() { return AXIS == 0u ? params.tokens : params.dim; }
uint groups_per_row() { return rows_length() / GROUP_SIZE; }
uint words_per_row() { return rows_length() / FIELDS_PER_WORD; }

// Unpacked-tensor index of element i (0..GROUP_SIZE-1) of group g of row `row`: element 0's plus
// i * element_step() (the divisions are paid once per group: on CPU drivers each is a per-lane loop
// of scalar divides).
uint element_index(uint row, uint g, uint i) {
  if (AXIS == 0u) {
    uint h = row / params.dim;
    uint c = row - h * params.dim;
    return h * params.head_stride + (g * GROUP_SIZE + i) * params.token_stride + c;
  }
  uint h = row / params.tokens;
  uint t = row - h * params.tokens;
  return h * params.head_stride + t * params.token_stride + g * GROUP_SIZE + i;
}

// Distance between consecutive elements of a group in the unpacked tensor.
uint element_step() { return AXIS == 0u ? params.token_stride : 1u; }
