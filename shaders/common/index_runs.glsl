// Runs of consecutive elements of a [heads][tokens][inner] index space, for shaders that give each
// invocation a run of them: the first element's (head, token, inner index) needs a division by
// `inner` and one by `tokens`, the rest follow by carrying, so the divisions (a per-lane loop of
// scalar divides on CPU drivers) are paid once per run instead of per element.

// (head, token, inner index) of flat element `first`.
uvec3 run_first(uint first, uint inner, uint tokens) {
  uint ht = first / inner;
  return uvec3(ht / tokens, ht % tokens, first % inner);
}

// The next element's (head, token, inner index).
void run_next(inout uvec3 at, uint inner, uint tokens) {
  if (++at.z == inner) {
    at.z = 0u;
    if (++at.y == tokens) {
      at.y = 0u;
      ++at.x;
    }
  }
}
