// Reading one element of an unpacked fp16 or fp32 tensor bound as `uint data[]` (fp16 two per word),
// as a half. Needs DATA_F32 (a specialization constant) and a buffer named `src` declared before.
uint load_half_from(uint e) {
  if (DATA_F32 == 1u) return f32_to_f16(uintBitsToFloat(src.data[e]));
  return half_in_word(src.data[e >> 1], e & 1u);
}
