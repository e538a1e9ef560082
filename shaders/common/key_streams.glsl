// The coefficient streams of one token's spectrum (cache/include/vidkv/vidkv_keys.hpp):
//   half: Re X_0, Re X_1, Im X_1, ..., Re X_{N/2} (N even) -- exactly N reals
//   full: Re X_0, Im X_0, Re X_1, Im X_1, ..., Re X_{N-1}, Im X_{N-1} -- the original's 2N reals
// FFT_FULL is a specialization constant; N the number of normal channels.

// For half-spectrum bin f (0 <= f <= N/2): the stream holding Re X_f, and the one holding Im X_f
// (-1 when Im X_f is 0 by symmetry: DC, and Nyquist for even N).
int half_stream_re(uint f, uint n) {
  if (f == 0u) return 0;
  if ((n & 1u) == 0u && f == n / 2u) return int(n) - 1;
  return int(2u * f - 1u);
}
int half_stream_im(uint f, uint n) {
  if (f == 0u || ((n & 1u) == 0u && f == n / 2u)) return -1;
  return int(2u * f);
}
