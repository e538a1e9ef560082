// STP selection order (cache/include/vidkv/stp.hpp): higher score first, ties to the lower index.
// A score maps to a uint whose unsigned order is the float order, so the sort compares integers:
// positive floats get the sign bit set, negative floats are inverted (larger magnitude -> smaller
// key). -0 is first made +0 because the two compare equal as floats and must tie, then the index
// decides. Scores are assumed finite (the host rejects NaN before uploading); an infinity still
// orders correctly.
uint stp_score_key(float score) {
  uint u = floatBitsToUint(score);
  if (u == 0x80000000u) u = 0u;
  return (u & 0x80000000u) != 0u ? ~u : (u | 0x80000000u);
}

// True when entry a = (key, index) comes before entry b in the selection order.
bool stp_beats(uvec2 a, uvec2 b) { return a.x > b.x || (a.x == b.x && a.y < b.y); }
